"""`sound-video-gen train-demo`: the recipe that trains the demo model, stage by stage.

The recipe is `STAGES`, a fixed list. Each stage is the argv of an existing `sound-video-gen` command, run in this
process through that command's own entry point (`cli.dispatch`) after its command line is printed, so the recipe
does exactly what a user could type. In a stage's argv, `{run}` is `--run-dir`, `{data}` the dataset folder (stage
`data` makes it), `{<stage>}` the file another stage leaves (its `out`) and `{<stage>_dir}` that file's folder.

A stage counts as done when its `out` file exists and, for a checkpoint that records its step, that step has reached
the stage's `--max-steps` (or, without that flag, the `max_steps` of the run's `config.json`). Only
`train-generator` writes its `out` (G_ema.safetensors) before the end of its run, at every checkpoint; the other
commands write theirs once, at the end. A stage that is not done runs again, and its command resumes its run folder.
The `bundle` stage trains nothing (`assembles`): it is also redone when one of its inputs is newer than the bundle or
is being made in the same invocation.

With `--from-package`, an upstream stage that is not run and whose `out` is missing is replaced by the matching file
of the demo bundle shipped in the package (`sound_video_gen/pretrained/demo/`: generator, clip, audio encoder), so a
later stage can start from an earlier stage's committed result on a machine without the run folder.

Each finished stage appends one JSON line to `RUN/recipe.jsonl` (stage, argv, wall seconds). Before the `bundle`
stage the recipe (every stage's argv) and those seconds are written to `RUN/recipe.json`, which `bundle --training`
records in the bundle's training facts.
"""
from __future__ import annotations
import json
import os
import re
import shlex
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from sound_video_gen.cli.common import THREADS, ArgParser
from sound_video_gen.core import UserError, atomic_write_text, make_dir

__all__ = ["Stage", "STAGES", "PACKAGE_BUNDLE", "PACKAGE_ROLES", "package_bundle", "plan", "main"]


@dataclass(frozen=True)
class Stage:
    "One step of the recipe: a command line and the file it leaves when it is done."
    name: str               # the name `--stages` uses
    argv: tuple[str, ...]   # the command after `sound-video-gen`, with {run}, {data}, {<stage>} and {<stage>_dir}
    out: str                # the file the stage leaves when done
    threads: bool = True    # the command takes --threads
    assembles: bool = False # it trains nothing, only puts its inputs together: redone when one of them is newer or runs now


DEMO_DATA = "SynthScapes v1, 9 classes x 80 clips, 64x64, 16 fps"
# stage 3's terms: the teacher (per group and its steps), loudness sync per layer group and the regulariser towards
# the anchor, all in W+
SSVG_ANCHORED_SETS = ("render_every=0", "w_teacher=1", "w_teacher_motion=1", "w_sync=0.2", "sync_groups=true", "w_reg=0.01", "w_clip_audio=0",
                      "w_clip_text=0", "w_adv_image=0", "w_adv_video=0", "lr_recurrent=5e-4", "log_every=25",
                      "ckpt_every=100", "progress=false")

