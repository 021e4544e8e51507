"""StyleGAN2/3 generators: fast vs reference ops, golden outputs, our format, and safe loading of NVlabs-layout pickles."""
import collections, os, pickle, sys, types
from pathlib import Path

import numpy as np
import pytest
import torch

from sound_video_gen.core import UserError
from sound_video_gen.generators.factory import create_generator, list_generator_configs, load_generator, save_generator
from sound_video_gen.generators.legacy import PickledModule, load_network_pkl
from sound_video_gen.generators.ops import bias_act, filtered_lrelu, frozen_weight_conv2d, modulated_conv2d, upfirdn2d
from sound_video_gen.generators.stylegan3 import design_lowpass_filter, input_affine_constant
from sound_video_gen.generators.stylegan2 import modulated_conv2d as modconv2

torch.set_num_threads(2)
DATA = Path(__file__).parent / "data"
TINY = ["stylegan3-t-tiny", "stylegan3-r-tiny", "stylegan2-tiny"]

# ---------------------------------------------------------------- ops

@pytest.mark.parametrize("up,down,taps_u,taps_d,radial,pad", [
    (2, 2, 12, 12, False, [7, 6, 7, 6]),      # a regular layer
    (4, 2, 24, 12, False, [11, 10, 11, 10]),  # an upsampling layer
    (2, 2, 12, 12, True, [7, 6, 7, 6]),       # config R: radial downsampling filter
    (2, 3, 12, 8, False, [3, -2, 5, -1]),     # negative padding crops; odd down factor
    (1, 1, 1, 1, False, 0),                   # ToRGB: bias and clamp only
])
def test_filtered_lrelu_fast_matches_ref(up, down, taps_u, taps_d, radial, pad):
    torch.manual_seed(0)
    x, b = torch.randn(2, 5, 13, 13) * 3, torch.randn(5)
    fu = design_lowpass_filter(taps_u, 2.0, 2.0, 16.0)
    fd = design_lowpass_filter(taps_d, 2.0, 2.0, 16.0, radial=radial)
    kw = dict(fu=fu, fd=fd, b=b, up=up, down=down, padding=pad, clamp=1.5)
    ref = filtered_lrelu(x, **kw, impl="ref")
    for impl in ("fast", "poly"):
        out = filtered_lrelu(x, **kw, impl=impl)
        assert out.shape == ref.shape
        assert (out - ref).abs().max() < 1e-5, impl
    assert ref.abs().max() > 0.1  # not a trivially zero comparison

@pytest.mark.parametrize("radial", [False, True])
@pytest.mark.parametrize("mode", ["no_grad", "inference_mode"])
def test_filtered_lrelu_no_grad_path_chunked_banded_threaded(monkeypatch, radial, mode):
    "The no-grad path (products into output slices, chunks on worker threads) with many chunks and banded matrices."
    import sound_video_gen.generators.ops as ops
    monkeypatch.setattr(ops, "CHUNK_ELEMENTS", 4000)   # several chunks of channels (and an uneven last one)
    monkeypatch.setattr(ops, "BLOCK", 8)               # several bands per axis matrix
    ops._MATRICES.clear()
    torch.manual_seed(0)
    x, b = torch.randn(3, 7, 21, 19) * 3, torch.randn(7)
    fu = design_lowpass_filter(12, 2.0, 2.0, 16.0)
    fd = design_lowpass_filter(12, 2.0, 2.0, 16.0, radial=radial)
    kw = dict(fu=fu, fd=fd, b=b, up=2, down=2, padding=[7, 6, 8, 5], clamp=1.5)
    ref = filtered_lrelu(x, **kw, impl="ref")
    with (torch.no_grad() if mode == "no_grad" else torch.inference_mode()):
        for threads in (1, 2):
            torch.set_num_threads(threads)
            out = filtered_lrelu(x, **kw)
            assert out.shape == ref.shape and out.is_contiguous()
            assert (out - ref).abs().max() < 1e-5, threads
    torch.set_num_threads(2)
    ops._MATRICES.clear()

def _bias_act_plain(x, b, alpha, gain, clamp):
    y = x + b.reshape([-1 if i == 1 else 1 for i in range(x.ndim)]) if b is not None else x
    if alpha is not None: y = torch.nn.functional.leaky_relu(y, alpha)
    y = y * gain
    return y.clamp(-clamp, clamp) if clamp is not None else y

