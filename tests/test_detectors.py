"Detectors: I3D / Inception-v3 / LPIPS architectures with random weights, local-file loading, checksums; real weights under --flags weights."

import numpy as np
import pytest
import torch

from sound_video_gen.core import UserError, save_checkpoint
from sound_video_gen.metrics.detectors import (I3DDetector, InceptionDetector, InceptionI3d, LPIPS, WEIGHT_FILES, clean_resize,
                                       fid_inception_v3, file_sha256, find_weights, load_i3d, load_inception, load_lpips,
                                       verify_weights, weights_dir)
from sound_video_gen.metrics.distances import calc_metric


def test_i3d_endpoint_shapes_follow_tf_same_padding():
    torch.manual_seed(0)
    net = InceptionI3d().eval()
    shapes = {}
    for name, m in net.end_points.items():
        m.register_forward_hook(lambda mod, i, o, name=name: shapes.__setitem__(name, tuple(o.shape[1:])))
    with torch.no_grad(): out = net(torch.zeros(1, 3, 16, 64, 64), return_features=True)
    assert shapes["Conv3d_1a_7x7"] == (64, 8, 32, 32)
    assert shapes["MaxPool3d_3a_3x3"] == (192, 8, 8, 8)
    assert shapes["Mixed_3c"] == (480, 8, 8, 8)
    assert shapes["Mixed_4f"] == (832, 4, 4, 4)
    assert shapes["Mixed_5c"] == (1024, 2, 2, 2)
    assert out.shape == (1, 400)
    # odd sizes pad asymmetrically like TF 'SAME' (extra at the end): ceil(n / stride)
    with torch.no_grad(): y = net.end_points["Conv3d_1a_7x7"](torch.zeros(1, 3, 5, 9, 11))
    assert y.shape == (1, 64, 3, 5, 6)


def test_i3d_probs_and_checkpoint_roundtrip(tmp_path):
    torch.manual_seed(1)
    net = InceptionI3d().eval()
    x = torch.randint(0, 256, (2, 3, 8, 32, 32), dtype=torch.uint8)
    with torch.no_grad():
        p = net(x, rescale=True)
        f = net(x, rescale=True, return_features=True)
    torch.testing.assert_close(p, f.softmax(-1))
    ck = save_checkpoint(tmp_path / "i3d.safetensors", net)
    det = load_i3d(ck)
    assert det.sha256 == file_sha256(ck) and det.info()["file"] == "i3d.safetensors"
    det.resize = False
    torch.testing.assert_close(det.features(x.permute(0, 2, 1, 3, 4)).float(), f, atol=1e-5, rtol=1e-5)


class _ScriptedDetector(torch.nn.Module):
    "A tiny stand-in with the torchscript I3D's call signature: mean colour per frame as features."
    def forward(self, x: torch.Tensor, rescale: bool = False, resize: bool = False, return_features: bool = False):
        if rescale: x = x / 127.5 - 1
        f = x.mean(dim=(3, 4)).flatten(1)
        return f if return_features else torch.softmax(f, -1)