STAGES: tuple[Stage, ...] = (
    Stage("data", ("synthscapes", "{data}", "--n-per-class", "80", "--size", "64"),
          "{data}/synthscapes.json", threads=False),
    Stage("classifier", ("bench", "train", "{data}", "--run-dir", "{run}/ssclf"),
          "{run}/ssclf/classifier.safetensors", threads=False),
    Stage("generator", ("train-generator", "{data}", "--run-dir", "{run}/generator", "--config", "train-generator-demo",
                        "--ssclf", "{classifier}", "--max-steps", "4500", "--set", "ckpt_every=250", "sample_every=250"),
          "{run}/generator/G_ema.safetensors"),
    Stage("clip", ("train-clip", "{data}", "--run-dir", "{run}/clip", "--set", "class_prompt_p=0.3"),
          "{run}/clip/clip.safetensors"),
    Stage("audio", ("train-audio-clip", "{data}", "--run-dir", "{run}/fa", "--clip", "{clip}",
                    "--encoder", "audio-encoder-synthscapes", "--max-steps", "1500"),
          "{run}/fa/audio_encoder.safetensors"),
    # The image -> W+ encoder that editing inverts real images with (pixel L2, the classifier-feature distance,
    # the latent regulariser and CLIP; half generator samples, half real frames). Stage 3 inverts every training clip
    # with it: those trajectories are its teachers.
    Stage("inverter", ("train-inverter", "{data}", "--run-dir", "{run}/inverter", "--generator", "{generator}",
                       "--clip", "{clip}", "--classifier", "{classifier}", "--max-steps", "1000", "--set", "progress=false"),
          "{run}/inverter/image_encoder.safetensors"),
    # Stage 3, the package's sound-anchored path (`model.anchored`): w_t = w_avg + (running mean of E_a) + a bounded
    # residual, trained in W+ against the training clips' own inverted trajectories (cached in DATA/.teacher_cache)
    # and a loudness-sync term; no step renders G.
    Stage("ssvg", ("train-ssvg", "{data}", "--run-dir", "{run}/ssvg", "--model", "ssvg-anchored-demo", "--generator", "{generator}",
                   "--teacher", "{inverter}", "--frames", "16", "--max-steps", "400", "--batch-size", "16",
                   "--set", *SSVG_ANCHORED_SETS),
          "{run}/ssvg/ssvg.safetensors"),
    # The editor: the paper's configuration of stage 3 (CLIP terms, adversarial terms and the editing term rendering
    # frames), whose E_a gives the edit directions ŵ = w + α·E_a(x); 8-frame windows, then whole 4-s clips.
    Stage("editor", ("train-ssvg", "{data}", "--run-dir", "{run}/editor", "--model", "ssvg-demo", "--generator", "{generator}",
                     "--clip", "{clip}", "--audio-encoder", "{audio}", "--frames", "8", "--max-steps", "600",
                     "--batch-size", "4", "--set", "w_edit=1.0", "w_edit_keep=0.002", "ckpt_every=50", "sample_every=200"),
          "{run}/editor/ssvg.safetensors"),
    Stage("editor_long", ("train-ssvg", "{data}", "--run-dir", "{run}/editor_long", "--model", "ssvg-demo",
                          "--generator", "{generator}", "--clip", "{clip}", "--audio-encoder", "{audio}", "--frames", "64",
                          "--max-steps", "600", "--batch-size", "4", "--set", "w_edit=1.0", "w_edit_keep=0.002",
                          "ckpt_every=50", "sample_every=250", "train_frames=8", "init_from={editor_dir}/checkpoint.safetensors"),
          "{run}/editor_long/ssvg.safetensors"),
    Stage("bundle", ("bundle", "{run}/bundle", "--model", "{ssvg_dir}", "--generator", "{generator}",
                     "--audio-encoder", "{audio}", "--clip", "{clip}", "--image-encoder", "{inverter}", "--editor", "{editor_long}",
                     "--data", DEMO_DATA,
                     "--training", "{run}/recipe.json", "--dtype", "float16", "--overwrite"),
          "{run}/bundle/bundle.json", threads=False, assembles=True),
)

PACKAGE_BUNDLE = "demo"                                                      # sound_video_gen/pretrained/<this>/
PACKAGE_ROLES = {"generator": "generator", "clip": "clip", "audio": "audio_encoder", "inverter": "image_encoder",
                 "editor_long": "editor"}   # stage -> role in bundle.json
RECIPE_LOG, RECIPE_FACTS = "recipe.jsonl", "recipe.json"
_FIELD = re.compile(r"\{(\w+)\}")


def package_bundle() -> Path:
    "The folder of the demo bundle shipped in the package."
    from sound_video_gen.model.bundle import pretrained_dir
    return pretrained_dir() / PACKAGE_BUNDLE


