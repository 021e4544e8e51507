"`sound-video-gen synthscapes`: make a SynthScapes dataset folder (and optionally check it)."
from __future__ import annotations
import json
import time

from sound_video_gen.cli.common import FPS, SAMPLE_RATE, SEED, SIZE, ArgParser, ranged
from sound_video_gen.core import UserError


def _size(text: str):
    "N or HxW, each side in [8, 4096]."
    parts = text.lower().split("x")
    if len(parts) > 2: raise UserError(f"--size must be an integer or HxW, got {text!r}.")
    try: sides = [SIZE(p) for p in parts]
    except Exception as e: raise UserError(f"--size: {e} (an integer or HxW, each side in [8, 4096]).") from None
    return tuple(sides) if len(sides) == 2 else sides[0]


def main(argv: list[str] | None = None) -> int:
    from sound_video_gen.data.synthscapes import CLASSES, coupling_report, make_synthscapes
    p = ArgParser(prog="sound-video-gen synthscapes", description="Generate SynthScapes: procedural landscape clips "
                  "(h264 + AAC mp4) whose motion is driven by their sound, with a metadata table and per-clip motion drivers.")
    p.add_argument("folder", help="dataset folder to create")
    p.add_argument("--classes", default=",".join(CLASSES), help=f"comma-separated classes (default: all {len(CLASSES)})")
    p.add_argument("--n-per-class", type=ranged(int, 1, 100_000), default=100, help="clips per class (default 100)")
    p.add_argument("--seconds", type=ranged(float, 0.25, 600), default=4.0, help="clip duration (default 4)")
    p.add_argument("--size", type=_size, default=64, help="frame size: N or HxW (default 64)")
    p.add_argument("--fps", type=FPS, default=16, help="frame rate (default 16)")
    p.add_argument("--sr", type=SAMPLE_RATE, default=16000, help="audio sample rate (default 16000)")
    p.add_argument("--seed", type=SEED, default=0, help="dataset seed (default 0)")
    p.add_argument("--splits", default="0.8,0.1,0.1", help="train,val,test fractions (default 0.8,0.1,0.1)")
    p.add_argument("--workers", type=ranged(int, 1, 64), default=1, help="processes (default 1)")
    p.add_argument("--overwrite", action="store_true", help="write into a folder that already holds a dataset")
    p.add_argument("--check", action="store_true", help="afterwards, print classifier accuracies and motion correlations as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    a = p.parse_args(argv)
    classes = [c.strip() for c in a.classes.split(",") if c.strip()]
    try: splits = tuple(float(x) for x in a.splits.split(","))
    except ValueError: raise UserError(f"--splits must be three comma-separated numbers, got {a.splits!r}.") from None
    fps = int(a.fps) if float(a.fps).is_integer() else a.fps
    t0 = time.perf_counter()
    meta = make_synthscapes(a.folder, classes=classes, n_per_class=a.n_per_class, seconds=a.seconds, size=a.size, fps=fps,
                            sr=a.sr, seed=a.seed, splits=splits, workers=a.workers, overwrite=a.overwrite, progress=not a.quiet)
    dt = time.perf_counter() - t0
    n = len(classes) * a.n_per_class
    print(f"wrote {n} clips ({len(classes)} classes) to {a.folder} in {dt:.1f} s ({n / dt:.1f} clips/s); table: {meta}")
    if a.check: print(json.dumps(coupling_report(a.folder)))
    return 0
