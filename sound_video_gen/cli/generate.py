"`sound-video-gen generate` (a sound, a video's sound, or a folder of them → mp4) and `sound-video-gen bundle`."
from __future__ import annotations
from pathlib import Path

from sound_video_gen.cli.common import FPS, SECONDS, ArgParser, check_out, ranged
from sound_video_gen.core import UserError, check_regular_file, make_dir, read_json

MEDIA_EXTS = {".wav", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif", ".au", ".opus", ".m4a", ".aac",
              ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi"}


def _inputs(src: Path) -> list[Path]:
    if src.is_dir():
        files = sorted(p for p in src.iterdir() if p.is_file() and p.suffix.lower() in MEDIA_EXTS)
        if not files: raise UserError(f"folder {src} holds no sound or video files ({', '.join(sorted(MEDIA_EXTS))}).")
        return files
    return [check_regular_file(src, "input")]


def _outputs(files: list[Path], src: Path, out: str | None, overwrite: bool) -> list[Path]:
    if src.is_dir():
        folder = Path(out) if out else src / "generated"
        if folder.suffix.lower() == ".mp4": raise UserError(f"the input is a folder, so -o must be a folder, got {folder}.")
        if not folder.parent.is_dir(): raise UserError(f"output folder {folder.parent} does not exist.")
        if folder.exists() and not folder.is_dir(): raise UserError(f"{folder} is a file, not a folder.")
        outs = [folder / f"{f.stem}.mp4" for f in files]
    else:
        default = src.with_suffix(".mp4") if src.suffix.lower() != ".mp4" else src.with_name(f"{src.stem}.generated.mp4")
        outs = [Path(out) if out else default]
    if len({o.resolve() for o in outs}) != len(outs): raise UserError("two inputs would write the same output name; rename one.")
    for f, o in zip(files, outs):
        if f.resolve() == o.resolve(): raise UserError(f"the output {o} would replace its own input; pass -o.")
        if not src.is_dir() or o.parent.is_dir(): check_out(o, overwrite, (".mp4",))  # a new output folder is made after the model loads
    return outs


def main(argv: list[str] | None = None) -> int:
    p = ArgParser(prog="sound-video-gen generate", description="Turn a sound (or a video's sound, or a folder of them) "
                  "into a video that follows it, written as an h264 + AAC mp4 carrying the sound.")
    p.add_argument("src", help="a sound file, a video with sound, or a folder of them")
    p.add_argument("-o", "--out", help="output .mp4 (a folder when SRC is a folder); default: SRC with .mp4")
    p.add_argument("--model", default="demo", help="bundle: a folder, a shipped bundle's name, or a Hugging Face repo id (default: demo)")
    p.add_argument("--fps", type=FPS, help="frame rate (default: the model's)")
    p.add_argument("--start", type=ranged(float, 0, 10**6), default=0.0, help="start this many seconds into the sound")
    p.add_argument("--seconds", type=SECONDS, help="use this many seconds of sound (default: to the end)")
    p.add_argument("--seed", type=int, default=0, help="seed of the rollout noise and (through its own stream) of a random first latent")
    p.add_argument("--w0", choices=["sound", "w_avg", "random"], default="sound", help="first latent (the anchored path's base): from the sound (default), the average, or random (with --psi)")
    p.add_argument("--psi", type=float, help="truncation of a random first latent, in [-2, 2] (default: the model's)")
    p.add_argument("--beta", type=float, help="step size of the rollout, in [0, 10] (default: the model's; the released generator used 0.4)")
    p.add_argument("--groups", default="all", help="layer groups that move: all, or a comma list of coarse,mid,fine")
    p.add_argument("--sound", choices=["all", "first", "none"], help="what the model hears: every window, only the first, or none (default: the model's)")
    p.add_argument("--horizon", type=ranged(int, 0, 10**5), help="anchored models: a fresh GRU rollout every this many frames, 0 for one rollout (default: the model's, 16)")
    p.add_argument("--crossfade", type=ranged(int, 0, 10**5), help="anchored models: frames over which one rollout hands over to the next (default: the model's, 8)")
    p.add_argument("--batch-size", type=ranged(int, 1, 4096), default=16, help="frames per network call")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--preview", action="store_true", help="also write OUT.png: a filmstrip under the spectrogram")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    a = p.parse_args(argv)
    from sound_video_gen.model.generation import GenerateOptions
    groups = None if a.groups == "all" else [g.strip() for g in a.groups.split(",") if g.strip()]
    options = GenerateOptions(a.seed, a.w0, a.psi, a.beta, groups, a.sound, a.horizon, a.crossfade)   # every knob checked here, once, before anything loads
    src = Path(a.src)
    files = _inputs(src)
    outs = _outputs(files, src, a.out, a.overwrite)
    if a.preview:
        for o in outs: check_out(o.with_suffix(".png"), a.overwrite, (".png",))
    from sound_video_gen.apps.pipeline import SoundToVideo
    s2v = SoundToVideo.from_pretrained(a.model, device=a.device)
    if src.is_dir(): make_dir(outs[0].parent, "output folder")
    for f, o in zip(files, outs):
        timings: dict = {}
        s2v.save(o, f, options, overwrite=a.overwrite, preview=o.with_suffix(".png") if a.preview else None, progress=not a.quiet,
                 batch_size=a.batch_size, timings=timings, fps=a.fps, start=a.start, seconds=a.seconds)
        total = sum(timings.values())
        print(f"wrote {o} ({', '.join(f'{k} {v:.1f} s' for k, v in timings.items())}; {total:.1f} s)")
    return 0


def bundle_main(argv: list[str] | None = None) -> int:
    p = ArgParser(prog="sound-video-gen bundle", description="Assemble a model bundle (generator, SSVG model, F_a, "
                  "CLIP + bundle.json with sha256s) from files or run folders, add optional parts to one with --add, "
                  "or verify one with --verify.")
    p.add_argument("out", help="the bundle folder to write (or to check, with --verify)")
    p.add_argument("--verify", action="store_true", help="check OUT: every file's sha256, and that the parts fit")
    p.add_argument("--generator", help="generator: .safetensors or NVlabs .pkl (default: what the SSVG run used)")
    p.add_argument("--model", help="SSVG model: ssvg.safetensors or a train-ssvg run folder")
    p.add_argument("--audio-encoder", help="F_a: audio_encoder.safetensors or a train-audio-clip run folder (default: what the SSVG run used)")
    p.add_argument("--clip", help="CLIP: clip.safetensors or a train-clip run folder (default: what the SSVG run used, if a file)")
    p.add_argument("--image-encoder", help="image -> W+ encoder: image_encoder.safetensors or a train-inverter run folder (optional)")
    p.add_argument("--editor", help="an SSVG model whose E_a edits (e.g. the paper's configuration): ssvg.safetensors or a train-ssvg run folder (optional)")
    p.add_argument("--name", help="bundle name (default: the folder's)")
    p.add_argument("--description", default="", help="one line for people")
    p.add_argument("--data", help="what the model was trained on (recorded in bundle.json)")
    p.add_argument("--training", help="a JSON file with an object of training facts to record (e.g. the recipe); --data goes over it")
    p.add_argument("--scores", help="a JSON file of measured scores to record")
    p.add_argument("--dtype", choices=["float16", "bfloat16", "float32"],
                   help="store the weights in this precision (float16: half the bytes; loaders cast to float32)")
    p.add_argument("--add", nargs="+", metavar="ROLE=FILE", help="add optional parts to the existing bundle OUT in place, "
                   "e.g. image_encoder=RUN/inverter (a file or a run folder; roles audio_encoder, clip, image_encoder, editor)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing bundle folder (with --add: an existing part)")
    a = p.parse_args(argv)
    from sound_video_gen.model.bundle import add_to_bundle, make_bundle, verify_bundle
    if a.add:
        if a.model or a.verify: raise UserError("--add changes an existing bundle; it does not go with --model or --verify.")
        for item in a.add:
            role, eq, src = item.partition("=")
            if not eq or not role or not src: raise UserError(f"--add takes ROLE=FILE, got {item!r}.")
            card = add_to_bundle(a.out, role, src, dtype=a.dtype, overwrite=a.overwrite)
            print(f"added {role} to {a.out} ({card['files'][role]['bytes']} bytes)")
        return 0
    if a.verify:
        card = verify_bundle(a.out)
        listed = ", ".join(f"{role} {entry['path']}" for role, entry in card["files"].items())
        print(f"{a.out}: ok ({listed})")
        return 0
    if not a.model: raise UserError("pass --model (ssvg.safetensors or a train-ssvg run folder), or --verify.")
    run = read_json(Path(a.model) / "config.json", "run config") if (Path(a.model) / "config.json").is_file() else {}
    def pick(flag, key):
        if flag: return flag
        v = run.get(key)
        return v if isinstance(v, str) and Path(v).exists() else None
    generator = pick(a.generator, "generator")
    if generator is None: raise UserError("pass --generator (the run folder does not name an existing generator file).")
    training = {}
    if a.training: training = read_json(a.training, "--training facts file", max_bytes=2**20)
    if a.data: training["data"] = a.data
    scores = read_json(a.scores, "--scores file", max_bytes=2**20) if a.scores else None
    out = make_bundle(a.out, generator, a.model, pick(a.audio_encoder, "audio_encoder"), pick(a.clip, "clip"), a.image_encoder, name=a.name,
                      training=training or None, scores=scores, description=a.description,
                      overwrite=a.overwrite, dtype=a.dtype, editor=a.editor)
    print(f"wrote bundle {out}")
    return 0