@pytest.mark.parametrize("alpha,gain,clamp,bias,inplace,shape", [
    (0.2, 2 ** 0.5, 0.9, True, False, (3, 4, 5, 5)),    # StyleGAN2 layer: lrelu, gain √2, a clamp that cuts
    (0.2, 2 ** 0.5, 0.9, True, True, (3, 4, 5, 5)),     # the same, overwriting its input
    (0.2, 0.7, None, True, True, (3, 4, 5, 5)),         # no clamp
    (None, 1.0, 0.5, True, True, (3, 4, 5, 5)),         # ToRGB: bias and clamp only
    (0.2, 2 ** 0.5, 1.0, False, False, (3, 4, 5, 5)),   # no bias
    (0.2, 2 ** 0.5, None, True, False, (6, 4)),         # fully connected [N, C]
])
def test_bias_act_matches_plain_ops_to_second_order(alpha, gain, clamp, bias, inplace, shape):
    torch.manual_seed(0)
    x0 = torch.randn(*shape, dtype=torch.float64)
    b = torch.randn(shape[1], dtype=torch.float64, requires_grad=True) if bias else None
    xa, xb = x0.clone().requires_grad_(True), x0.clone().requires_grad_(True)
    ya = bias_act(xa * 1, b, alpha, gain, clamp, inplace=inplace)   # `* 1`: a temporary, as a conv's output is
    yb = _bias_act_plain(xb, b, alpha, gain, clamp)
    assert torch.equal(ya, yb)
    if clamp is not None: assert (yb.abs() == clamp).any()   # the clamp is exercised
    wrt_a, wrt_b = [xa] + ([b] if bias else []), [xb] + ([b] if bias else [])
    ga = torch.autograd.grad((ya * torch.linspace(-1, 1, ya.numel(), dtype=ya.dtype).reshape(ya.shape)).sum(), wrt_a, create_graph=True)
    gb = torch.autograd.grad((yb * torch.linspace(-1, 1, yb.numel(), dtype=yb.dtype).reshape(yb.shape)).sum(), wrt_b, create_graph=True)
    for u, v in zip(ga, gb): torch.testing.assert_close(u, v, rtol=0, atol=1e-12)
    # R1-style second order: the gradient of a function of the input gradient
    ha = torch.autograd.grad(ga[0].square().sum() + ya.sum(), wrt_a)
    hb = torch.autograd.grad(gb[0].square().sum() + yb.sum(), wrt_b)
    for u, v in zip(ha, hb): torch.testing.assert_close(u, v, rtol=0, atol=1e-12)
    # without create_graph the backward takes its in-place branch; same numbers
    gc = torch.autograd.grad(bias_act(xa * 1, b, alpha, gain, clamp, inplace=inplace).sum(), wrt_a)
    gd = torch.autograd.grad(_bias_act_plain(xb, b, alpha, gain, clamp).sum(), wrt_b)
    for u, v in zip(gc, gd): torch.testing.assert_close(u, v, rtol=0, atol=1e-12)

def test_bias_act_refuses_a_non_positive_gain():
    with pytest.raises(UserError, match="positive gain"): bias_act(torch.randn(2, 3), torch.zeros(3), gain=0)

@pytest.mark.parametrize("f,down,pad", [
    ([1, 3, 3, 1], 2, [1, 1, 1, 1]),     # D's skip path: 2-D filter, stride 2
    ([1, 3, 3, 1], 1, [2, 2, 2, 2]),     # D's pre-conv blur
    ([1, 2, 1], 2, [3, 3, 0, 0]),        # separable filter, padding on x only
    ([1, 3, 3, 1], 2, [2, 1, 2, 1]),     # asymmetric padding (the explicit-pad path)
    ([1, 3, 3, 1], 3, [-1, 2, 0, 1]),    # a crop, odd factor
])
def test_upfirdn2d_stride_and_padding_equal_pad_filter_subsample(f, down, pad):
    "Downsampling is the stride-1 result subsampled; padding is zero padding, whichever path the call takes."
    torch.manual_seed(0)
    x = torch.randn(2, 3, 11, 12)
    for filt in (torch.tensor(f, dtype=torch.float32), torch.outer(torch.tensor(f, dtype=torch.float32), torch.tensor(f, dtype=torch.float32))):
        full = upfirdn2d(x, filt, padding=pad)
        torch.testing.assert_close(upfirdn2d(x, filt, down=down, padding=pad), full[:, :, ::down, ::down], rtol=0, atol=1e-6)
        px0, px1, py0, py1 = pad
        xp = torch.nn.functional.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
        xp = xp[:, :, max(-py0, 0): xp.shape[2] - max(-py1, 0), max(-px0, 0): xp.shape[3] - max(-px1, 0)]
        torch.testing.assert_close(full, upfirdn2d(xp, filt), rtol=0, atol=1e-6)

