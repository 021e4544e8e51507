"""StyleGAN inversion: the projector (recovers a known latent, leaves G as it was), the image encoder (shapes, files),
encoder training (exact resume, each loss term reaching the encoder and nothing else), the ablation, the bundle
role, and the CLI's answers to bad input."""
import json

import pytest
import torch

from sound_video_gen.cli import dispatch
from sound_video_gen.core import UserError, get_config, load_checkpoint, run_cli
from sound_video_gen.generators.factory import create_generator
from sound_video_gen.metrics.bench import SSClassifier, SSClassifierConfig
from sound_video_gen.model.inversion import (ImageEncoder, ImageEncoderConfig, invert, load_image_encoder, noise_layers,
                                             pixel_mse, project, project_with_noise, save_image_encoder, synthesize,
                                             w_stats)
from sound_video_gen.train.inversion import (ClassifierFeatureDistance, InversionTrainConfig, inversion_ablation,
                                             inversion_losses, train_inverter)

torch.set_num_threads(1)
SMALL = dict(widths=(8, 8, 16, 16), units=(1, 1, 1, 1), head_width=8)


@pytest.fixture(scope="module")
def G():
    return create_generator("stylegan2-tiny", seed=0).eval()


@pytest.fixture(scope="module")
def known(G):
    "Images G made from known single-w latents, clamped to [-1, 1] as an image would be."
    with torch.no_grad():
        z = torch.randn(4, G.z_dim, generator=torch.Generator().manual_seed(1))
        w = G.mapping(z, None)
        img = G.synthesis(w, noise_mode="const").clamp(-1, 1)
    return w, img


def test_projector_lowers_distance_and_recovers_known_w(G, known):
    w_true, target = known
    w_avg, _ = w_stats(G)
    before = {k: v.clone() for k, v in G.state_dict().items()}
    ws = project(G, target, steps=100, space="w", lr=0.05)
    assert ws.shape == (4, G.num_ws, G.w_dim)
    with torch.no_grad():
        d0 = pixel_mse(G.synthesis(w_avg.expand(4, G.num_ws, -1), noise_mode="const"), target)
        d1 = pixel_mse(synthesize(G, ws), target)
    assert (d1 < 0.5 * d0).all(), (d0, d1)
    err, err0 = (ws - w_true).square().mean(), (w_avg - w_true).square().mean()
    assert err < 0.9 * err0, (err, err0)   # measured 0.83 (a random G clips a third of its pixels to [-1, 1])
    # G is left exactly as it was: weights, noise maps, requires_grad flags, no gradients
    assert all(torch.equal(before[k], v) for k, v in G.state_dict().items())
    assert all(p.grad is None for p in G.parameters())


def test_projector_noise_maps_and_options(G, known):
    _, target = known
    ws, noise = project_with_noise(G, target[:2], steps=20)
    assert set(noise) == set(noise_layers(G)) and all(n.shape[0] == 2 for n in noise.values())
    for n in noise.values():   # renormalised every step
        assert n.mean().abs() < 1e-4 and (n.square().mean() - 1).abs() < 1e-3
    # a pluggable distance is used as given, and w_reg pulls towards w_avg
    calls = []
    def dist(a, b):
        calls.append(a.shape)
        return (a - b).abs().flatten(1).mean(1)
    project(G, target[:1], steps=3, distance=dist)
    assert len(calls) == 3
    w_avg, _ = w_stats(G)
    free = project(G, target[:1], steps=40, noise_reg=0)
    held = project(G, target[:1], steps=40, noise_reg=0, w_reg=10.0)
    assert (held - w_avg).norm() < (free - w_avg).norm()
    # init is the start: zero steps return it
    init = torch.randn(1, G.num_ws, G.w_dim)
    assert torch.equal(project(G, target[:1], steps=0, init=init), init)


