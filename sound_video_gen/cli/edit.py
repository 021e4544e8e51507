"""`sound-video-gen edit-image` and `edit-video`: edit a picture (or a random scene) or a video with a sound,
ŵ = w + α·E_a(x), with a model bundle (`apps.editing`)."""
from __future__ import annotations
from pathlib import Path

from sound_video_gen.cli.common import PSI, SEED, THREADS, ArgParser, check_out, ranged
from sound_video_gen.core import UserError, atomic_path

GROUP_NAMES = ("coarse", "mid", "fine")
ALPHA = ranged(float, -10, 10)
START = ranged(float, 0, 86_400)
STEPS = ranged(int, 1, 100_000)
SMOOTH = ranged(float, 0, 100)
MODEL_HELP = "a bundle folder, a shipped bundle's name (e.g. demo) or a Hugging Face repo id"


def parse_groups(text: str) -> list[str]:
    "'coarse,mid' -> ['coarse', 'mid'], checked (one sentence for an unknown or empty group)."
    names = [g.strip() for g in text.split(",")]
    bad = [g for g in names if g not in GROUP_NAMES]
    if bad or not names: raise UserError(f"--groups takes a comma-separated list of {', '.join(GROUP_NAMES)}, got {text!r}.")
    return list(dict.fromkeys(names))


def _common(p: ArgParser) -> None:
    p.add_argument("--model", default="demo", help=f"{MODEL_HELP} (default demo)")
    p.add_argument("--alpha", type=ALPHA, default=1.0, help="edit strength α in [-10, 10] (default 1)")
    p.add_argument("--groups", default="coarse,mid,fine", help="W+ layer groups that take the edit, comma-separated (default coarse,mid,fine)")
    p.add_argument("--invert", default="auto", choices=["auto", "encoder", "projector", "encoder+projector"],
                   help="how images are inverted: the bundle's image encoder if it has one, else the projector (auto)")
    p.add_argument("--steps", type=STEPS, help="projector steps (default: the projector's)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--threads", type=THREADS, help="torch CPU threads")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")


def _check_input(path: str, what: str) -> Path:
    p = Path(path)
    if not p.exists(): raise UserError(f"{what} {p} does not exist.")
    if not p.is_file(): raise UserError(f"{what} {p} is not a file.")
    return p


def _pipe(a):
    import torch
    from sound_video_gen.apps.pipeline import SoundToVideo
    if a.threads: torch.set_num_threads(a.threads)
    return SoundToVideo.from_pretrained(a.model, device=a.device)


def image_main(argv: list[str]) -> int:
    p = ArgParser(prog="sound-video-gen edit-image", description="Edit a picture, or a random scene (--seed), with a "
                  "sound: the picture is inverted into W+ (w), the sound's mel window at --start gives E_a(x), and "
                  "w + α·E_a(x) on --groups is rendered to a PNG.")
    p.add_argument("inputs", nargs="+", metavar="IMAGE SOUND", help="the picture and the sound (with --seed: the sound only)")
    p.add_argument("-o", "--out", required=True, help="output .png")
    p.add_argument("--seed", type=SEED, help="edit a random scene from this seed instead of a picture")
    p.add_argument("--psi", type=PSI, default=0.7, help="truncation of a --seed scene (default 0.7)")
    p.add_argument("--start", type=START, default=0.0, help="time (s) of the sound's window (default 0: its first whole window)")
    p.add_argument("--side-by-side", action="store_true", help="write [picture |] before | after instead of the edit alone")
    _common(p)
    a = p.parse_args(argv)
    want = 1 if a.seed is not None else 2
    if len(a.inputs) != want:
        raise UserError("give SOUND only with --seed." if a.seed is not None else "give IMAGE and SOUND (or --seed N and SOUND).")
    image = _check_input(a.inputs[0], "image") if a.seed is None else None
    sound = _check_input(a.inputs[-1], "sound")
    groups = parse_groups(a.groups)
    out = check_out(a.out, a.overwrite, (".png",), inputs=a.inputs)
    from PIL import Image
    from sound_video_gen.apps.editing import edit_image
    pipe = _pipe(a)
    e = edit_image(pipe, sound, image=image, seed=a.seed, alpha=a.alpha, groups=groups, start=a.start, invert=a.invert,
                   psi=a.psi, steps=a.steps)
    img = e.side_by_side() if a.side_by_side else e.after
    with atomic_path(out, overwrite=a.overwrite) as tmp: Image.fromarray(img).save(tmp, format="PNG")
    print(f"wrote {out} (α {a.alpha:g} on {'+'.join(groups)}, the sound's window at {e.time:.2f} s)")
    return 0


def video_main(argv: list[str]) -> int:
    p = ArgParser(prog="sound-video-gen edit-video", description="Edit a video with a sound: every frame is inverted "
                  "into W+, the trajectory smoothed, the new sound's per-frame edits α·E_a(x_t) added (--mode offsets) "
                  "or the recurrent block's drift (--mode recurrent), and the result written with the new sound.")
    p.add_argument("video", help="the input video")
    p.add_argument("sound", help="the new sound (a sound or video file)")
    p.add_argument("-o", "--out", required=True, help="output .mp4")
    p.add_argument("--mode", default="anchor", choices=["anchor", "offsets", "recurrent"], help="anchor (default: the clip moved onto the sound's own path, its motion kept), the paper's per-frame offsets, or the recurrent rollout's drift")
    p.add_argument("--smooth", type=SMOOTH, default=1.0, help="Gaussian σ in frames over the inverted latents (default 1; 0 = none)")
    p.add_argument("--editor", action="store_true", help="edit with the bundle's editor instead of the model's own E_a (the default, which measured better on videos)")
    p.add_argument("--start", type=START, default=0.0, help="where in the sound the edit starts (s)")
    p.add_argument("--max-frames", type=ranged(int, 2, 10**6), help="edit only the first N frames of the video")
    _common(p)
    a = p.parse_args(argv)
    video, sound = _check_input(a.video, "video"), _check_input(a.sound, "sound")
    groups = parse_groups(a.groups)
    out = check_out(a.out, a.overwrite, (".mp4",), inputs=(video, sound))
    from sound_video_gen.apps.editing import edit_video
    pipe = _pipe(a)
    r = edit_video(pipe, video, sound, alpha=a.alpha, groups=groups, mode=a.mode, smooth=a.smooth, out=out,
                   overwrite=a.overwrite, start=a.start, invert=a.invert, steps=a.steps, max_frames=a.max_frames, editor=a.editor)
    print(f"wrote {out} ({len(r.frames)} frames at {r.fps:g} fps, α {a.alpha:g} on {'+'.join(groups)}, {a.mode})")
    return 0