def test_filtered_lrelu_gradients_match():
    torch.manual_seed(0)
    fu, fd = design_lowpass_filter(12, 2.0, 2.0, 16.0), design_lowpass_filter(12, 2.0, 2.0, 16.0)
    grads = []
    for impl in ("fast", "poly", "ref"):
        x = torch.randn(1, 3, 9, 9, generator=torch.Generator().manual_seed(1)).requires_grad_()
        filtered_lrelu(x, fu, fd, up=2, down=2, padding=[7, 6, 7, 6], impl=impl).square().sum().backward()
        grads.append(x.grad)
    assert (grads[0] - grads[2]).abs().max() < 1e-4 and (grads[1] - grads[2]).abs().max() < 1e-4

def test_filtered_lrelu_bad_impl():
    with pytest.raises(UserError, match="impl"):
        filtered_lrelu(torch.zeros(1, 1, 4, 4), impl="cuda-please")

@pytest.mark.parametrize("demod", [True, False])
def test_modulated_conv_fused_equals_unfused(demod):
    torch.manual_seed(0)
    x, w, s = torch.randn(3, 4, 8, 8), torch.randn(6, 4, 3, 3), torch.randn(3, 4)
    a = modulated_conv2d(x, w, s, demodulate=demod, padding=1, input_gain=torch.tensor(0.5), fused=True)
    b = modulated_conv2d(x, w, s, demodulate=demod, padding=1, input_gain=torch.tensor(0.5), fused=False)
    assert (a - b).abs().max() < 1e-5
    f = torch.tensor([[1., 3, 3, 1]]).T @ torch.tensor([[1., 3, 3, 1]]) / 64
    a = modconv2(x, w, s, up=2, padding=1, resample_filter=f, demodulate=demod, fused=True)
    b = modconv2(x, w, s, up=2, padding=1, resample_filter=f, demodulate=demod, fused=False)
    assert a.shape == (3, 6, 16, 16) and (a - b).abs().max() < 1e-5

def test_modulated_conv_pointwise_is_a_batched_product():
    "1×1 modulated convs (config R, ToRGB) default to one bmm with per-sample weights: same values and gradients."
    torch.manual_seed(0)
    x, w, s = torch.randn(3, 4, 8, 8, requires_grad=True), torch.randn(6, 4, 1, 1, requires_grad=True), torch.randn(3, 4)
    outs = [modulated_conv2d(x, w, s, input_gain=torch.tensor(0.5), fused=f) for f in (None, False)]
    assert (outs[0] - outs[1]).abs().max() < 1e-5
    g = [torch.autograd.grad(o.square().sum(), [x, w]) for o in outs]
    for u, v in zip(*g): assert (u - v).abs().max() < 1e-4 * max(1, float(v.abs().max()))

def test_modulated_conv_takes_the_winograd_path_only_at_inference_on_large_maps(monkeypatch):
    "No gradient wanted and a map >= WINOGRAD_MIN_SIZE: NNPACK's Winograd kernel, per sample; otherwise F.conv2d."
    import sound_video_gen.generators.ops as ops
    calls = []
    real = ops.winograd_conv2d
    monkeypatch.setattr(ops, "winograd_conv2d", lambda *a: calls.append(a[0].shape) or real(*a))
    monkeypatch.setattr(ops, "_NNPACK_POOL", [])   # as if first: an earlier test may have changed torch's thread count
    torch.manual_seed(0)
    x, w, s = torch.randn(2, 16, 56, 56), torch.randn(8, 16, 3, 3), torch.randn(2, 16)
    with torch.no_grad():
        exact = modulated_conv2d(x, w, s, padding=1, fused=False)
        fast = modulated_conv2d(x, w, s, padding=1)
    assert len(calls) == int(torch.backends.nnpack.is_available())    # no NNPACK (x86 without AVX2): F.conv2d
    # Winograd F(6x6, 3x3) sums larger intermediate terms: ~1.5e-5 of the largest output, measured (F.conv2d: 3e-7)
    assert (fast - exact).abs().max() <= 5e-5 * exact.abs().max()
    calls.clear()
    wg = w.clone().requires_grad_()
    y = modulated_conv2d(x, wg, s, padding=1)                          # the weight wants a gradient: the exact convolution
    assert not calls and (y.detach() - exact).abs().max() <= 1e-5 * exact.abs().max()
    with torch.no_grad():
        modulated_conv2d(x[:, :, :40, :40], w, s, padding=1)            # below the threshold
        monkeypatch.setattr(ops, "WINOGRAD_MIN_SIZE", None)
        assert torch.equal(modulated_conv2d(x, w, s, padding=1), exact)   # batch 2: scaled activations, as before
        monkeypatch.setattr(ops, "WINOGRAD_MIN_SIZE", 48)
        monkeypatch.setattr(ops, "_NNPACK_POOL", [torch.get_num_threads() + 1])   # NNPACK's pool has another size
        assert torch.equal(modulated_conv2d(x, w, s, padding=1), exact)  # so F.conv2d keeps to torch's thread count
    assert not calls

