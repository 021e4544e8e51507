"""Our generators against NVlabs' own code: images that NVlabs/stylegan3's networks rendered from the tiny test
weights (tests/data/nvlabs_parity.safetensors, made by tools/nvlabs_parity.py from their checkout; their code is not
in this repository). The goldens of test_stylegan.py pin our numerics over time; these pin them to the reference."""
import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from sound_video_gen.generators.factory import load_generator

DATA = Path(__file__).parent / "data"
REF = load_file(str(DATA / "nvlabs_parity.safetensors"))
TINY = ["stylegan3-t-tiny", "stylegan3-r-tiny", "stylegan2-tiny"]


def _close(ours, ref, what):
    # float32 through ~30 layers of convolutions and resampling, summed in another order than NVlabs' reference ops:
    # measured at most 3.8e-6 (stylegan2-tiny, images up to 3.7). 1e-5 absolute, and 2e-5 of the image's range for the
    # stylegan3 images (amplitudes 0.09-0.23), where an absolute 1e-5 alone would be loose.
    err, scale = float((ours - ref).abs().max()), float(ref.abs().max())
    assert err <= 1e-5 and err <= 2e-5 * max(scale, 1e-3) + 1e-7, (what, err, scale)


def test_the_fixture_came_from_nvlabs_code():
    with safe_open(str(DATA / "nvlabs_parity.safetensors"), framework="pt") as f: meta = f.metadata()
    nets = json.loads(meta["networks"])
    assert nets["stylegan3-t-tiny"] == nets["stylegan3-r-tiny"] == "training.networks_stylegan3.Generator"
    assert nets["stylegan2-tiny"] == "training.networks_stylegan2.Generator" and len(json.loads(meta["nvlabs_commit"])) == 40


@pytest.mark.parametrize("name", TINY)
def test_mapping_matches_nvlabs(name):
    G = load_generator(DATA / f"{name}.safetensors").eval()
    with torch.no_grad(): ws = G.mapping(REF[f"{name}.z"], None, truncation_psi=1.0)
    _close(ws, REF[f"{name}.ws"], "ws")


@pytest.mark.parametrize("name,impl", [(n, i) for n in TINY[:2] for i in ("fast", "poly", "ref")] + [(TINY[2], None)])
def test_synthesis_matches_nvlabs(name, impl):
    "Every StyleGAN3 op path (matrices, polyphase, NVlabs' reference order) and StyleGAN2's one."
    G = load_generator(DATA / f"{name}.safetensors").eval()
    kw = {"impl": impl} if impl else {}
    with torch.no_grad():
        _close(G.synthesis(REF[f"{name}.ws"], noise_mode="const", **kw), REF[f"{name}.img"], "synthesis")


@pytest.mark.parametrize("name", TINY)
def test_truncated_images_match_nvlabs(name):
    G = load_generator(DATA / f"{name}.safetensors").eval()
    with torch.no_grad(): img = G(REF[f"{name}.z"], None, truncation_psi=0.7, noise_mode="const")
    _close(img, REF[f"{name}.img_psi07"], "psi 0.7")


def test_winograd_on_every_map_still_matches_nvlabs(monkeypatch):
    "StyleGAN3-T with every 3x3 convolution through the Winograd kernel (not only maps of 48 pixels or more)."
    import sound_video_gen.generators.ops as ops
    monkeypatch.setattr(ops, "WINOGRAD_MIN_SIZE", 4)
    calls = []
    real = ops.winograd_conv2d
    monkeypatch.setattr(ops, "winograd_conv2d", lambda *a: calls.append(1) or real(*a))
    monkeypatch.setattr(ops, "_NNPACK_POOL", [])   # as if first: an earlier test may have changed torch's thread count
    G = load_generator(DATA / "stylegan3-t-tiny.safetensors").eval()
    with torch.no_grad(): img = G.synthesis(REF["stylegan3-t-tiny.ws"], noise_mode="const")
    assert len(calls) == (13 if torch.backends.nnpack.is_available() else 0)
    _close(img, REF["stylegan3-t-tiny.img"], "synthesis, Winograd")