def test_projector_stylegan3_has_no_noise():
    G3 = create_generator("stylegan3-t-tiny", seed=0).eval()
    assert noise_layers(G3) == {}
    with torch.no_grad(): img = G3(torch.randn(1, G3.z_dim), None).clamp(-1, 1)
    ws = project(G3, img, steps=3)
    assert ws.shape == (1, G3.num_ws, G3.w_dim)


@pytest.mark.parametrize("bad, msg", [
    (torch.zeros(1, 3, 16, 16), "generator's resolution"),
    (torch.zeros(3, 32, 32), "generator's resolution"),
    (torch.zeros(1, 3, 32, 32, dtype=torch.uint8), "floats in [-1, 1]"),
    (torch.full((1, 3, 32, 32), 2.0), "[-1, 1]"),
])
def test_projector_refuses_bad_images(G, bad, msg):
    with pytest.raises(UserError, match=None) as e: project(G, bad, steps=1)
    assert msg in str(e.value)


def test_encoder_shapes_and_file_round_trip(G, known, tmp_path):
    _, x = known
    enc = ImageEncoder.for_generator(G, **SMALL)
    assert (enc.cfg.num_ws, enc.cfg.w_dim, enc.cfg.input_size) == (G.num_ws, G.w_dim, 32)
    with torch.no_grad():
        w = enc(x)
        assert w.shape == (4, G.num_ws, G.w_dim)
        assert enc(torch.nn.functional.interpolate(x, size=64)).shape == w.shape   # other sizes are resized
    assert torch.allclose(enc.w_avg[0], w_stats(G)[0])
    p = save_image_encoder(tmp_path / "e.safetensors", enc, meta={"step": 0})
    enc2 = load_image_encoder(p)
    with torch.no_grad(): assert torch.equal(enc2(x), enc.eval()(x))
    _, _, meta = load_checkpoint(p)
    assert meta["kind"] == "image_encoder" and meta["step"] == 0
    with pytest.raises(UserError, match="not an image encoder"):
        from sound_video_gen.core import save_checkpoint
        load_image_encoder(save_checkpoint(tmp_path / "x.safetensors", {"a": torch.zeros(1)}, config=SSClassifierConfig()))
    with pytest.raises(UserError, match="W\\+"): ImageEncoder(ImageEncoderConfig(num_ws=4, w_dim=8, input_size=32, **SMALL)).set_w_avg(G)
    for m in ("encoder", "projector", "encoder+projector"):
        assert invert(G, x, m, encoder=enc, steps=2).shape == (4, G.num_ws, G.w_dim)
    with pytest.raises(UserError, match="needs an image encoder"): invert(G, x, "encoder")


# ------------------------------------------------------------------------------------------------------------
# training

@pytest.fixture(scope="module")
def parts():
    from sound_video_gen.multimodal.clip import load_clip
    torch.manual_seed(0)
    clf = SSClassifier(SSClassifierConfig(size=16, width=4, feat_dim=8))
    real = torch.randint(0, 256, (6, 3, 32, 32), generator=torch.Generator().manual_seed(2), dtype=torch.uint8)
    return ClassifierFeatureDistance(clf), load_clip("clip-tiny", None).freeze(), real


def cfg_for(G, run_dir, **kw):
    base = dict(encoder=ImageEncoderConfig(num_ws=G.num_ws, w_dim=G.w_dim, input_size=32, **SMALL), generator="stylegan2-tiny",
                run_dir=str(run_dir), max_steps=4, batch_size=4, ckpt_every=2, log_every=1, warmup_steps=1, progress=False,
                device="cpu", seed=5, w_latent=0.5)
    base.update(kw)
    return InversionTrainConfig(**base)


def test_feature_distance(parts, known):
    dist, _, _ = parts
    _, x = known
    d = dist(x, x.flip(-1))
    assert d.shape == (4,) and (d > 0).all()
    assert torch.allclose(dist(x, x), torch.zeros(4), atol=1e-6)
    assert dist.name == "ssclf-features" and "lpips" not in type(dist).__name__.lower()