@pytest.mark.parametrize("padding", [0, 1, 2])
def test_frozen_weight_conv_runs_winograd_both_ways_with_the_exact_gradient(monkeypatch, padding):
    "x wants a gradient, the weight none: forward and backward through Winograd, equal to F.conv2d's, twice differentiable."
    import sound_video_gen.generators.ops as ops
    calls = []
    real = ops.winograd_conv2d
    monkeypatch.setattr(ops, "winograd_conv2d", lambda *a: calls.append((tuple(a[0].shape), a[2])) or real(*a))
    monkeypatch.setattr(ops, "_NNPACK_POOL", [])
    torch.manual_seed(0)
    x, w = torch.randn(2, 5, 50, 50, requires_grad=True), torch.randn(7, 5, 3, 3)
    gy = torch.randn(2, 7, 50 + 2 * padding - 2, 50 + 2 * padding - 2, requires_grad=True)
    y = frozen_weight_conv2d(x, w, padding)
    gx, = torch.autograd.grad(y, x, gy, create_graph=True)
    ref = torch.nn.functional.conv2d(x, w, padding=padding)
    gref, = torch.autograd.grad(ref, x, gy, create_graph=True)
    nnpack = torch.backends.nnpack.is_available()
    assert len(calls) == 2 * nnpack                                  # the forward pass and the input's gradient
    if nnpack: assert calls[1] == ((2, 7) + gy.shape[2:], 2 - padding)   # the adjoint: padded by 2 - p
    assert (y - ref).abs().max() <= 5e-5 * ref.abs().max()
    assert (gx - gref).abs().max() <= 5e-5 * gref.abs().max()
    # the gradient's own backward (double backpropagation) is the forward convolution again
    v = torch.randn_like(gx)
    ggy, = torch.autograd.grad(gx, gy, v)
    ggy_ref, = torch.autograd.grad(gref, gy, v)
    assert (ggy - ggy_ref).abs().max() <= 5e-5 * ggy_ref.abs().max()
    calls.clear()
    wg = w.clone().requires_grad_()
    assert torch.equal(frozen_weight_conv2d(x, wg, padding), ref)   # the weight wants a gradient: F.conv2d
    with torch.no_grad(): assert torch.equal(frozen_weight_conv2d(x, w, padding), ref)   # nothing records: F.conv2d
    assert torch.equal(frozen_weight_conv2d(x[:, :, :40, :40], w, padding), torch.nn.functional.conv2d(x[:, :, :40, :40], w, padding=padding))
    assert not calls

def test_stage3_generator_gradient_through_winograd_matches_the_direct_convolutions(monkeypatch):
    "A frozen StyleGAN2's w+ gradient with its large maps through Winograd equals the one through F.conv2d."
    import sound_video_gen.generators.ops as ops
    monkeypatch.setattr(ops, "_NNPACK_POOL", [])
    monkeypatch.setattr(ops, "WINOGRAD_MIN_SIZE", 16)             # the tiny generator's 16² and 32² maps take it
    G = create_generator("stylegan2-tiny", seed=0).requires_grad_(False)
    ws = G.mapping(torch.randn(3, G.z_dim, generator=torch.Generator().manual_seed(1)), None).detach()
    def grad():
        w = ws.clone().requires_grad_()
        img = G.synthesis(w, noise_mode="const")
        return img.detach(), torch.autograd.grad(img.square().sum(), w)[0]
    img, g = grad()
    monkeypatch.setattr(ops, "WINOGRAD_MIN_SIZE", None)
    img_ref, g_ref = grad()
    assert (img - img_ref).abs().max() <= 1e-5 * img_ref.abs().max()
    assert (g - g_ref).abs().max() <= 1e-4 * g_ref.abs().max()
    assert torch.backends.nnpack.is_available() == (not torch.equal(g, g_ref))   # the path was taken where it exists

# ---------------------------------------------------------------- generators

