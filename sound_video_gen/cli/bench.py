"""`sound-video-gen bench`: train the SynthScapes-Bench classifier, score a method, print a results table, run Table 2,
score image and video editing.

`--model` takes a bundle folder, a shipped bundle's name (`demo`) or an ssvg.safetensors file. A bundle is resolved
here (`apps.pipeline`, which `metrics` must not import) into its ssvg file and its generator; the generator is then
used by every latent method unless `--generator` is given, so all methods render with the same G.
"""
from __future__ import annotations
import json
import shlex
from pathlib import Path

from sound_video_gen.cli.common import PSI, SEED, ArgParser, check_data_dir, check_out, ranged
from sound_video_gen.core import UserError, atomic_write_text, check_regular_file, get_config, list_configs
from sound_video_gen.model.bundle import model_files
from sound_video_gen.model.generation import GenerateOptions

BETA = ranged(float, 0, 10)
MAX_ALPHAS = 64   # `bench edit` renders every scene once per α
MODEL_HELP = "a bundle folder, a shipped bundle's name (e.g. demo), or an ssvg.safetensors file"


def _generator(a, files) -> str | None:
    "--generator, else the bundle's generator (`files`: `model_files` of --model, or None)."
    return a.generator or (str(files.generator) if files is not None and files.generator else None)


def _provenance(argv_name: str, argv: list[str]) -> dict:
    return {"command": shlex.join(["sound-video-gen", "bench", argv_name, *argv])}


def _train(argv):
    from sound_video_gen.metrics.bench import SSClassifierConfig, train_classifier
    p = ArgParser(prog="sound-video-gen bench train", description="Train the benchmark's video classifier on the "
                  "train split of a SynthScapes folder; writes RUN_DIR/classifier.safetensors (+ .json), log.jsonl, "
                  "and a resumable ckpt.safetensors.")
    p.add_argument("data", help="SynthScapes dataset folder (metadata.csv + class folders)")
    p.add_argument("--run-dir", required=True, help="output folder (resumes if it holds a checkpoint)")
    p.add_argument("--config", help="SSClassifierConfig JSON file or named config (ssbench-classifier-v2: noise and flicker augmentation; default: v1)")
    p.add_argument("--max-steps", type=ranged(int, 1, 10**9), help="override max_steps")
    p.add_argument("--seed", type=SEED, help="override the seed")
    p.add_argument("--overwrite", action="store_true", help="discard an existing run in --run-dir and start again")
    a = p.parse_args(argv)
    if a.config and not Path(a.config).is_file() and a.config in list_configs():
        cfg = get_config(a.config)                     # a named config, e.g. ssbench-classifier-v2
    else:
        cfg = SSClassifierConfig.from_json(check_regular_file(a.config, "classifier config")) if a.config else SSClassifierConfig()
    if not isinstance(cfg, SSClassifierConfig): raise UserError(f"--config {a.config} is not a classifier config.")
    if a.max_steps is not None:
        cfg = cfg.replace(max_steps=a.max_steps)
    if a.seed is not None: cfg = cfg.replace(seed=a.seed)
    check_data_dir(a.data)
    out = train_classifier(a.data, a.run_dir, cfg, resume=not a.overwrite)
    from sound_video_gen.core import read_checkpoint_meta
    _, meta = read_checkpoint_meta(out)
    print(f"wrote {out} (train accuracy {meta['train_acc']:.3f} after {meta['steps']} steps)")
    return 0


def _check_length(data, split: str, frames: int, segments: int) -> None:
    "One sentence when frames × segments is longer than the shortest clip of the split (its last frame would repeat)."
    from sound_video_gen.data.clips import read_metadata
    table = Path(data) / "metadata.csv"
    if not table.is_file(): return   # not SynthScapes' table: the loader reports what is wrong
    lengths = [r["n_frames"] for r in read_metadata(table) if r.get("split") == split and isinstance(r.get("n_frames"), int)]
    if lengths and frames * segments > min(lengths):
        raise UserError(f"--frames {frames} × --segments {segments} is {frames * segments} frames, longer than the "
                        f"shortest {split} clip ({min(lengths)} frames).")