def _package_file(stage: str) -> Path:
    "The shipped demo bundle's file standing in for `stage`'s output."
    from sound_video_gen.model.bundle import BUNDLE_CARD, bundle_paths
    folder = package_bundle()
    if not (folder / BUNDLE_CARD).is_file():
        raise UserError(f"--from-package: no demo bundle ships with this package yet ({folder} has no {BUNDLE_CARD}), "
                        f"so the output of stage {stage} has to come from running it.")
    path = bundle_paths(folder).get(PACKAGE_ROLES[stage])
    if path is None:
        raise UserError(f"--from-package: the demo bundle {folder} has no {PACKAGE_ROLES[stage]} file for stage {stage}.")
    return path


def _needs(stage: Stage) -> list[str]:
    "The other stages whose products this stage's argv names, in recipe order."
    names = {f.removesuffix("_dir") for a in stage.argv for f in _FIELD.findall(a)} - {"run", stage.name}
    return [s.name for s in STAGES if s.name in names]


def _max_steps(argv: list[str]) -> int | None:
    return int(argv[argv.index("--max-steps") + 1]) if "--max-steps" in argv else None


def _step(path: Path) -> int | None | bool:
    "The step a checkpoint records; None when it records none; False when it cannot be read."
    from sound_video_gen.core import read_checkpoint_meta
    try: meta = read_checkpoint_meta(path)[1]
    except UserError: return False
    step = meta.get("step", meta.get("steps"))
    return step if isinstance(step, int) and not isinstance(step, bool) else None


def _state(out: Path, argv: list[str]) -> tuple[bool, str]:
    "(done, words) for a stage whose output file is `out` and whose command line is `argv`."
    target = _max_steps(argv)
    if target is None and (out.parent / "config.json").is_file():
        try: target = json.loads((out.parent / "config.json").read_text()).get("max_steps")
        except (OSError, ValueError, AttributeError): target = None
    of = f" of {target}" if isinstance(target, int) else ""
    if not out.is_file():
        ckpt = out.parent / "checkpoint.safetensors"   # the resumable state of a train-* run
        step = _step(ckpt) if out.suffix == ".safetensors" and ckpt.is_file() else None
        return False, f"checkpoint at step {step}{of}" if step is not False and isinstance(step, int) else "missing"
    if out.suffix != ".safetensors": return True, "done"
    step = _step(out)
    if step is False: return False, "unreadable"
    if step is not None and isinstance(target, int) and step < target: return False, f"at step {step}{of}"
    return True, "done"


@dataclass
class Planned:
    "A stage with its resolved command line and what happens to it."
    stage: Stage
    argv: list[str]      # after `sound-video-gen`
    out: Path
    selected: bool       # named by --stages
    done: bool
    state: str           # done, missing, at step s of n, checkpoint at step s of n, unreadable, older than its inputs
    inputs: dict         # stage name -> the file used for it (a path in the run folder or in the package)

    @property
    def runs(self) -> bool: return self.selected and not self.done

    @property
    def line(self) -> str: return "sound-video-gen " + shlex.join(self.argv)