@pytest.mark.parametrize("name", TINY)
def test_interface_and_fast_equals_ref(name):
    G = create_generator(name, seed=0).eval()
    for attr in ("z_dim", "c_dim", "w_dim", "num_ws", "img_resolution", "img_channels"):
        assert isinstance(getattr(G, attr), int)
    z = torch.randn(3, G.z_dim)
    with torch.no_grad():
        ws = G.mapping(z, None, truncation_psi=0.5, truncation_cutoff=2)
        assert ws.shape == (3, G.num_ws, G.w_dim)
        plain = G.mapping(z, None)
        assert torch.equal(ws[:, 2:], plain[:, 2:]) and not torch.equal(ws[:, :2], plain[:, :2])
        img = G.synthesis(ws, noise_mode="const")
        assert img.shape == (3, G.img_channels, G.img_resolution, G.img_resolution)
        assert torch.isfinite(img).all()
        if "stylegan3" in name:
            assert (img - G.synthesis(ws, noise_mode="const", impl="ref")).abs().max() < 1e-5
    with pytest.raises(UserError, match="ws must have shape"):
        G.synthesis(ws[:, :-1])
    with pytest.raises(UserError, match="noise_mode"):
        G.synthesis(ws, noise_mode="loud")

def test_stylegan2_inference_path_matches_autograd_path_and_sees_weight_updates():
    "No-grad StyleGAN2 (channels-last, cached per-weight terms) equals the autograd path, also after an in-place update."
    G = load_generator(DATA / "stylegan2-tiny.safetensors")
    ws = G.mapping(torch.randn(3, G.z_dim, generator=torch.Generator().manual_seed(0)), None).detach()
    def both():
        with torch.no_grad(): fast = G.synthesis(ws, noise_mode="const")
        plain = G.synthesis(ws, noise_mode="const").detach()        # grad mode: NCHW, nothing cached
        assert fast.is_contiguous() and (fast - plain).abs().max() < 1e-5
        return fast
    before = both()
    with torch.no_grad():
        for name, p in G.synthesis.named_parameters():
            if name.endswith("conv0.weight"):                           # in place: same tensor, new version
                p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(1)) * p.std())
    after = both()
    assert (after - before).abs().max() > 1e-3                        # the update was seen, not a stale cache
    H = load_generator(DATA / "stylegan2-tiny.safetensors")            # a second generator, same shapes
    with torch.no_grad(): assert torch.equal(H.synthesis(ws, noise_mode="const"), before)

def _golden_inputs():
    from safetensors.torch import load_file
    return load_file(str(DATA / "stylegan_golden.safetensors"))

@pytest.mark.parametrize("name", TINY)
def test_golden_outputs(name):
    "Stored tiny weights + z give the stored images (pins the architecture's numerics)."
    gold = _golden_inputs()
    G = load_generator(DATA / f"{name}.safetensors")
    with torch.no_grad():
        img = G(gold[f"{name}.z"], None, truncation_psi=0.7, noise_mode="const")
    assert (img - gold[f"{name}.img"]).abs().max() < 1e-5

@pytest.mark.parametrize("name", TINY)
def test_seeded_init_is_stable(name):
    "create_generator(name, seed=0) reproduces the stored tiny weights (the golden files' origin)."
    G = create_generator(name, seed=0)
    H = load_generator(DATA / f"{name}.safetensors")
    # Same random draws, but not bitwise: torch's vectorised randn (Box-Muller: log, sqrt, sin, cos) and the SG3
    # input's exp/pow run through SLEEF kernels whose last bits depend on the CPU's ISA (scalar, AVX2, AVX-512).
    # log(u) near u = 1 turns a 1-ulp difference into a larger relative one of a small radius, so the bound is
    # relative to each tensor's scale (std; the mapping layers' randn is scaled by 1/lr_multiplier = 100).
    # Measured, scalar against AVX-512: at most 1.2e-6 relative and 6e-7 of the scale absolute; 1e-5 leaves 10x.
    for (k, a), (k2, b) in zip(G.state_dict().items(), H.state_dict().items()):
        assert k == k2, (k, k2)
        scale = float(b.float().std()) if b.is_floating_point() and b.numel() > 1 else 1.0
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5 * max(scale, 1e-3), msg=k)
    other = create_generator(name, seed=1)
    assert any((a - b).abs().max() > 1e-2 for a, b in zip(other.state_dict().values(), H.state_dict().values())
               if a.is_floating_point() and a.numel() > 1)