@pytest.mark.parametrize("term", ["l2", "perceptual", "reg", "clip", "latent"])
def test_each_loss_switch_reaches_the_encoder_only(G, known, parts, term, tmp_path):
    dist, clip, _ = parts
    w, x = known
    weights = {k: 0.0 for k in ("w_l2", "w_perceptual", "w_reg", "w_clip", "w_latent")}
    cfg = cfg_for(G, tmp_path, w_l2=1.0)
    for k, v in weights.items(): setattr(cfg, k, v)   # one term alone (the config itself refuses reg alone)
    setattr(cfg, f"w_{term}", 1.0)
    enc = ImageEncoder.for_generator(G, **SMALL)
    G.requires_grad_(False)   # as train_inverter holds it
    called = []
    def perceptual(a, b):
        called.append(1)
        return dist(a, b)
    terms = inversion_losses(cfg, enc, G, x, w, perceptual, clip)
    assert set(terms) == {term, "loss"}
    assert bool(called) == (term == "perceptual")    # a switched-off term is not even computed
    assert torch.allclose(terms["loss"], terms[term])
    terms["loss"].backward()
    grads = [p.grad for p in enc.parameters()]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)
    frozen = list(G.parameters()) + list(clip.parameters()) + list(dist.parameters())
    assert all(p.grad is None for p in frozen)


def test_training_resumes_exactly_and_writes_an_encoder(G, parts, tmp_path):
    dist, clip, real = parts
    straight = train_inverter(cfg_for(G, tmp_path / "a"), G, real, perceptual=dist, clip=clip)

    class Killed(RuntimeError): pass
    def kill(step, rec):
        if step == 3: raise Killed()
    with pytest.raises(Killed): train_inverter(cfg_for(G, tmp_path / "b"), G, real, perceptual=dist, clip=clip, on_step=kill)
    resumed = train_inverter(cfg_for(G, tmp_path / "b"), G, real, perceptual=dist, clip=clip)   # from the step-2 checkpoint
    a, b = straight.encoder.state_dict(), resumed.encoder.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    logs = [json.loads(l) for l in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logs] == [1, 2, 3, 4]
    assert set(logs[-1]) >= {"l2", "perceptual", "reg", "clip", "latent", "loss"}
    enc = load_image_encoder(tmp_path / "b" / "image_encoder.safetensors")
    assert all(torch.equal(enc.state_dict()[k], b[k]) for k in b)
    with pytest.raises(UserError, match="W\\+"):
        train_inverter(cfg_for(G, tmp_path / "c", encoder=ImageEncoderConfig(num_ws=4, w_dim=8, input_size=32, **SMALL)), G, real)
    with pytest.raises(UserError, match="perceptual distance"): train_inverter(cfg_for(G, tmp_path / "d"), G, real, clip=clip)
    with pytest.raises(UserError, match="uint8"): train_inverter(cfg_for(G, tmp_path / "e"), G, real.float(), perceptual=dist, clip=clip)


def test_ablation_trains_three_variants(G, parts, tmp_path):
    dist, clip, real = parts
    res = inversion_ablation(cfg_for(G, tmp_path, max_steps=2), real[:3], G, real, dist, clip)
    assert list(res["variants"]) == ["l2+reg", "l2+reg+perceptual", "l2+reg+perceptual+clip"]
    for name, row in res["variants"].items():
        assert {"mse", "ssclf-features", "clip_distance"} <= set(row)
        assert (row["losses"]["w_clip"] > 0) == name.endswith("clip")
        assert (row["losses"]["w_perceptual"] > 0) == ("perceptual" in name)