def _run(argv):
    from sound_video_gen.metrics.bench import benchmark, results_table
    from sound_video_gen.metrics.baselines import METHODS, SSVGMethod
    p = ArgParser(prog="sound-video-gen bench run", description="Score one method on SynthScapes-Bench: FVD-SS, "
                  "IS-SS, class consistency and sync; appends a JSON line to --log.")
    p.add_argument("data", help="SynthScapes dataset folder")
    p.add_argument("--classifier", required=True, help="classifier.safetensors from 'bench train'")
    p.add_argument("--method", required=True, choices=sorted(METHODS), help="method to score")
    p.add_argument("--model", help=f"the model for --method ssvg: {MODEL_HELP}; a bundle's generator is also used by "
                   "the other latent methods unless --generator is given")
    p.add_argument("--generator", help="generator for latent methods: a config name (random weights, e.g. stylegan2-64), "
                   "a .safetensors generator or an NVlabs .pkl (default: the --model bundle's)")
    p.add_argument("--sound", choices=["all", "first", "none"], help="ssvg only: sound at every frame, at the first only, "
                   "or none (default: the model's config)")
    p.add_argument("--beta", type=BETA, help="ssvg only: the rollout's step size (default: the model's config)")
    p.add_argument("--horizon", type=ranged(int, 0, 10**5), help="ssvg, anchored models: a fresh GRU rollout every this many "
                   "frames, 0 for one (default: the model's config); only videos longer than it change")
    p.add_argument("--crossfade", type=ranged(int, 0, 10**5), help="ssvg, anchored models: frames of each hand-over (default: the model's config)")
    p.add_argument("--label", help="free text stored in the record and shown in the table, e.g. 'ssvg sound=none'")
    p.add_argument("--split", default="test", choices=["test", "val"], help="sounds that drive the method (default test)")
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--max-clips", type=ranged(int, 2, 10**6), help="only the first N segments (quick runs)")
    p.add_argument("--frames", type=ranged(int, 2, 10**4), default=16, help="frames per segment (default 16, the "
                   "benchmark's protocol); each segment is rolled out afresh")
    p.add_argument("--segments", type=ranged(int, 1, 1000), default=4, help="consecutive segments per clip (default 4); "
                   "--frames 64 --segments 1 scores whole 4-s clips, as `generate` makes them")
    p.add_argument("--log", help="append the record to this .jsonl file")
    a = p.parse_args(argv)
    if a.log and not Path(a.log).parent.is_dir(): raise UserError(f"folder {Path(a.log).parent} does not exist.")
    if a.method == "ssvg" and not a.model: raise UserError(f"--method ssvg needs --model ({MODEL_HELP}).")
    if a.method != "ssvg" and (a.sound or a.beta is not None or a.horizon is not None or a.crossfade is not None):
        raise UserError("--sound, --beta, --horizon and --crossfade apply to --method ssvg only.")
    if a.method != "ssvg" and not METHODS[a.method].uses_generator and (a.generator or a.model):
        raise UserError(f"--method {a.method} renders no latents, so it would ignore --{'generator' if a.generator else 'model'}; drop it.")
    _check_length(a.data, a.split, a.frames, a.segments)
    files = model_files(a.model) if a.model else None
    if a.model and a.method != "ssvg" and files.generator is None:
        raise UserError("--model with another method than ssvg must be a bundle (its generator is used); an ssvg file serves --method ssvg only.")
    generator = _generator(a, files)
    if METHODS[a.method].uses_generator and generator is None:
        raise UserError(f"--method {a.method} needs a generator: pass --generator, or a bundle as --model.")
    method = SSVGMethod(str(files.ssvg), GenerateOptions(beta=a.beta, sound=a.sound, horizon=a.horizon,
                                                                   crossfade=a.crossfade)) if a.method == "ssvg" else a.method
    generator = generator if METHODS[a.method].uses_generator else None
    rec = benchmark(method, a.split, a.data, a.classifier, generator, a.seed, a.max_clips, a.log, n_frames=a.frames,
                    segments=a.segments, label=a.label, progress=True)
    print(results_table([rec]))
    if not rec["results"].get("num_sync"):
        print("note: sync is nan because no clip of this split has a motion driver (the <clip>.motion.npy files "
              "SynthScapes writes next to each video); sync needs them, the other scores do not.")
    return 0


