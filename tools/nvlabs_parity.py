"""Render the tiny test generators with NVlabs' own code, for the parity test (tests/test_nvlabs_parity.py).

    python tools/nvlabs_parity.py --nvlabs /path/to/NVlabs/stylegan3 [--out tests/data/nvlabs_parity.safetensors]

For each tiny generator in tests/data (stylegan3-t-tiny, stylegan3-r-tiny, stylegan2-tiny) this builds NVlabs'
`training.networks_stylegan3.Generator` or `training.networks_stylegan2.Generator` with the same hyperparameters,
loads our stored weights into it with `load_state_dict(strict=True)` (our modules keep NVlabs' parameter names), and
renders fixed z on the CPU in float32 with constant noise: the mapping's w at ψ = 1, the images at ψ = 1 and ψ = 0.7.
NVlabs' code is used from the given checkout and is not copied; only the rendered tensors are written.
"""
from __future__ import annotations
import argparse, json, subprocess, sys
from pathlib import Path

import torch
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parent.parent
TINY = ("stylegan3-t-tiny", "stylegan3-r-tiny", "stylegan2-tiny")


def nvlabs_generator(cfg, nv2, nv3):
    "NVlabs' Generator for one of our StyleGAN2Config / StyleGAN3Config."
    mapping = dict(num_layers=cfg.mapping_layers, lr_multiplier=cfg.lr_multiplier, w_avg_beta=cfg.w_avg_beta)
    common = dict(z_dim=cfg.z_dim, c_dim=cfg.c_dim, w_dim=cfg.w_dim, img_resolution=cfg.img_resolution,
                  img_channels=cfg.img_channels, mapping_kwargs=mapping, channel_base=cfg.channel_base,
                  channel_max=cfg.channel_max, num_fp16_res=cfg.num_fp16_res, conv_clamp=cfg.conv_clamp)
    if type(cfg).__name__ == "StyleGAN3Config":
        return nv3.Generator(**common, num_layers=cfg.num_layers, num_critical=cfg.num_critical, first_cutoff=cfg.first_cutoff,
                             first_stopband=cfg.first_stopband, last_stopband_rel=cfg.last_stopband_rel,
                             margin_size=cfg.margin_size, output_scale=cfg.output_scale, conv_kernel=cfg.conv_kernel,
                             filter_size=cfg.filter_size, lrelu_upsampling=cfg.lrelu_upsampling,
                             use_radial_filters=cfg.use_radial_filters, magnitude_ema_beta=cfg.magnitude_ema_beta)
    return nv2.Generator(**common, use_noise=cfg.use_noise)


def import_nvlabs(path) -> tuple:
    "NVlabs' `training.networks_stylegan2` and `networks_stylegan3` from a checkout (their code stays there)."
    sys.path.insert(0, str(Path(path).resolve()))
    try: import pkg_resources  # noqa: F401  (NVlabs' conv2d_gradfix imports parse_version from it)
    except ImportError:
        import types
        from packaging.version import parse
        sys.modules["pkg_resources"] = types.SimpleNamespace(parse_version=parse)
    import training.networks_stylegan2 as nv2
    import training.networks_stylegan3 as nv3
    return nv2, nv3


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nvlabs", required=True, help="a checkout of github.com/NVlabs/stylegan3")
    p.add_argument("--out", default=str(ROOT / "tests" / "data" / "nvlabs_parity.safetensors"))
    p.add_argument("--n", type=int, default=3, help="latents per generator (default 3)")
    a = p.parse_args(argv)
    nv = Path(a.nvlabs).resolve()
    if not (nv / "training" / "networks_stylegan3.py").is_file():
        p.error(f"{nv} is not a checkout of NVlabs/stylegan3 (no training/networks_stylegan3.py)")
    nv2, nv3 = import_nvlabs(nv)
    from sound_video_gen.generators.factory import load_generator
    torch.set_num_threads(1)
    out, info = {}, {}
    for name in TINY:
        ours = load_generator(ROOT / "tests" / "data" / f"{name}.safetensors")
        G = nvlabs_generator(ours.cfg, nv2, nv3).eval().requires_grad_(False)
        G.load_state_dict(ours.state_dict(), strict=True)
        z = torch.randn([a.n, G.z_dim], generator=torch.Generator().manual_seed(123))
        with torch.no_grad():
            ws = G.mapping(z, None, truncation_psi=1.0)
            out[f"{name}.z"] = z
            out[f"{name}.ws"] = ws
            out[f"{name}.img"] = G.synthesis(ws, noise_mode="const", force_fp32=True)
            out[f"{name}.img_psi07"] = G(z, None, truncation_psi=0.7, noise_mode="const", force_fp32=True)
        base = type(G).__mro__[1]   # under NVlabs' persistent_class decorator
        info[name] = f"{base.__module__}.{base.__qualname__}"
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=nv, capture_output=True, text=True).stdout.strip() or None
    except OSError:
        commit = None
    meta = {"what": "tiny generators rendered by NVlabs' code (CPU, float32, noise_mode='const')",
            "nvlabs_commit": json.dumps(commit), "networks": json.dumps(info), "torch": torch.__version__,
            "command": "python tools/nvlabs_parity.py --nvlabs NVLABS_STYLEGAN3"}
    save_file({k: v.contiguous() for k, v in out.items()}, a.out, metadata=meta)
    print(f"wrote {a.out}: {', '.join(TINY)} ({a.n} latents each) from NVlabs/stylegan3 {commit or '(commit unknown)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
