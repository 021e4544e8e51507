"`sound-video-gen generator`: convert an official NVlabs pickle to our safetensors, or render a sample grid."
from __future__ import annotations
from pathlib import Path

from sound_video_gen.cli.common import PSI, SEED, ArgParser, check_out, ranged
from sound_video_gen.core import UserError, atomic_path


def main(argv: list[str] | None = None) -> int:
    p = ArgParser(prog="sound-video-gen generator", description="Convert a StyleGAN2/StyleGAN3 generator "
                  "(NVlabs .pkl, read without running code from it) to a .safetensors file, and/or render samples.")
    p.add_argument("src", help="NVlabs .pkl, our .safetensors, or a generator config name (random weights)")
    p.add_argument("--to", help="write the generator here as .safetensors")
    p.add_argument("--which", default="G_ema", choices=["G_ema", "G"], help="network to take from a .pkl (default G_ema)")
    p.add_argument("--grid", help="render a grid of samples to this .png")
    p.add_argument("--n", type=ranged(int, 1, 64), default=8, help="samples in the grid (default 8)")
    p.add_argument("--seed", type=SEED, default=0, help="seed of the grid's latents")
    p.add_argument("--psi", type=PSI, default=1.0, help="truncation psi (default 1)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    a = p.parse_args(argv)
    if not a.to and not a.grid: raise UserError("nothing to do: pass --to FILE.safetensors and/or --grid FILE.png.")
    if a.to: check_out(a.to, a.overwrite, (".safetensors",), inputs=(a.src,))
    if a.grid: check_out(a.grid, a.overwrite, (".png",))
    from sound_video_gen.generators.factory import load_generator, save_generator
    G = load_generator(a.src, which=a.which)
    if a.to:
        save_generator(G, a.to, overwrite=a.overwrite, meta={"source": Path(a.src).name})
        print(f"wrote {a.to} ({type(G).__name__}, {G.img_resolution}x{G.img_resolution}, num_ws {G.num_ws})")
    if a.grid:
        import torch, numpy as np
        from PIL import Image
        g = torch.Generator().manual_seed(a.seed)
        z = torch.randn(a.n, G.z_dim, generator=g)
        c = torch.zeros(a.n, G.c_dim) if G.c_dim else None
        with torch.no_grad(): img = G(z, c, truncation_psi=a.psi, noise_mode="const")
        img = ((img.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
        grid = np.concatenate(list(img), axis=1)
        with atomic_path(a.grid, overwrite=a.overwrite) as tmp: Image.fromarray(grid).save(tmp, format="PNG")
        print(f"wrote {a.grid} ({a.n} samples, psi {a.psi})")
    return 0
