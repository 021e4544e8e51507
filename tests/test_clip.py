"CLIP wrapper and audio encoder mechanics: open_clip's own preprocessing, real architectures, weight files, bad input."
import pytest
import torch
import torch.nn.functional as F

from sound_video_gen.core import UserError, get_config, list_configs
from sound_video_gen.multimodal.clip import TINY_CLIP_CONFIGS, clip_preprocess, load_clip, save_clip
from sound_video_gen.multimodal.audio_encoder import AudioEncoder, load_audio_encoder, save_audio_encoder

torch.set_num_threads(1)


def smooth_image(h, w, seed=0):
    "A low-frequency RGB image (uint8), so interpolation kernels barely matter."
    g = torch.Generator().manual_seed(seed)
    small = torch.rand(1, 3, 4, 5, generator=g)
    return (F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)[0] * 255).round().byte()


@pytest.mark.parametrize("hw", [(48, 80), (96, 40), (32, 32)])
def test_preprocess_matches_open_clip_transform(hw):
    import open_clip
    from PIL import Image
    clip = load_clip("clip-tiny")
    img = smooth_image(*hw)
    tf = open_clip.image_transform(clip.image_size[0], is_train=False, mean=clip.mean, std=clip.std)
    ref = tf(Image.fromarray(img.permute(1, 2, 0).numpy()))
    ours = clip_preprocess(img[None].float() / 127.5 - 1, clip.image_size, clip.mean, clip.std)[0]
    assert ours.shape == ref.shape == (3, 32, 32)
    assert (ours - ref).abs().mean() < 0.03 and (ours - ref).abs().max() < 0.25


@pytest.mark.parametrize("name", sorted(TINY_CLIP_CONFIGS))
def test_tiny_configs_embed_any_size_with_gradients(name):
    clip = load_clip(name).freeze()
    x = (torch.rand(2, 3, 50, 70) * 2 - 1).requires_grad_()
    e = clip.encode_image(x)
    assert e.shape == (2, clip.embed_dim) and torch.allclose(e.norm(dim=-1), torch.ones(2), atol=1e-5)
    e[:, 0].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in clip.parameters())
    t = clip.encode_text(["rain", "a thunderstorm over dark hills"])
    assert t.shape == (2, clip.embed_dim)


def test_vit_b_32_architecture_without_weights():
    clip = load_clip("ViT-B-32")
    assert clip.image_size == (224, 224) and clip.embed_dim == 512
    with torch.no_grad():
        assert clip.encode_image(torch.zeros(1, 3, 64, 64)).shape == (1, 512)


def test_local_weight_files(tmp_path):
    from safetensors.torch import save_file
    torch.manual_seed(1)
    a = load_clip("clip-tiny")
    save_file({k: v.contiguous() for k, v in a.model.state_dict().items()}, str(tmp_path / "w.safetensors"))
    torch.manual_seed(2)
    b = load_clip("clip-tiny", pretrained=str(tmp_path / "w.safetensors"))
    assert b.pretrained.endswith("w.safetensors")
    assert torch.allclose(a.encode_text(["rain"]), b.encode_text(["rain"]))
    save_clip(tmp_path / "mine.safetensors", a)
    c = load_clip(str(tmp_path / "mine.safetensors"))
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    assert torch.allclose(a.encode_image(x), c.encode_image(x), atol=1e-6)
    with pytest.raises(UserError, match="pretrained must be None"):
        load_clip(str(tmp_path / "mine.safetensors"), "openai")


def test_wrong_checkpoints_and_names(tmp_path):
    enc = AudioEncoder(get_config("audio-encoder-tiny"))
    save_audio_encoder(tmp_path / "fa.safetensors", enc)
    with pytest.raises(UserError, match="not a CLIP"):
        load_clip(str(tmp_path / "fa.safetensors"))
    save_clip(tmp_path / "clip.safetensors", load_clip("clip-tiny"))
    with pytest.raises(UserError, match="not an audio encoder"):
        load_audio_encoder(tmp_path / "clip.safetensors")
    with pytest.raises(UserError, match="does not exist"):
        load_clip(str(tmp_path / "missing.safetensors"))
    with pytest.raises(UserError, match="neither a weight file nor a known tag"):
        load_clip("ViT-B-32", "no-such-tag")
    with pytest.raises(UserError, match="list of strings"):
        load_clip("clip-tiny").encode_text([1, 2])


@pytest.mark.parametrize("name", [n for n in list_configs("AudioEncoder")])
def test_every_audio_encoder_config_builds(name):
    cfg = get_config(name)
    enc = AudioEncoder(cfg).eval()
    with torch.no_grad():
        z = enc(torch.rand(2, 1, cfg.n_mels, 16))
    assert z.shape == (2, cfg.embed_dim)


def test_audio_encoder_rejects_bad_shapes():
    enc = AudioEncoder(get_config("audio-encoder-tiny"))
    with pytest.raises(UserError, match="expects mels of shape"):
        enc(torch.rand(2, 2, 32, 16))
    assert enc(torch.rand(2, 32, 16)).shape == (2, 32)   # the channel axis may be left out
