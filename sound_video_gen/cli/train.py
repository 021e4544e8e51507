"`sound-video-gen train-generator`, `train-clip`, `train-audio-clip`, `train-ssvg` (training stages 0–3 on a dataset folder) and `train-inverter` (the image → W+ encoder for inverting real frames)."
from __future__ import annotations
import json
import time
import warnings
from pathlib import Path

from sound_video_gen.cli.common import (FPS, FRAMES, SIZE, ArgParser, add_stage_args, check_data_dir, nothing_to_train, ranged,
                                       set_threads, stage_config)
from sound_video_gen.core import UserError, check_regular_file, get_config, list_configs


def _clip_stage_parser(prog: str, description: str) -> ArgParser:
    p = add_stage_args(ArgParser(prog=prog, description=description))
    p.add_argument("--frames", type=FRAMES, default=4, help="frames (and aligned mel windows) read per clip (default 4)")
    p.add_argument("--fps", type=FPS, default=1.0, help="rate at which those frames are read (default 1: spread over 4 s)")
    p.add_argument("--size", type=SIZE, default=64, help="frame size in pixels (default 64)")
    p.add_argument("--mel", default="mel-synthscapes", help="mel config name or .json (default mel-synthscapes)")
    p.add_argument("--window-frames", type=ranged(int, 1, 4096), help="mel window width per frame (default: the mel config's)")
    p.add_argument("--eval-split", default="test", help="split to evaluate on at the end ('none' to skip; default test)")
    p.add_argument("--no-memory-cache", action="store_true", help="decode videos every step instead of once")
    return p


def _clip_datasets(a, progress: bool = True):
    from sound_video_gen.data.clips import AVClipDataset
    from sound_video_gen.train.common import MemoryDataset
    check_data_dir(a.data)
    kw = dict(n_frames=a.frames, fps=a.fps, size=a.size, mel=a.mel, window_frames=a.window_frames)
    train = AVClipDataset(a.data, split="train", **kw)
    test = AVClipDataset(a.data, split=a.eval_split, classes=train.classes, **kw) if a.eval_split != "none" else None
    if not a.no_memory_cache:
        drop = ("motion", "path")
        train = MemoryDataset(train, progress=progress, drop_keys=drop)
        test = MemoryDataset(test, progress=progress, drop_keys=drop) if test is not None else None
    return train, test


def _report(res, t0: float) -> None:
    m = {k: v for k, v in res.record.items() if k.startswith("eval/")}
    print(f"done in {time.time() - t0:.0f} s; weights and log in {res.run_dir}")
    if m: print(json.dumps({k[5:]: (round(v, 4) if isinstance(v, float) else v) for k, v in m.items()}))


def _complete_step(cfg, overwrite: bool) -> int | None:
    "The step of a run in cfg.run_dir that has already reached max_steps (so resuming it trains nothing), else None."
    from sound_video_gen.core import read_checkpoint_meta
    ckpt = Path(cfg.run_dir or "") / "checkpoint.safetensors"
    if overwrite or not cfg.run_dir or not ckpt.is_file(): return None
    try: step = int(read_checkpoint_meta(ckpt)[1].get("step", -1))
    except (UserError, ValueError, TypeError): return None   # the stage itself reports a damaged checkpoint
    return step if step >= cfg.max_steps else None


def _done(cfg, weights: str, rec: dict, complete: int | None) -> None:
    if complete is not None:
        print(f"nothing to do: the run in {cfg.run_dir} is complete (step {complete} of {cfg.max_steps}); "
              f"{weights} is in {cfg.run_dir}")
    else:
        print(f"done: {cfg.run_dir}/{weights}; last step: " + json.dumps(rec))


def _clip_pretrained(a, extra: dict) -> None:
    if a.clip_pretrained is not None: extra["clip_pretrained"] = None if a.clip_pretrained.lower() == "none" else a.clip_pretrained
    elif a.clip and Path(a.clip).suffix == ".safetensors": extra["clip_pretrained"] = None


def train_clip_main(argv: list[str] | None = None) -> int:
    from sound_video_gen.train.clip import ClipTrainConfig, train_clip
    p = _clip_stage_parser("sound-video-gen train-clip", "Train a CLIP from scratch on the (frame, caption) pairs of a "
                           "dataset (stage 1; only needed without pretrained CLIP weights). Resumes the run in --run-dir if there is one.")
    p.add_argument("--model", help="open_clip architecture (default clip-synthscapes)")
    a = p.parse_args(argv)
    cfg = stage_config(ClipTrainConfig, a, {"model": a.model} if a.model else {})
    if nothing_to_train(cfg): return 0
    set_threads(a)
    t0 = time.time()
    train, test = _clip_datasets(a)
    _report(train_clip(cfg, train, eval_dataset=test, resume=not a.overwrite, overwrite=a.overwrite), t0)
    return 0


