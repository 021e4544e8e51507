"`sound-video-gen train-ssvg`: stage 3, the sound-guided video model, on any dataset folder the clip loader reads."
from __future__ import annotations
import json

from sound_video_gen.audio_cli import ArgParser
from sound_video_gen.core import UserError, get_config


def _parse_sets(pairs: list[str]) -> dict:
    out = {}
    for p in pairs:
        if "=" not in p: raise UserError(f"--set takes key=value, got {p!r}.")
        k, v = p.split("=", 1)
        try: out[k] = json.loads(v)
        except json.JSONDecodeError: out[k] = v
    return out


def _merge(base: dict, over: dict) -> dict:
    "`base` with `over` applied; nested dicts (sub-configs) are merged key by key, not replaced."
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def main(argv: list[str] | None = None) -> int:
    p = ArgParser(prog="sound-video-gen train-ssvg",
                  description="Train the sound inversion encoder and the recurrent block (stage 3) against image and "
                              "video discriminators, with a frozen generator, CLIP and audio encoder. Resumes from "
                              "run_dir/checkpoint.safetensors when it exists.")
    p.add_argument("--data", required=True, help="dataset folder (SynthScapes, Landscape, Sub-URMP or <class>/<clip> videos)")
    p.add_argument("--config", default=None, help="an SSVGTrainConfig JSON file (default: built-in defaults)")
    p.add_argument("--model", default=None, help="named model config, e.g. ssvg-paper or ssvg-tiny")
    p.add_argument("--generator", default=None, help="generator: NVlabs .pkl, our .safetensors, or a named config")
    p.add_argument("--clip", default=None, help="frozen CLIP: open_clip architecture or a train-clip .safetensors")
    p.add_argument("--clip-pretrained", default=None, help="CLIP weights tag or file ('none' for random)")
    p.add_argument("--audio-encoder", default=None, help="frozen F_a: audio_encoder.safetensors from train-audio-clip")
    p.add_argument("--run-dir", default=None, help="run folder (config.json, log.jsonl, checkpoints, samples)")
    p.add_argument("--frames", type=int, default=6, help="frames per training clip T (default 6)")
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--device", default=None, help="cpu, cuda or auto")
    p.add_argument("--workers", type=int, default=None, help="DataLoader workers")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="more config fields, e.g. w_reg=0.5 sound=\"first\"")
    p.add_argument("--restart", action="store_true", help="discard an existing run in --run-dir and start again")
    a = p.parse_args(argv)
    from pathlib import Path
    if not Path(a.data).is_dir(): raise UserError(f"dataset folder {a.data} does not exist.")
    from sound_video_gen.train.ssvg import SSVGTrainConfig, train_ssvg
    from sound_video_gen.data import AVClipDataset
    cfg = SSVGTrainConfig.from_json(a.config) if a.config else SSVGTrainConfig()
    over = {k: v for k, v in {"generator": a.generator, "clip": a.clip, "audio_encoder": a.audio_encoder,
                              "run_dir": a.run_dir, "max_steps": a.max_steps, "batch_size": a.batch_size,
                              "device": a.device, "num_workers": a.workers}.items() if v is not None}
    if a.clip_pretrained is not None: over["clip_pretrained"] = None if a.clip_pretrained.lower() == "none" else a.clip_pretrained
    if a.model: over["model"] = get_config(a.model).to_dict()
    d = _merge(cfg.to_dict(), over)
    cfg = SSVGTrainConfig.from_dict(_merge(d, _parse_sets(a.set)))
    if a.frames < 2: raise UserError(f"--frames must be at least 2 (the video discriminator compares frames), got {a.frames}.")
    from sound_video_gen.train.ssvg import load_frozen
    from sound_video_gen.core import get_device
    if not Path(cfg.generator).is_file():
        import warnings
        warnings.warn(f"generator {cfg.generator!r} is a config name, not a weight file: it has random weights, "
                      "which is only useful for testing the pipeline.")
    frozen = load_frozen(cfg, get_device(cfg.device))
    ds = AVClipDataset(a.data, n_frames=a.frames, fps=cfg.model.fps, size=frozen.G.img_resolution, mel=cfg.model.mel,
                       split="train", train=True)
    print(ds.report())
    rec = train_ssvg(cfg, ds, G=frozen.G, clip=frozen.clip, audio_encoder=frozen.audio_encoder,
                     resume=not a.restart, overwrite=a.restart)
    print(f"done: {cfg.run_dir}/ssvg.safetensors; last step: " + json.dumps(rec))
    return 0