def test_named_configs_and_paper_config():
    names = list_generator_configs()
    for n in ("stylegan3-t-tiny", "stylegan3-r-tiny", "stylegan2-tiny", "stylegan3-t-paper", "stylegan2-64"):
        assert n in names
    from sound_video_gen.core import get_config
    cfg = get_config("stylegan3-t-paper")
    assert (cfg.cfg, cfg.img_resolution, cfg.mapping_layers, cfg.z_dim, cfg.w_dim) == ("T", 256, 2, 512, 512)
    G = create_generator("stylegan3-t-paper")
    assert G.num_ws == 16 and G.img_resolution == 256
    assert get_config("stylegan3-r-tiny").cfg == "R"
    with pytest.raises(UserError, match="power of two"):
        create_generator("stylegan3-t-tiny", img_resolution=48)
    with pytest.raises(UserError, match="no config named"):
        create_generator("stylegan9-tiny")

def test_safetensors_roundtrip(tmp_path):
    G = create_generator("stylegan2-tiny", seed=3).eval()
    f = save_generator(G, tmp_path / "g.safetensors")
    H = load_generator(f)
    z = torch.randn(2, G.z_dim)
    with torch.no_grad():
        assert torch.equal(G(z, noise_mode="const"), H(z, noise_mode="const"))
    with pytest.raises(UserError, match="exists"):
        save_generator(G, f, overwrite=False)

def test_input_affine_constant():
    G = create_generator("stylegan3-t-tiny", seed=0).eval()
    with torch.no_grad():
        G.synthesis.input.affine.weight.normal_()
        G.mapping.w_avg.normal_()
        G.synthesis.input.transform[0, 2] = 0.3
    Gc = input_affine_constant(G)
    a, b = torch.randn(1, G.w_dim), torch.randn(1, G.w_dim)
    with torch.no_grad():
        assert (Gc.synthesis.input(a) - Gc.synthesis.input(b)).abs().max() < 1e-6
        assert (G.synthesis.input(a) - G.synthesis.input(b)).abs().max() > 1e-3   # the original is untouched
    assert torch.equal(Gc.synthesis.input.transform, torch.eye(3)) and G.synthesis.input.transform[0, 2] == 0.3
    with pytest.raises(UserError, match="StyleGAN3"):
        input_affine_constant(create_generator("stylegan2-tiny"))

# ---------------------------------------------------------------- official pickle layout

@pytest.fixture
def nv_names(monkeypatch):
    "Register module names like NVlabs' so stand-in objects pickle under the official global names."
    persistence, util = types.ModuleType("torch_utils.persistence"), types.ModuleType("dnnlib.util")
    ran = []
    def _reconstruct_persistent_obj(meta):
        ran.append(meta)
        raise AssertionError("the loader must never call the pickled reconstruct function")
    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj
    class EasyDict(dict): pass
    EasyDict.__module__, EasyDict.__qualname__ = "dnnlib.util", "EasyDict"
    util.EasyDict = EasyDict
    tu, dn = types.ModuleType("torch_utils"), types.ModuleType("dnnlib")
    tu.persistence, dn.util = persistence, util
    for k, v in {"torch_utils": tu, "torch_utils.persistence": persistence, "dnnlib": dn, "dnnlib.util": util}.items():
        monkeypatch.setitem(sys.modules, k, v)
    return types.SimpleNamespace(reconstruct=_reconstruct_persistent_obj, EasyDict=EasyDict, ran=ran)

class NVStandIn:
    "A module pickled the way NVlabs' persistent_class.__reduce__ pickles it (meta dict with source, class, state)."
    def __init__(self, names, module, class_name=None, init_kwargs=None, src="raise SystemExit('never run')"):
        self.names, self.module, self.src = names, module, src
        self.class_name, self.init_kwargs = class_name or type(module).__name__, init_kwargs or {}
    def __reduce__(self):
        m = self.module
        state = dict(m.__dict__)  # everything torch keeps: training flag, hook dicts, _parameters, _buffers, ...
        state["_modules"] = collections.OrderedDict((k, NVStandIn(self.names, v)) for k, v in m._modules.items())
        state["_init_args"], state["_init_kwargs"] = (), self.names.EasyDict(self.init_kwargs)
        state = {k: v for k, v in state.items() if k != "cfg" and isinstance(v, (dict, tuple, list, bool, int, float, str, np.ndarray, np.generic))}
        meta = dict(type="class", version=6, module_src=self.src, class_name=self.class_name, state=state)
        return self.names.reconstruct, (meta,)

