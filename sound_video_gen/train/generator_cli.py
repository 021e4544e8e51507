"`sound-video-gen train-generator`: stage 0, a StyleGAN2/StyleGAN3 generator trained from scratch on a folder of clips or images."
from __future__ import annotations
import json
from pathlib import Path

from sound_video_gen.audio_cli import ArgParser
from sound_video_gen.core import UserError, get_config
from sound_video_gen.train.ssvg_cli import _parse_sets


def main(argv: list[str] | None = None) -> int:
    p = ArgParser(prog="sound-video-gen train-generator",
                  description="Train a StyleGAN2 (or StyleGAN3) generator, its discriminator and G_ema from scratch with the "
                              "StyleGAN2-ADA objective on the frames of a clip folder (SynthScapes, Landscape, "
                              "<class>/<clip> videos) or on a folder of images. Resumes from RUN/checkpoint.safetensors "
                              "when it exists; G_ema is written to RUN/G_ema.safetensors.")
    p.add_argument("data", help="dataset folder: videos (metadata.csv or <class>/<clip> files) or images")
    p.add_argument("--run-dir", required=True, help="run folder (config.json, log.jsonl, checkpoint, G_ema.safetensors, samples/)")
    p.add_argument("--generator", default=None, help="generator config: a name (stylegan2-64, stylegan3-t-paper, …) or a JSON file")
    p.add_argument("--config", default="train-generator-demo", help="training config: a name (train-generator-demo, "
                   "train-generator-tiny, train-generator-stylegan3-t-paper) or a JSON file (default: train-generator-demo)")
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--device", default=None, help="cpu, cuda or auto")
    p.add_argument("--ssclf", default=None, help="a SynthScapes-Bench classifier.safetensors ('bench train'): log fd_ssclf")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="more config fields (JSON values), e.g. G_lr=0.005 r1_gamma=0.1 'generator_overrides={\"mapping_layers\": 2}'")
    p.add_argument("--restart", action="store_true", help="discard an existing run in --run-dir and start again")
    a = p.parse_args(argv)
    if not Path(a.data).is_dir(): raise UserError(f"dataset folder {a.data} does not exist.")
    from sound_video_gen.train.generator import GeneratorTrainConfig, ssclf_frame_detector, train_generator
    cfg = get_config(a.config)
    if not isinstance(cfg, GeneratorTrainConfig): raise UserError(f"--config {a.config} is a {type(cfg).__name__}, not a GeneratorTrainConfig.")
    over = {k: v for k, v in {"generator": a.generator, "run_dir": a.run_dir, "max_steps": a.max_steps,
                              "batch_size": a.batch_size, "device": a.device}.items() if v is not None}
    cfg = GeneratorTrainConfig.from_dict({**cfg.to_dict(), **over, **_parse_sets(a.set)})
    cfg.generator_config()   # a bad generator name fails here, before anything is written
    det = ssclf_frame_detector(a.ssclf) if a.ssclf else None
    rec = train_generator(cfg, a.data, detector=det, resume=not a.restart, overwrite=a.restart)
    print(f"done: {cfg.run_dir}/G_ema.safetensors; last step: " + json.dumps(rec))
    return 0