def train_audio_clip_main(argv: list[str] | None = None) -> int:
    from sound_video_gen.multimodal.audio_encoder import AudioEncoderConfig
    from sound_video_gen.multimodal.clip import load_clip
    from sound_video_gen.train.clip import AudioClipTrainConfig, train_audio_clip
    p = _clip_stage_parser("sound-video-gen train-audio-clip", "Train the audio encoder F_a into a frozen CLIP's space "
                           "(stage 2) with InfoNCE audio-text, audio-image and audio-augmented audio. Resumes the run in "
                           "--run-dir if there is one.")
    p.add_argument("--clip", help="frozen CLIP: open_clip architecture or a clip.safetensors from train-clip (default ViT-B-32)")
    p.add_argument("--clip-pretrained", help="CLIP weights: a tag (openai) or a local file; 'none' for random")
    p.add_argument("--encoder", help="audio encoder config name or .json (default audio-encoder-paper)")
    a = p.parse_args(argv)
    extra = {"clip": a.clip} if a.clip else {}
    _clip_pretrained(a, extra)
    if a.encoder:
        enc = get_config(a.encoder)
        if not isinstance(enc, AudioEncoderConfig):
            raise UserError(f"{a.encoder!r} is not an audio encoder config; choose one of {', '.join(list_configs('AudioEncoder'))}.")
        extra["encoder"] = enc.to_dict()
    cfg = stage_config(AudioClipTrainConfig, a, extra)
    if nothing_to_train(cfg): return 0
    clip = load_clip(cfg.clip, cfg.clip_pretrained if Path(cfg.clip).suffix != ".safetensors" else None)  # fail fast
    set_threads(a)
    t0 = time.time()
    train, test = _clip_datasets(a)
    _report(train_audio_clip(cfg, train, eval_dataset=test, resume=not a.overwrite, overwrite=a.overwrite, clip=clip), t0)
    return 0


def train_ssvg_main(argv: list[str] | None = None) -> int:
    from sound_video_gen.core import get_device
    from sound_video_gen.data.clips import AVClipDataset
    from sound_video_gen.train.ssvg import SSVGTrainConfig, load_frozen, train_ssvg
    p = ArgParser(prog="sound-video-gen train-ssvg",
                  description="Train the sound inversion encoder and the recurrent block (stage 3) against image and "
                              "video discriminators, with a frozen generator, CLIP and audio encoder. Resumes from "
                              "RUN_DIR/checkpoint.safetensors when it exists.")
    add_stage_args(p, lr=False)
    p.add_argument("--model", help="named model config, e.g. ssvg-paper or ssvg-tiny")
    p.add_argument("--generator", help="generator: NVlabs .pkl, our .safetensors, or a named config")
    p.add_argument("--clip", help="frozen CLIP: open_clip architecture or a train-clip .safetensors")
    p.add_argument("--clip-pretrained", help="CLIP weights tag or file ('none' for random)")
    p.add_argument("--audio-encoder", help="frozen F_a: audio_encoder.safetensors from train-audio-clip")
    p.add_argument("--frames", type=FRAMES, default=6, help="frames per training clip T (default 6)")
    p.add_argument("--teacher", help="image encoder (image_encoder.safetensors) that inverts every training clip into W+ "
                   "for the teacher terms; the trajectories are cached in DATA/.teacher_cache and reused")
    a = p.parse_args(argv)
    check_data_dir(a.data)
    if a.frames < 2: raise UserError(f"--frames must be at least 2 (the video discriminator compares frames), got {a.frames}.")
    extra = {k: v for k, v in {"generator": a.generator, "clip": a.clip, "audio_encoder": a.audio_encoder,
                               "teacher": a.teacher}.items() if v is not None}
    _clip_pretrained(a, extra)
    if a.model: extra["model"] = get_config(a.model).to_dict()
    cfg = stage_config(SSVGTrainConfig, a, extra)
    if nothing_to_train(cfg): return 0
    set_threads(a)
    if not Path(cfg.generator).is_file():
        warnings.warn(f"generator {cfg.generator!r} is a config name, not a weight file: it has random weights, "
                      "which is only useful for testing the pipeline.")
    frozen = load_frozen(cfg, get_device(cfg.device))
    if cfg.teacher:
        from sound_video_gen.train.teacher import TeacherClips, build_teachers
        cache = build_teachers(a.data, check_regular_file(cfg.teacher, "teacher image encoder"), "train", progress=cfg.progress)
        ds = TeacherClips(a.data, cache, "train", n_frames=a.frames, p_first=cfg.p_first)
        print(f"{len(ds)} training clips with teacher trajectories from {cache}")
    else:
        ds = AVClipDataset(a.data, n_frames=a.frames, fps=cfg.model.fps, size=frozen.G.img_resolution, mel=cfg.model.mel,
                           split="train", train=True)
        print(ds.report())
    complete = _complete_step(cfg, a.overwrite)
    rec = train_ssvg(cfg, ds, G=frozen.G, clip=frozen.clip, audio_encoder=frozen.audio_encoder,
                     resume=not a.overwrite, overwrite=a.overwrite)
    _done(cfg, "ssvg.safetensors", rec, complete)
    return 0