def test_bundle_role(G, tmp_path):
    from sound_video_gen.apps.pipeline import SoundToVideo
    from sound_video_gen.model.bundle import add_to_bundle, make_bundle, verify_bundle
    from sound_video_gen.model.ssvg import SSVG
    model = SSVG(get_config("ssvg-tiny").for_generator(G))
    b = make_bundle(tmp_path / "b", G, model)
    assert SoundToVideo.from_pretrained(b).image_encoder is None
    enc = ImageEncoder.for_generator(G, **SMALL)
    card = add_to_bundle(b, "image_encoder", enc, dtype="float16")
    assert card["files"]["image_encoder"]["path"] == "image_encoder.safetensors"
    loaded = SoundToVideo.from_pretrained(b).image_encoder
    assert isinstance(loaded, ImageEncoder) and loaded.w_avg.dtype == torch.float32
    other = ImageEncoder(ImageEncoderConfig(num_ws=4, w_dim=8, input_size=32, **SMALL))
    with pytest.raises(UserError, match="does not fit"): add_to_bundle(b, "image_encoder", other, overwrite=True)


# ------------------------------------------------------------------------------------------------------------
# CLI

@pytest.mark.parametrize("argv, msg", [
    (["invert", "missing.png", "-o", "{tmp}/w.safetensors"], "does not exist"),
    (["invert", "{img}", "-o", "{tmp}/w.txt"], "must end in .safetensors"),
    (["invert", "{img}", "-o", "{tmp}/w.safetensors", "--method", "pti"], "invalid choice"),
    (["invert", "{img}", "-o", "{tmp}/w.safetensors", "--steps", "0"], "must be in"),
    (["invert", "{txt}", "-o", "{tmp}/w.safetensors", "--model", "{bundle}"], "is not a readable image"),
    (["invert", "{img}", "-o", "{tmp}/w.safetensors", "--model", "{bundle}"], "has no image encoder"),
    (["train-inverter", "{tmp}/nothing", "--run-dir", "{tmp}/r"], "does not exist"),
    (["train-inverter", "{tmp}", "--run-dir", "{tmp}/r", "--generator", "stylegan2-tiny", "--set", "w_l2=-1"], "w_l2=-1"),
    (["bundle", "{bundle}", "--add", "image_encoder"], "ROLE=FILE"),
])
def test_cli_bad_input_is_one_sentence(argv, msg, tmp_path, capsys, G):
    from PIL import Image
    from sound_video_gen.model.bundle import make_bundle
    from sound_video_gen.model.ssvg import SSVG
    Image.new("RGB", (40, 30), (10, 200, 30)).save(tmp_path / "a.png")
    (tmp_path / "a.txt").write_text("not an image")
    bundle = tmp_path / "bundle"
    if any("{bundle}" in s for s in argv): make_bundle(bundle, G, SSVG(get_config("ssvg-tiny").for_generator(G)))
    argv = [s.format(tmp=tmp_path, img=tmp_path / "a.png", txt=tmp_path / "a.txt", bundle=bundle) for s in argv]
    assert run_cli(dispatch, argv) == 2
    err = capsys.readouterr().err.strip()
    assert msg in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_cli_invert_writes_latents_and_png(tmp_path, capsys, G):
    from PIL import Image
    from sound_video_gen.model.bundle import add_to_bundle, make_bundle
    from sound_video_gen.model.ssvg import SSVG
    b = make_bundle(tmp_path / "b", G, SSVG(get_config("ssvg-tiny").for_generator(G)))
    add_to_bundle(b, "image_encoder", ImageEncoder.for_generator(G, **SMALL))
    Image.new("RGB", (48, 40), (120, 60, 200)).save(tmp_path / "a.png")
    for method in ("encoder", "encoder+projector"):
        out = tmp_path / f"{method}.safetensors"
        assert run_cli(dispatch, ["invert", str(tmp_path / "a.png"), str(tmp_path / "a.png"), "--model", str(b), "--method", method,
                                  "--steps", "2", "-o", str(out), "--save-png"]) == 0
        state, _, meta = load_checkpoint(out)
        assert state["ws"].shape == (2, G.num_ws, G.w_dim) and meta["method"] == method and len(meta["pixel_mse"]) == 2
        assert out.with_suffix(".png").is_file()
    assert run_cli(dispatch, ["invert", str(tmp_path / "a.png"), "--model", str(b), "-o", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