def plan(run: str | Path, data: str | Path | None = None, stages: list[str] | None = None, from_package: bool = False,
         threads: int | None = None) -> list[Planned]:
    "Every stage of the recipe with its command line, whether it is selected and done, and where its inputs come from."
    run = str(run)
    data = str(data) if data is not None else str(Path(run) / "data")
    names = [s.name for s in STAGES]
    chosen = set(names if stages is None else stages)
    bad = [s for s in chosen if s not in names]
    if bad: raise UserError(f"unknown stage {sorted(bad)[0]!r} in --stages; choose from {', '.join(names)}.")
    outs = {s.name: Path(_FIELD.sub(lambda m: {"run": run, "data": data}[m.group(1)], s.out)) for s in STAGES}
    planned: dict[str, Planned] = {}
    for s in STAGES:
        done, state = _state(outs[s.name], list(s.argv))
        if s.assembles and done:   # stale when an input is newer, or is being made in this run
            newer = lambda f: f.is_file() and f.stat().st_mtime > outs[s.name].stat().st_mtime
            if any(planned[n].runs or newer(outs[n]) for n in _needs(s)): done, state = False, "older than its inputs"
        runs = s.name in chosen and not done
        # Where each input comes from: a stage selected now, or an existing output, or (--from-package) the shipped bundle.
        inputs = {}
        for need in _needs(s):
            p = outs[need]
            if need in chosen or p.is_file() or not runs: inputs[need] = p
            elif from_package and need in PACKAGE_ROLES: inputs[need] = _package_file(need)
            else:
                hint = ", or pass --from-package" if need in PACKAGE_ROLES else ""
                raise UserError(f"stage {s.name} needs {p}, the output of stage {need}: add {need} to --stages{hint}.")
        values = {**{k: str(v) for k, v in inputs.items()}, **{f"{k}_dir": str(v.parent) for k, v in inputs.items()},
                  "run": run, "data": data}   # {data} is the dataset folder, not stage data's file
        argv = [_FIELD.sub(lambda m: values[m.group(1)], a) for a in s.argv]
        if threads is not None and s.threads: argv += ["--threads", str(threads)]
        planned[s.name] = Planned(s, argv, outs[s.name], s.name in chosen, done, state, inputs)
    return list(planned.values())


def _status(p: Planned) -> str:
    if p.runs:
        if p.state == "missing": return "pending"
        return f"pending ({p.state}; resumes)" if "step" in p.state else f"pending ({p.state})"
    if p.selected: return "done"
    return f"not run ({p.state})"