def test_load_torchscript_detector_and_run_fvd(tmp_path):
    p = tmp_path / "i3d_torchscript.pt"
    torch.jit.script(_ScriptedDetector()).save(str(p))
    det = load_i3d(p)
    assert det.name == "i3d-torchscript" and det.sha256 == file_sha256(p)
    g = torch.Generator().manual_seed(0)
    real = torch.randint(0, 256, (24, 4, 3, 8, 8), dtype=torch.uint8, generator=g)
    r = calc_metric("fvd24_4f", real // 2, real, det)
    assert r["detector"]["sha256"] == det.sha256 and r["detector"]["call"].startswith("rescale=True")
    assert r["results"]["fvd24_4f"] > 0
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(UserError, match="not a torchscript"): load_i3d(tmp_path / "junk.pt")


def test_find_and_verify_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("SOUND_VIDEO_GEN_WEIGHTS", str(tmp_path))
    assert weights_dir() == tmp_path
    with pytest.raises(UserError, match="i3d_torchscript.pt"): find_weights("i3d")
    (tmp_path / WEIGHT_FILES["i3d"]).write_bytes(b"x")
    assert find_weights("i3d") == tmp_path / "i3d_torchscript.pt"
    assert find_weights("i3d", tmp_path) == tmp_path / "i3d_torchscript.pt"  # a folder works too
    with pytest.raises(UserError, match="unknown weight kind"): find_weights("resnet")
    f = tmp_path / "data.bin"; f.write_bytes(b"hello")
    d = file_sha256(f)
    good = tmp_path / f"net-{d[:8]}.pth"; good.write_bytes(b"hello")
    assert verify_weights(good) == d and verify_weights(f, d.upper()) == d
    bad = tmp_path / "net-00000000.pth"; bad.write_bytes(b"hello")
    with pytest.raises(UserError, match="wrong or corrupt"): verify_weights(bad)


def test_inception_state_dict_load_and_bad_state(tmp_path):
    torch.manual_seed(0)
    net = fid_inception_v3()
    p = tmp_path / "inception.pth"
    torch.save(net.state_dict(), p)
    det = load_inception(p, resize="bilinear")
    x = torch.randint(0, 256, (1, 3, 40, 40), dtype=torch.uint8)
    f0, p0 = InceptionDetector(net, resize="bilinear").features_and_probs(x)
    f1, p1 = det.features_and_probs(x)
    torch.testing.assert_close(f1, f0); torch.testing.assert_close(p1, p0)
    assert det.name == "inception-v3-pytorch-fid" and f1.shape == (1, 2048) and p1.shape == (1, 1008)
    sd = net.state_dict(); sd.pop("fc.bias"); torch.save(sd, tmp_path / "broken.pth")
    with pytest.raises(UserError, match="fc.bias"): load_inception(tmp_path / "broken.pth")
    with pytest.raises(UserError, match="uint8"): det.features(x.float())
    with pytest.raises(UserError, match="resize must be"): InceptionDetector(net, resize="nearest")


def test_fid_inception_pools_differ_from_torchvision():
    net = fid_inception_v3()
    assert type(net.Mixed_5b).__name__ == "FIDInceptionA" and net.Mixed_7c.pool == "max" and net.Mixed_7b.pool == "avg"


def test_clean_resize_matches_pil_bicubic():
    from PIL import Image
    x = torch.randint(0, 256, (1, 3, 20, 30), dtype=torch.uint8)
    out = clean_resize(x, 299)
    ref = np.asarray(Image.fromarray(x[0, 1].numpy().astype(np.float32), mode="F").resize((299, 299), Image.BICUBIC))
    np.testing.assert_allclose(out[0, 1].numpy(), ref, atol=1e-4)
    assert out.dtype == torch.float32 and out.shape == (1, 3, 299, 299)
    const = clean_resize(torch.full((1, 3, 16, 16), 77, dtype=torch.uint8), 299)
    assert torch.allclose(const, torch.full_like(const, 77.0), atol=1e-3)


def test_lpips_random_and_loading_from_files(tmp_path):
    from torchvision.models import alexnet
    torch.manual_seed(0)
    m = LPIPS("alex")
    a = torch.rand(3, 3, 32, 32) * 2 - 1
    assert torch.allclose(m(a, a), torch.zeros(3), atol=1e-6)
    assert (m(a, a.roll(1, 0)) > 0).all()
    # files in the published layouts: lpips heads (lin0.model.1.weight ...) and torchvision's alexnet state dict
    heads = {f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1) for i, c in enumerate([64, 192, 384, 256, 256])}
    torch.save(heads, tmp_path / "alex.pth")
    back = alexnet(weights=None).state_dict()
    tmp = tmp_path / "tmp.pth"; torch.save(back, tmp)
    bp = tmp_path / f"alexnet-owt-{file_sha256(tmp)[:8]}.pth"; tmp.rename(bp)
    lp = load_lpips(tmp_path / "alex.pth", bp)
    torch.testing.assert_close(lp.lin2.model[1].weight, heads["lin2.model.1.weight"])
    torch.testing.assert_close(lp.features[3].weight, back["features.3.weight"])
    assert set(lp.sha256) == {"lin", "backbone"}
    r = calc_metric("lpips", a.unsqueeze(1), (a.flip(0)).unsqueeze(1), lp)
    assert r["results"]["lpips"] > 0
    wrong = tmp_path / f"alexnet-owt-{file_sha256(tmp_path / 'alex.pth')[:8]}.pth"
    (tmp_path / "alex.pth").rename(wrong); torch.save({"lin0.model.1.weight": torch.ones(1)}, tmp_path / "alex.pth")
    with pytest.raises(UserError, match="backbone|linear heads"): load_lpips(tmp_path / "alex.pth", wrong)
    with pytest.raises(UserError, match="alex' or 'vgg"): LPIPS("resnet")


@pytest.mark.slow
def test_i3d_canonical_input_224_16f():
    torch.manual_seed(0)
    det = I3DDetector(InceptionI3d())
    f = det.features(torch.randint(0, 256, (1, 16, 3, 32, 32), dtype=torch.uint8))  # resized to 224 inside
    assert f.shape == (1, 400) and torch.isfinite(f).all()


# ---- real weights: run with --flags weights after placing the files in $SOUND_VIDEO_GEN_WEIGHTS ----

@pytest.mark.weights
def test_real_i3d_torchscript_tf_anchor():
    "spec/peers.md §3.2: the TF reference gives FVD ≈ 131 for 16 all-zero vs 16 all-255 videos (15 frames, 64²)."
    det = load_i3d()
    zeros = torch.zeros(16, 15, 3, 64, 64, dtype=torch.uint8)
    ones = torch.full_like(zeros, 255)
    r = calc_metric("fvd16_15f", ones, zeros, det, batch_size=8)
    assert det.features(zeros[:2]).shape == (2, 400)
    assert 115 < r["results"]["fvd16_15f"] < 150, r["results"]


@pytest.mark.weights
def test_real_inception_file():
    det = load_inception()
    x = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8)
    f, p = det.features_and_probs(x)
    assert f.shape == (2, 2048) and p.shape[1] == 1008 and (f >= 0).all()  # pool3 follows a ReLU


@pytest.mark.weights
def test_real_lpips_files():
    m = load_lpips()
    a = torch.rand(2, 3, 64, 64) * 2 - 1
    assert torch.allclose(m(a, a), torch.zeros(2), atol=1e-6) and (m(a, -a) > 0.1).all()