def _table(argv):
    from sound_video_gen.metrics.bench import results_table
    p = ArgParser(prog="sound-video-gen bench table", description="Print the benchmark records of a .jsonl file as a markdown table.")
    p.add_argument("log", help="a .jsonl file written by 'bench run --log'")
    a = p.parse_args(argv)
    path = check_regular_file(a.log, "results file")
    try: text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError: raise UserError(f"{path} is not a UTF-8 text file (expected JSON lines from 'bench run --log').") from None
    recs = []
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip(): continue
        try: r = json.loads(line)
        except (json.JSONDecodeError, RecursionError): raise UserError(f"{path} line {i} is not JSON.") from None
        if not isinstance(r, dict): raise UserError(f"{path} line {i} is a JSON {type(r).__name__}, not an object (a record).")
        if str(r.get("benchmark", "")).startswith("synthscapes-bench"): recs.append(r)
    if not recs: raise UserError(f"{path} holds no SynthScapes-Bench records.")
    print(results_table(recs))
    return 0


def _model_args(p, data_help: str, generator_help: str) -> None:
    "The arguments `table2` and `edit` share: the dataset, the classifier, the model and its generator."
    p.add_argument("data", help=data_help)
    p.add_argument("--classifier", required=True, help="classifier.safetensors from 'bench train'")
    p.add_argument("--model", required=True, help=MODEL_HELP + " (a file needs --generator)")
    p.add_argument("--generator", help=generator_help)


def _model_and_generator(a):
    "(`model_files` of --model, the generator file) for --model and --generator."
    files = model_files(a.model)
    generator = _generator(a, files)
    if generator is None: raise UserError("--model is an ssvg file, not a bundle; pass --generator too.")
    return files, generator


def _write_json(out, res: dict, overwrite: bool) -> None:
    if out is None: return
    atomic_write_text(out, json.dumps(res, indent=2, default=str) + "\n", overwrite=overwrite)
    print(f"wrote {out}")


def _named_files(items: list[str], flag: str, form: str, what: str) -> dict:
    "{name: file} for NAME=FILE arguments, each file checked."
    out = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path: raise UserError(f"{flag} takes {form}, got {item!r}.")
        out[name] = check_regular_file(path, f"{flag} {what} {name}")
    return out


def _table2(argv):
    from sound_video_gen.metrics.bench import per_class_table, results_table, table2
    p = ArgParser(prog="sound-video-gen bench table2", description="Table 2 on SynthScapes-Bench: the model with sound "
                  "at every frame, at the first frame only and without sound, the audio-reactive walk, linear "
                  "interpolation and the real clips, every latent method on the bundle's generator; prints a markdown "
                  "table and writes the rows with their provenance (sha256s, seed, command) to --out.")
    _model_args(p, "SynthScapes dataset folder", "generator for every latent method (default: the bundle's)")
    p.add_argument("--beta", type=BETA, help="the model's rollout step size (default: its config)")
    p.add_argument("--split", default="test", choices=["test", "val"], help="sounds that drive the methods (default test)")
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--max-clips", type=ranged(int, 2, 10**6), help="only the first N segments (quick runs)")
    p.add_argument("--image-encoder", help="image encoder for the inverted-real ceiling row (default: the bundle's, if it "
                   "has one; 'none' leaves the row out)")
    p.add_argument("--compare", nargs="+", default=[], metavar="LABEL=SSVG",
                   help="more models on the same generator, each a row after the model's (e.g. paper=runs/p/ssvg.safetensors)")
    p.add_argument("--also", nargs="+", default=[], metavar="NAME=CLASSIFIER",
                   help="score every row again with these classifiers (e.g. v2=sound_video_gen/pretrained/ssbench/classifier_v2.safetensors)")
    p.add_argument("--out", help="write the results to this .json file")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    a = p.parse_args(argv)
    out = check_out(a.out, a.overwrite, (".json",)) if a.out else None
    files, generator = _model_and_generator(a)
    folder = files.folder
    also = _named_files(a.also, "--also", "NAME=CLASSIFIER", "classifier")
    compare = _named_files(a.compare, "--compare", "LABEL=FILE", "model")
    enc = a.image_encoder if a.image_encoder is not None else files.image_encoder
    if enc is not None and enc != "none": enc = check_regular_file(enc, "--image-encoder")
    res = table2(a.data, a.classifier, files.ssvg, generator, a.split, a.seed, a.max_clips, a.beta,
                 image_encoder=None if enc in (None, "none") else enc, compare=compare, also=also, progress=True)
    res = {**_provenance("table2", argv), "bundle": str(folder) if folder else None, **res}
    _write_json(out, res, a.overwrite)
    for name in (None, *also):
        print(f"\nclassifier {name or 'main'}:\n" + results_table(res["rows"], name) + "\n\n" + per_class_table(res["rows"], name))
    return 0


