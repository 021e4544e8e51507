"""`sound-video-gen invert`: images -> W+ latents of a bundle's generator (`model.inversion.invert`), written as
safetensors (`ws`, (N, num_ws, w_dim), with the method and the image names in its meta), and optionally a png with
the inputs on the top row and their reconstructions below."""
from __future__ import annotations
import json
from pathlib import Path

from sound_video_gen.cli.common import SEED, THREADS, ArgParser, check_out, ranged
from sound_video_gen.core import UserError, check_regular_file

METHOD_CHOICES = ("encoder", "projector", "encoder+projector")


def main(argv: list[str] | None = None) -> int:
    p = ArgParser(prog="sound-video-gen invert",
                  description="Invert images into the W+ space of a bundle's generator with its image encoder, the "
                              "optimisation projector, or the projector started from the encoder; write the latents.")
    p.add_argument("images", nargs="+", help="image files (png, jpg, ...); each is scaled and centre-cropped to the generator's resolution")
    p.add_argument("--model", default="demo", help="a bundle folder or a shipped bundle's name (default demo)")
    p.add_argument("--method", choices=METHOD_CHOICES, default="encoder", help="inversion method (default encoder)")
    p.add_argument("--steps", type=ranged(int, 1, 100_000), default=200, help="projector steps (default 200)")
    p.add_argument("--space", choices=("w", "wplus"), default="wplus", help="projector space (default wplus)")
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("-o", "--out", required=True, help="output .safetensors with the latents")
    p.add_argument("--save-png", action="store_true", help="also write OUT.png: inputs (top) and reconstructions (bottom)")
    p.add_argument("--threads", type=THREADS, help="torch CPU threads")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    a = p.parse_args(argv)
    out = check_out(a.out, a.overwrite, (".safetensors",), inputs=a.images)
    png = out.with_suffix(".png") if a.save_png else None
    if png is not None: check_out(png, a.overwrite, (".png",), inputs=a.images)
    from sound_video_gen.apps.editing import load_image   # the same checks as edit-image: size, mode, aspect, bombs
    for f in a.images: load_image(check_regular_file(f, "image"), 16)   # refuse a bad image before loading the model
    import torch
    if a.threads: torch.set_num_threads(a.threads)
    from sound_video_gen.apps.pipeline import SoundToVideo
    from sound_video_gen.core import save_checkpoint
    from sound_video_gen.model.inversion import invert, pixel_mse, project, synthesize
    pipe = SoundToVideo.from_pretrained(a.model)
    G, enc = pipe.G, pipe.image_encoder
    if a.method != "projector" and enc is None:
        raise UserError(f"bundle {a.model!r} has no image encoder; use --method projector, or add one "
                        "(train-inverter, then 'sound-video-gen bundle BUNDLE --add image_encoder=FILE').")
    x = torch.cat([load_image(f, G.img_resolution) for f in a.images]).to(next(G.parameters()).device)
    if a.method == "encoder": ws = invert(G, x, "encoder", encoder=enc)
    else:
        init = invert(G, x, "encoder", encoder=enc) if a.method == "encoder+projector" else None
        ws = project(G, x, steps=a.steps, space=a.space, seed=a.seed, init=init, progress=True)
    with torch.no_grad(): rec = synthesize(G, ws).clamp(-1, 1)
    mse = pixel_mse(rec, x)
    meta = {"method": a.method, "steps": a.steps if a.method != "encoder" else 0, "bundle": str(a.model),
            "images": [Path(f).name for f in a.images], "pixel_mse": [round(float(v), 6) for v in mse]}
    save_checkpoint(out, {"ws": ws.float().cpu().contiguous()}, meta=meta)
    if png is not None:
        from sound_video_gen.train.generator import image_grid, save_png
        save_png(image_grid(torch.cat([x, rec.cpu()]), rows=2), png)
    print(json.dumps({"out": str(out), **({"png": str(png)} if png else {}), "shape": list(ws.shape),
                      "pixel_mse": meta["pixel_mse"]}))
    return 0