def _append_line(path: Path, record: dict) -> None:
    "Append one JSON line with a single write (O_APPEND), so a line is whole or absent."
    data = (json.dumps(record) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally: os.close(fd)


def _portable(line: str, steps: list[Planned]) -> str:
    "A recipe line with this machine's folders named RUN, DATA and PACKAGE (the shipped demo bundle), as the README writes them."
    data = next((str(p.out.parent) for p in steps if p.stage.name == "data"), None)
    run = next((str(p.out.parent.parent) for p in steps if p.stage.name == "classifier"), None)
    for path, name in ((str(package_bundle()), "PACKAGE"), (data, "DATA"), (run, "RUN")):
        if path: line = line.replace(path, name)
    return line


def _recipe_facts(steps: list[Planned], log: Path) -> dict:
    "What the bundle records about how it was trained: every stage's command line and its last wall time."
    seconds, lines = {}, {p.stage.name: p.line for p in steps}
    if log.is_file():
        for line in log.read_text(encoding="utf-8").splitlines():
            try: rec = json.loads(line)
            except ValueError: continue
            if isinstance(rec, dict) and rec.get("stage") in lines and isinstance(rec.get("argv"), list):
                seconds[rec["stage"]] = rec.get("seconds")
                lines[rec["stage"]] = shlex.join(rec["argv"])   # what actually ran
    facts = {"recipe": [_portable(l, steps) for l in lines.values()], "stage_seconds": seconds}
    from_pkg = {k: f"PACKAGE/{v.name}" for p in steps for k, v in p.inputs.items() if v.parent == package_bundle()}
    if from_pkg: facts["from_package"] = from_pkg
    return facts


def _check_writable_folder(path: str, flag: str) -> None:
    """A folder the recipe can write in, checked as a real run would (dry runs too): not a file or device, and
    inside a folder where a new folder can be made (probed with a temporary one, removed at once)."""
    import tempfile
    p = Path(path)
    if p.exists() and not p.is_dir(): raise UserError(f"{flag} {p} is a file or a device, not a folder.")
    base = p
    while not base.exists(): base = base.parent
    if not base.is_dir(): raise UserError(f"{flag} {p} cannot be made: {base} is a file, not a folder.")
    try: Path(tempfile.mkdtemp(prefix=".svg-probe.", dir=base)).rmdir()
    except OSError as e: raise UserError(f"{flag} {p} cannot be written: {e.strerror or e} in {base}.") from None


def _check_data(data: str, steps) -> None:
    "The dataset folder: a folder, or one the data stage makes in this run."
    p = Path(data)
    if p.exists() and not p.is_dir(): raise UserError(f"the dataset {p} is a file or a device, not a folder.")
    makes = next((s for s in steps if s.stage.name == "data"), None)
    reads = [s for s in steps if s.runs and s.stage.name != "data" and str(p) in s.argv]
    if not p.exists() and (reads or (makes is not None and makes.runs)):
        if makes is None or not makes.runs:
            raise UserError(f"dataset folder {p} does not exist, and the data stage (which makes it) is not being run; "
                            f"stage {reads[0].stage.name} reads it.")
        _check_writable_folder(data, "--data")


def main(argv: list[str] | None = None) -> int:
    names = ", ".join(s.name for s in STAGES)
    p = ArgParser(prog="sound-video-gen train-demo",
                  description="Train the demo model: run the recipe's stages in order (" + names + "), each the "
                              "command line of another sound-video-gen command, printed before it runs. A stage whose "
                              "output is complete is skipped; the others resume their run folders.")
    p.add_argument("--run-dir", required=True, help="the recipe's folder: one run folder per stage, recipe.jsonl, bundle/")
    p.add_argument("--data", help="the SynthScapes folder (default: RUN_DIR/data)")
    p.add_argument("--stages", help=f"comma-separated subset to run, in recipe order (default: all of {names})")
    p.add_argument("--from-package", action="store_true", help="take a missing output of a stage not being run from the "
                   "demo bundle shipped in the package (generator, clip, audio)")
    p.add_argument("--threads", type=THREADS, help="torch CPU threads (passed to the stages that take --threads)")
    p.add_argument("--dry-run", action="store_true", help="print each stage's command line and whether it is done, then stop")
    a = p.parse_args(argv)
    stages = None
    if a.stages is not None:
        stages = [s.strip() for s in a.stages.split(",") if s.strip()]
        if not stages: raise UserError(f"--stages is empty; name some of {names}.")
    _check_writable_folder(a.run_dir, "--run-dir")
    steps = plan(a.run_dir, a.data, stages, a.from_package, a.threads)
    _check_data(a.data or str(Path(a.run_dir) / "data"), steps)
    width = max(len(s.name) for s in STAGES)
    if a.dry_run:
        for s in steps:
            print(f"{s.stage.name:<{width}}  {_status(s)}\n{'':<{width}}  {s.line}")
            for need, src in s.inputs.items():
                if src.parent == package_bundle(): print(f"{'':<{width}}  ({need} from the package: {src})")
        return 0
    todo = [s for s in steps if s.runs]
    for s in steps:
        if s.selected and not s.runs: print(f"stage {s.stage.name}: done ({s.out})")
    if not todo: return 0
    run = make_dir(a.run_dir, "run folder")
    if a.threads is not None:
        import torch
        torch.set_num_threads(a.threads)   # bench train and synthscapes have no --threads; they run in this process
    from sound_video_gen.cli import dispatch
    for s in todo:
        if s.stage.name == "bundle": atomic_write_text(run / RECIPE_FACTS, json.dumps(_recipe_facts(steps, run / RECIPE_LOG), indent=2) + "\n")
        print(f"\n== stage {s.stage.name}\n$ {s.line}", flush=True)
        t0 = time.perf_counter()
        try: rc = dispatch(s.argv)
        except UserError as e: raise UserError(f"stage {s.stage.name}: {e}") from None
        if rc: raise UserError(f"stage {s.stage.name} exited with code {rc}.")
        seconds = round(time.perf_counter() - t0, 1)
        _append_line(run / RECIPE_LOG, {"stage": s.stage.name, "argv": ["sound-video-gen", *s.argv], "seconds": seconds,
                                        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds")})
        print(f"== stage {s.stage.name} finished in {seconds:.0f} s", flush=True)
    return 0