def _edit(argv):
    from sound_video_gen.generators.factory import load_generator
    from sound_video_gen.metrics.bench import load_classifier, load_split
    from sound_video_gen.metrics.editing import edit_success, edit_table, windows_by_class
    from sound_video_gen.model.editing import GROUPS
    from sound_video_gen.model.ssvg import load_ssvg
    p = ArgParser(prog="sound-video-gen bench edit", description="Editing success of the paper's image editing "
                  "ŵ = w + α·E_a(x_B): for random scenes and each sound class B they do not show, how often the "
                  "classifier's probability of B rises, its mean change, how often the frame flips to B, and how much "
                  "of the layout is kept; one row per α.")
    _model_args(p, "SynthScapes dataset folder (the split's windows are the sounds)", "generator (default: the bundle's)")
    p.add_argument("--alpha", type=ranged(float, -10, 10), nargs="+", default=[0.5, 1.0, 2.0], help="edit strengths α (default 0.5 1 2)")
    p.add_argument("--groups", choices=GROUPS, nargs="+", help="edit only these W+ layer groups (default: every layer)")
    p.add_argument("--own-encoder", action="store_true", help="edit with the model's own E_a even when the bundle has an editor")
    p.add_argument("--scenes", type=ranged(int, 1, 1024), default=64,
                   help="random scenes (default 64; at most 1024, as every edit of every scene is held for scoring)")
    p.add_argument("--psi", type=PSI, default=0.7, help="truncation of the scenes' latents (default 0.7)")
    p.add_argument("--split", default="test", choices=["train", "val", "test"], help="split whose windows are used (default test)")
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--out", help="write the results to this .json file")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    a = p.parse_args(argv)
    if len(a.alpha) > MAX_ALPHAS: raise UserError(f"--alpha takes at most {MAX_ALPHAS} values (one table row each), got {len(a.alpha)}.")
    out = check_out(a.out, a.overwrite, (".json",)) if a.out else None
    files, generator = _model_and_generator(a)
    model_file, folder = (files.ssvg if a.own_encoder else files.editor or files.ssvg), files.folder
    det = load_classifier(a.classifier)
    model, G = load_ssvg(model_file), load_generator(generator).eval().requires_grad_(False)
    wins = windows_by_class(load_split(a.data, a.split, progress=True))
    res = edit_success(model, G, det, wins, a.scenes, a.alpha, a.groups, a.seed, a.psi)
    res = {**_provenance("edit", argv), "bundle": _rel(folder) if folder else None, "split": a.split, "dataset": Path(a.data).name,
           **_files(model_file, generator), "package_version": _version(), **res}
    _write_json(out, res, a.overwrite)
    print(edit_table(res))
    return 0