def _nv_kwargs(G):
    c = G.cfg
    base = dict(z_dim=c.z_dim, c_dim=c.c_dim, w_dim=c.w_dim, img_resolution=c.img_resolution, img_channels=c.img_channels)
    if type(G).__name__ == "StyleGAN3Generator":
        kw = dict(base, mapping_kwargs=dict(num_layers=c.mapping_layers), channel_base=c.channel_base, channel_max=c.channel_max,
                  magnitude_ema_beta=np.float64(c.magnitude_ema_beta), num_fp16_res=4, conv_clamp=256)
        if c.use_radial_filters: kw.update(conv_kernel=1, use_radial_filters=True)
        return kw
    # StyleGAN2-ADA nests the synthesis arguments
    return dict(base, mapping_kwargs=dict(num_layers=c.mapping_layers),
                synthesis_kwargs=dict(channel_base=c.channel_base, channel_max=c.channel_max, num_fp16_res=4, conv_clamp=256, architecture="skip"))

def _randomise(G):
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for n, t in list(G.named_parameters()) + list(G.named_buffers()):
            if "filter" in n or n.endswith(("freqs", "phases", "transform")): continue
            t.add_(torch.randn(t.shape, generator=g) * 0.1)

@pytest.mark.parametrize("name", TINY)
def test_official_layout_pickle_loads(tmp_path, nv_names, name):
    G = create_generator(name, seed=0).eval()
    _randomise(G)
    f = tmp_path / "network-snapshot-000000.pkl"
    data = {"G": NVStandIn(nv_names, G, "Generator", _nv_kwargs(G)), "D": None, "G_ema": NVStandIn(nv_names, G, "Generator", _nv_kwargs(G)),
            "augment_pipe": None, "training_set_kwargs": nv_names.EasyDict(resolution=G.img_resolution)}
    f.write_bytes(pickle.dumps(data))
    raw = load_network_pkl(f)
    assert isinstance(raw["G_ema"], PickledModule) and raw["G_ema"].class_name == "Generator"
    H = load_generator(f)
    assert type(H) is type(G) and H.cfg == G.cfg
    z = torch.randn(2, G.z_dim)
    with torch.no_grad():
        assert (G(z, noise_mode="const") - H(z, noise_mode="const")).abs().max() < 1e-6
    if name == "stylegan2-tiny": assert type(load_generator(f, which="G")) is type(G)
    assert nv_names.ran == []
    with pytest.raises(UserError, match="which"):
        load_generator(f, which="D")

def test_malicious_reduce_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    class Evil:
        def __reduce__(self): return (os.system, (f"touch {marker}",))
    f = tmp_path / "evil.pkl"
    f.write_bytes(pickle.dumps({"G_ema": Evil()}))
    with pytest.raises(UserError, match="refusing to load '(posix|os|nt)\\.system'"):
        load_generator(f)
    assert not marker.exists()
    f.write_bytes(pickle.dumps({"G_ema": Evil()}, protocol=0))  # the text protocol goes through the same gate
    with pytest.raises(UserError, match="refusing"):
        load_network_pkl(f)
    assert not marker.exists()

def test_stored_source_is_never_executed(tmp_path, nv_names):
    marker = tmp_path / "ran"
    G = create_generator("stylegan2-tiny", seed=0)
    f = tmp_path / "g.pkl"
    f.write_bytes(pickle.dumps({"G_ema": NVStandIn(nv_names, G, "Generator", _nv_kwargs(G), src=f"open({str(marker)!r}, 'w')")}))
    load_generator(f)
    assert not marker.exists() and nv_names.ran == []

def test_other_globals_refused(tmp_path):
    for obj in (eval, __import__("subprocess").Popen, torch.nn.Linear):
        f = tmp_path / "x.pkl"
        f.write_bytes(pickle.dumps({"G_ema": obj}))
        with pytest.raises(UserError, match="refusing"):
            load_network_pkl(f)

def test_wrong_architecture(tmp_path, nv_names):
    # a pickled Generator whose synthesis is neither StyleGAN2 nor StyleGAN3
    odd = torch.nn.Module()
    odd.mapping, odd.synthesis = torch.nn.Linear(2, 2), torch.nn.Sequential(torch.nn.Linear(2, 2))
    f = tmp_path / "odd.pkl"
    f.write_bytes(pickle.dumps({"G_ema": NVStandIn(nv_names, odd, "Generator", {})}))
    with pytest.raises(UserError, match="unknown generator architecture"):
        load_generator(f)
    # a discriminator is not a generator
    f.write_bytes(pickle.dumps({"G_ema": NVStandIn(nv_names, torch.nn.Linear(2, 2), "Discriminator", {})}))
    with pytest.raises(UserError, match="unknown architecture: a Discriminator"):
        load_generator(f)