def train_generator_main(argv: list[str] | None = None) -> int:
    from sound_video_gen.train.generator import GeneratorTrainConfig, ssclf_frame_detector, train_generator
    p = ArgParser(prog="sound-video-gen train-generator",
                  description="Train a StyleGAN2 (or StyleGAN3) generator, its discriminator and G_ema from scratch with the "
                              "StyleGAN2-ADA objective on the frames of a clip folder (SynthScapes, Landscape, "
                              "<class>/<clip> videos) or on a folder of images (stage 0). Resumes from "
                              "RUN_DIR/checkpoint.safetensors when it exists; G_ema is written to RUN_DIR/G_ema.safetensors.")
    add_stage_args(p, lr=False)
    p.set_defaults(config="train-generator-demo")
    p.add_argument("--generator", help="generator config: a name (stylegan2-64, stylegan3-t-paper, …) or a JSON file")
    p.add_argument("--ssclf", help="a SynthScapes-Bench classifier.safetensors ('bench train'): log fd_ssclf, the Fréchet "
                   "distance on its frame features")
    a = p.parse_args(argv)
    check_data_dir(a.data)
    cfg = stage_config(GeneratorTrainConfig, a, {"generator": a.generator} if a.generator else {})
    if nothing_to_train(cfg): return 0
    cfg.generator_config()   # a bad generator name fails here, before anything is written
    set_threads(a)
    det = ssclf_frame_detector(a.ssclf) if a.ssclf else None
    complete = _complete_step(cfg, a.overwrite)
    rec = train_generator(cfg, a.data, detector=det, resume=not a.overwrite, overwrite=a.overwrite)
    _done(cfg, "G_ema.safetensors", rec, complete)
    return 0


def _inverter_parts(a, cfg):
    "The frozen G, real train frames, held-out test frames, the perceptual distance, CLIP and (optional) LPIPS."
    import torch
    from sound_video_gen.generators.factory import load_generator
    from sound_video_gen.train.generator import load_images
    from sound_video_gen.train.inversion import _load_lpips, perceptual_distance
    G = load_generator(cfg.generator).eval().requires_grad_(False)
    R = G.img_resolution
    real = load_images(a.data, R, frames_per_clip=a.frames_per_clip, split="train")
    test = None
    if a.eval_images:
        test = load_images(a.data, R, frames_per_clip=2, split=a.eval_split)
        g = torch.Generator().manual_seed(cfg.seed)
        test = test[torch.randperm(len(test), generator=g)[:a.eval_images]]
    perceptual = perceptual_distance(cfg, "cpu") if cfg.w_perceptual > 0 or cfg.classifier or cfg.lpips else None
    clip = None
    if cfg.clip:
        from sound_video_gen.multimodal.clip import load_clip
        clip = load_clip(cfg.clip)
    lpips = _load_lpips(cfg.lpips) if cfg.lpips else None
    return G, real, test, perceptual, clip, lpips