def _edit_video(argv):
    import torch
    from sound_video_gen.generators.factory import load_generator
    from sound_video_gen.metrics.bench import load_classifier, load_split
    from sound_video_gen.core import file_sha256
    from sound_video_gen.metrics.editing import edit_video_scores, edit_video_table
    from sound_video_gen.model.editing import GROUPS, MODES
    from sound_video_gen.model.inversion import invert, load_image_encoder
    from sound_video_gen.model.ssvg import load_ssvg
    p = ArgParser(prog="sound-video-gen bench edit-video", description="Video editing on SynthScapes: input segments "
                  "of class A are inverted into W+ (an image encoder, else the projector), smoothed over time and "
                  "edited with the per-frame sound of a segment of another class B; reports how often the classifier "
                  "then says B, the sync with B's motion driver, frame-to-frame change against the input's, and the "
                  "layout kept, each beside the unedited reconstruction.")
    _model_args(p, "SynthScapes dataset folder", "generator (default: the bundle's)")
    p.add_argument("--clips", type=ranged(int, 1, 100_000), default=18, help="input segments (default 18: two per class)")
    p.add_argument("--editor", action="store_true", help="edit with the bundle's editor instead of the model's own E_a (which is the default: it measured better on videos)")
    p.add_argument("--alpha", type=ranged(float, -10, 10), default=1.0, help="edit strength α (default 1)")
    p.add_argument("--groups", choices=GROUPS, nargs="+", help="edit only these W+ layer groups (default: every layer)")
    p.add_argument("--mode", choices=MODES, default="anchor", help="anchor (default: the clip moved onto the sound's own path, its motion kept), the paper's per-frame offsets, or the recurrent rollout's drift")
    p.add_argument("--smooth", type=ranged(float, 0, 100), default=1.0, help="Gaussian σ (frames) over the inverted latents (default 1)")
    p.add_argument("--image-encoder", help="an image encoder .safetensors (default: the bundle's, if it has one; else the projector)")
    p.add_argument("--steps", type=ranged(int, 1, 100_000), default=50, help="projector steps when no image encoder is used (default 50)")
    p.add_argument("--split", default="test", choices=["train", "val", "test"], help="split of the clips and sounds (default test)")
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--threads", type=ranged(int, 1, 256), help="torch CPU threads")
    p.add_argument("--out", help="write the results to this .json file")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    a = p.parse_args(argv)
    if a.threads: torch.set_num_threads(a.threads)
    out = check_out(a.out, a.overwrite, (".json",)) if a.out else None
    files, generator = _model_and_generator(a)
    if a.editor and files.editor is None: raise UserError("--editor needs a bundle with an editor (bundle --add editor=FILE).")
    model_file, folder = (files.editor if a.editor else files.ssvg), files.folder
    enc_file = a.image_encoder or files.image_encoder
    det = load_classifier(a.classifier)
    model, G = load_ssvg(model_file), load_generator(generator).eval().requires_grad_(False)
    enc = load_image_encoder(enc_file) if enc_file else None
    inv = (lambda x: invert(G, x, "encoder", enc)) if enc is not None else (lambda x: invert(G, x, "projector", steps=a.steps))
    data = load_split(a.data, a.split, progress=True)
    res = edit_video_scores(model, G, det, data, inv, a.clips, a.alpha, a.groups, a.mode, a.smooth, a.seed, progress=True)
    res = {**_provenance("edit-video", argv), "bundle": _rel(folder) if folder else None, "split": a.split, "dataset": Path(a.data).name,
           "inversion": {"method": "encoder", "file": _rel(enc_file), "sha256": file_sha256(enc_file)} if enc is not None
                        else {"method": "projector", "steps": a.steps},
           **_files(model_file, generator), "package_version": _version(), **res}
    _write_json(out, res, a.overwrite)
    print(edit_video_table(res))
    return 0


def _invert(argv):
    import torch
    from sound_video_gen.generators.factory import load_generator
    from sound_video_gen.core import file_sha256
    from sound_video_gen.model.inversion import METHODS, load_image_encoder, pixel_mse
    from sound_video_gen.train.generator import load_images
    from sound_video_gen.train.inversion import evaluate_inversion, load_feature_distance
    p = ArgParser(prog="sound-video-gen bench invert", description="Reconstruction of held-out frames by inversion into "
                  "W+: the image encoder alone, the projector from w_avg, and the projector started at the encoder's "
                  "latents; pixel MSE (and, with --classifier, the classifier-feature distance), with seconds per image.")
    p.add_argument("data", help="dataset folder (SynthScapes, Landscape, <class>/<clip> videos or images)")
    p.add_argument("--model", required=True, help="a bundle folder or a shipped bundle's name: its generator and image encoder")
    p.add_argument("--image-encoder", help="an image encoder .safetensors (default: the bundle's)")
    p.add_argument("--classifier", help="classifier.safetensors from 'bench train': also score the classifier-feature distance")
    p.add_argument("--images", type=ranged(int, 1, 100_000), default=32, help="held-out frames (default 32)")
    p.add_argument("--steps", type=ranged(int, 1, 100_000), default=100, help="projector steps (default 100)")
    p.add_argument("--methods", choices=METHODS, nargs="+", default=list(METHODS), help="methods to score (default: all three)")
    p.add_argument("--split", default="test", choices=["train", "val", "test"], help="split of the frames (default test)")
    p.add_argument("--seed", type=SEED, default=0, help="which frames are drawn, and the projector's seed")
    p.add_argument("--threads", type=ranged(int, 1, 256), help="torch CPU threads")
    p.add_argument("--out", help="write the results to this .json file")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    a = p.parse_args(argv)
    if a.threads: torch.set_num_threads(a.threads)
    out = check_out(a.out, a.overwrite, (".json",)) if a.out else None
    check_data_dir(a.data)
    bundle = model_files(a.model)
    if bundle.folder is None: raise UserError("--model must be a bundle (its generator and image encoder are used), not a model file.")
    folder = bundle.folder
    enc_file = a.image_encoder or bundle.image_encoder
    needs_encoder = any(m != "projector" for m in a.methods)
    if enc_file is None and needs_encoder:
        raise UserError(f"the bundle {folder.name} has no image encoder; pass --image-encoder or --methods projector.")
    G = load_generator(bundle.generator).eval().requires_grad_(False)
    enc = load_image_encoder(check_regular_file(enc_file, "image encoder")) if enc_file else None
    images = load_images(a.data, G.img_resolution, frames_per_clip=2, split=a.split)
    if len(images) < a.images: raise UserError(f"the {a.split} split has {len(images)} frames; ask for --images {len(images)} or fewer.")
    images = images[torch.randperm(len(images), generator=torch.Generator().manual_seed(a.seed))[:a.images]]
    metrics = {"mse": pixel_mse}
    described = {"mse": "pixel MSE in [-1, 1]"}
    if a.classifier:
        feat = load_feature_distance(check_regular_file(a.classifier, "classifier"))
        metrics[feat.name] = feat
        described[feat.name] = "ClassifierFeatureDistance on the SynthScapes-Bench classifier (not LPIPS)"
    methods = evaluate_inversion(G, images, enc, tuple(a.methods), metrics, steps=a.steps, seed=a.seed)
    enc_meta = {}
    if enc_file:
        from sound_video_gen.core import read_checkpoint_meta
        enc_meta = read_checkpoint_meta(enc_file)[1]
    res = {**_provenance("invert", argv), "bundle": _rel(folder), "dataset": Path(a.data).name, "split": a.split,
           "n_images": int(len(images)), "seed": a.seed, "projector_steps": a.steps,
           "projector_objective": "pixel MSE (the default distance)",
           "render": "latents rendered with the generator's fixed noise (noise_mode='const')",
           "image_encoder": {"file": _rel(enc_file), "sha256": file_sha256(enc_file), "training_steps": enc_meta.get("step"),
                             "losses": enc_meta.get("losses")} if enc_file else None,
           "generator": {"file": _rel(bundle.generator), "sha256": file_sha256(bundle.generator)},
           "metrics": described, "methods": methods,
           "timing": f"seconds_per_image with {torch.get_num_threads()} torch thread(s) on {_cpu_name()}",
           "package_version": _version()}
    _write_json(out, res, a.overwrite)
    names = list(metrics)
    print("| method | " + " | ".join(names) + " | s / image |\n|---|" + "---|" * (len(names) + 1))
    for m, r in methods.items():
        print(f"| {m} | " + " | ".join(f"{r[k]:.4f}" for k in names) + f" | {r['seconds_per_image']:.3f} |")
    return 0