def test_mismatched_tensor_and_unknown_kwarg_name_the_key(tmp_path, nv_names):
    G = create_generator("stylegan3-t-tiny", seed=0)
    kw = _nv_kwargs(G)
    kw["channel_max"] = 32  # the stored kwargs say 32 channels, the tensors have 16
    f = tmp_path / "bad.pkl"
    f.write_bytes(pickle.dumps({"G_ema": NVStandIn(nv_names, G, "Generator", kw)}))
    with pytest.raises(UserError, match=r"missing synthesis\.L0_36_32\.weight.*shape mismatch synthesis\.input\.weight \(16, 16\) vs \(32, 32\)"):
        load_generator(f)
    kw = dict(_nv_kwargs(G), warp_drive=True)
    f.write_bytes(pickle.dumps({"G_ema": NVStandIn(nv_names, G, "Generator", kw)}))
    with pytest.raises(UserError, match="warp_drive"):
        load_generator(f)
    # a tensor the architecture does not have
    G.synthesis.register_buffer("extra", torch.zeros(3))
    f.write_bytes(pickle.dumps({"G_ema": NVStandIn(nv_names, G, "Generator", _nv_kwargs(G))}))
    with pytest.raises(UserError, match=r"unexpected synthesis\.extra"):
        load_generator(f)

def test_bad_files(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_generator(tmp_path / "missing.pkl")
    f = tmp_path / "junk.pkl"
    f.write_bytes(b"this is not a pickle")
    with pytest.raises(UserError, match="not a readable network pickle"):
        load_generator(f)
    f.write_bytes(pickle.dumps({"G_ema": 3}))
    with pytest.raises(UserError, match="holds no network"):
        load_generator(f)

# ---------------------------------------------------------------- CLI

def test_cli_convert_and_grid(tmp_path, nv_names):
    from sound_video_gen.cli import dispatch
    from sound_video_gen.core import run_cli
    G = create_generator("stylegan2-tiny", seed=0).eval()
    pkl = tmp_path / "net.pkl"
    pkl.write_bytes(pickle.dumps({"G_ema": NVStandIn(nv_names, G, "Generator", _nv_kwargs(G))}))
    out, grid = tmp_path / "g.safetensors", tmp_path / "grid.png"
    assert run_cli(dispatch, ["generator", str(pkl), "--to", str(out), "--grid", str(grid), "--n", "3"]) == 0
    H = load_generator(out)
    z = torch.randn(2, G.z_dim)
    with torch.no_grad():
        assert (G(z, noise_mode="const") - H(z, noise_mode="const")).abs().max() < 1e-6
    from PIL import Image
    assert Image.open(grid).size == (3 * 32, 32)
    assert run_cli(dispatch, ["generator", str(pkl), "--to", str(out)]) == 2          # exists, no --overwrite
    assert run_cli(dispatch, ["generator", str(pkl)]) == 2                            # nothing to do
    assert run_cli(dispatch, ["generator", str(tmp_path / "nope.pkl"), "--to", str(tmp_path / "x.safetensors")]) == 2


def test_hostile_pickle_is_refused_before_allocating(tmp_path, nv_names):
    "A small pickle whose stored arguments ask for a huge network is refused by name; nothing is built."
    import resource
    G = create_generator("stylegan2-tiny", seed=0).eval()
    kw = _nv_kwargs(G)
    kw["synthesis_kwargs"] = dict(kw["synthesis_kwargs"], channel_base=2**30, channel_max=2**20)
    f = tmp_path / "small.PKL"            # the suffix is checked case-insensitively
    f.write_bytes(pickle.dumps({"G_ema": NVStandIn(nv_names, G, "Generator", kw)}))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(UserError, match=r"channel_base.*never run"):
        load_generator(f)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000   # KiB: no gigabytes were touched
    assert not nv_names.ran


def test_pickle_whose_tensors_do_not_fit_is_refused_on_the_meta_device(tmp_path, nv_names):
    G = create_generator("stylegan2-tiny", seed=0).eval()
    kw = _nv_kwargs(G)
    kw["synthesis_kwargs"] = dict(kw["synthesis_kwargs"], channel_max=kw["synthesis_kwargs"]["channel_max"] * 2)
    f = tmp_path / "g.pkl"
    f.write_bytes(pickle.dumps({"G_ema": NVStandIn(nv_names, G, "Generator", kw)}))
    with pytest.raises(UserError, match="shape mismatch"):
        load_generator(f)