def train_inverter_main(argv: list[str] | None = None) -> int:
    import shlex
    from sound_video_gen.cli.common import check_out
    from sound_video_gen.train.inversion import InversionTrainConfig, evaluate_inversion, inversion_ablation, train_inverter
    from sound_video_gen.model.inversion import METHODS, pixel_mse
    p = ArgParser(prog="sound-video-gen train-inverter",
                  description="Train the image -> W+ encoder that inverts real frames into a frozen generator, on its "
                              "samples and on the frames of a dataset folder, with switchable losses (w_l2, w_perceptual, "
                              "w_reg, w_clip, w_latent). Resumes from RUN_DIR/checkpoint.safetensors; writes "
                              "RUN_DIR/image_encoder.safetensors and RUN_DIR/metrics.json (encoder, projector and "
                              "encoder+projector on held-out frames). With --ablation, trains the three loss variants "
                              "instead and writes their scores to --out.")
    add_stage_args(p)
    p.set_defaults(config="inverter-demo")
    p.add_argument("--model", help="a bundle folder or a shipped bundle's name (e.g. demo): its generator and CLIP")
    p.add_argument("--generator", help="the frozen generator file (overrides the bundle's)")
    p.add_argument("--clip", help="a project CLIP file for w_clip (overrides the bundle's)")
    p.add_argument("--classifier", help="SynthScapes-Bench classifier.safetensors: the offline perceptual distance")
    p.add_argument("--lpips", help="folder with LPIPS weight files: then the perceptual term and metric are LPIPS")
    p.add_argument("--frames-per-clip", type=ranged(int, 1, 1000), default=8, help="real frames read per train clip (default 8)")
    p.add_argument("--eval-images", type=ranged(int, 0, 100_000), default=32, help="held-out frames to score (0: skip; default 32)")
    p.add_argument("--eval-split", default="test", help="split of the held-out frames (default test)")
    p.add_argument("--eval-steps", type=ranged(int, 1, 100_000), default=100, help="projector steps when scoring (default 100)")
    p.add_argument("--ablation", action="store_true", help="train the variants L2+reg, +perceptual, +perceptual+CLIP in RUN_DIR/<variant>")
    p.add_argument("--out", help="with --ablation: write the results to this .json file")
    a = p.parse_args(argv)
    check_data_dir(a.data)
    out = check_out(a.out, a.overwrite, (".json",)) if a.out else None
    if out and not a.ablation: raise UserError("--out goes with --ablation (a training run writes RUN_DIR/metrics.json).")
    extra = {}
    if a.model:
        from sound_video_gen.model.bundle import bundle_paths, find_bundle, verify_bundle
        folder = find_bundle(a.model)
        paths = bundle_paths(folder, verify_bundle(folder))
        extra["generator"] = str(paths["generator"])
        if "clip" in paths: extra["clip"] = str(paths["clip"])
    extra.update({k: v for k, v in {"generator": a.generator, "clip": a.clip, "classifier": a.classifier, "lpips": a.lpips}.items() if v})
    cfg = stage_config(InversionTrainConfig, a, extra)
    if nothing_to_train(cfg): return 0
    if not cfg.generator: raise UserError("give the generator to invert into: --model BUNDLE or --generator FILE.")
    set_threads(a)
    t0 = time.time()
    G, real, test, perceptual, clip, lpips = _inverter_parts(a, cfg)
    command = shlex.join(["sound-video-gen", "train-inverter", *(argv or [])])
    if a.ablation:
        if test is None: raise UserError("--ablation scores held-out frames: give --eval-images > 0.")
        res = inversion_ablation(cfg, test, G, real, perceptual, clip, lpips, resume=not a.overwrite)
        res = {"command": command, "dataset": Path(a.data).name, "split": a.eval_split,
               "generator": Path(cfg.generator).name,
               "paper_lhq_lpips": {"l2+reg": 0.648, "l2+reg+perceptual": 0.468, "l2+reg+perceptual+clip": 0.432}, **res}
        text = json.dumps(res, indent=2) + "\n"
        if out:
            from sound_video_gen.core import atomic_write_text
            atomic_write_text(out, text)
        print(text, end="")
        return 0
    res = train_inverter(cfg, G, real, resume=not a.overwrite, overwrite=a.overwrite, perceptual=perceptual, clip=clip)
    print(f"trained in {time.time() - t0:.0f} s; encoder in {res.run_dir}/image_encoder.safetensors")
    if test is not None:
        metrics = {"mse": pixel_mse}
        if perceptual is not None: metrics[getattr(perceptual, "name", "perceptual")] = perceptual
        if lpips is not None: metrics["lpips"] = lpips
        ev = evaluate_inversion(G, test, res.encoder, METHODS, metrics, steps=a.eval_steps)
        rec = {"command": command, "n_images": int(len(test)), "split": a.eval_split, "projector_steps": a.eval_steps,
               "step": cfg.max_steps, "methods": ev}
        from sound_video_gen.core import atomic_write_text
        atomic_write_text(res.run_dir / "metrics.json", json.dumps(rec, indent=2) + "\n")
        print(json.dumps(ev, indent=2))
    return 0