def _files(model_file, generator) -> dict:
    "The model and generator files a score was computed with, each with its SHA-256 (a named config has none)."
    from sound_video_gen.core import file_sha256
    g = Path(generator)
    return {"model": {"file": _rel(model_file), "sha256": file_sha256(model_file)},
            "generator": {"file": _rel(generator), "sha256": file_sha256(g) if g.is_file() else None}}


def _cpu_name() -> str:
    "The CPU's model name (Linux /proc/cpuinfo), else the platform's machine type."
    import platform
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"): return line.split(":", 1)[1].strip()
    except OSError: pass
    return platform.processor() or platform.machine()


def _rel(path) -> str:
    "A file inside the installed package as 'sound_video_gen/...', so records name no machine's folders; others as given."
    import sound_video_gen
    p, pkg = Path(path).resolve(), Path(sound_video_gen.__file__).resolve().parent
    return str(Path(pkg.name) / p.relative_to(pkg)) if p.is_relative_to(pkg) else str(path)


def _version() -> str:
    import sound_video_gen
    return sound_video_gen.__version__


SUB = {"train": _train, "run": _run, "table": _table, "table2": _table2, "edit": _edit, "edit-video": _edit_video,
       "invert": _invert}


def main(argv: list[str] | None = None) -> int:
    argv = list(argv or [])
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: sound-video-gen bench {train,run,table,table2,edit,edit-video,invert} ...\n\n"
              "  train   train the benchmark classifier on a SynthScapes folder\n"
              "  run     score a method (FVD-SS, IS-SS, consistency, sync)\n"
              "  table   print the records of a results .jsonl as a table\n"
              "  table2  Table 2: the model (sound all/first/none) and the baselines on the bundle's generator\n"
              "  edit    editing success of w + α·E_a(x) on random scenes\n"
              "  edit-video  video editing: consistency with and sync to the new sound, stability, layout kept\n"
              "  invert  reconstruction of held-out frames by the image encoder, the projector and both")
        return 0
    if argv[0] not in SUB: raise UserError(f"unknown bench command {argv[0]!r}; choose train, run, table, table2, edit, edit-video or invert.")
    return SUB[argv[0]](argv[1:])
