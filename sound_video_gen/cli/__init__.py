"""The `sound-video-gen` command line.

Each command group is one module of this package (`audio`, `bench`, `data`, `demo`, `generate`, `generator`,
`synthscapes`, `train`, `invert`), with a function `(argv) -> int` that parses its flags (the shared vocabulary is in
`cli.common`) and calls the library; nothing outside `cli/` parses arguments. This module only dispatches. User
errors (`core.UserError`) become one sentence on stderr and exit code 2 (`core.run_cli`).
"""
from __future__ import annotations
import importlib
import sys

from sound_video_gen.core import UserError, run_cli

# name -> ("module", "function", "one-line help"). Modules are imported only when their command runs.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "bench": ("sound_video_gen.cli.bench", "main", "SynthScapes-Bench: train its classifier, score a method (FVD-SS, IS-SS, consistency, sync), Table 2, editing success"),
    "generate": ("sound_video_gen.cli.generate", "main", "turn a sound (or a video's sound, or a folder of them) into an mp4 with a model bundle"),
    "bundle": ("sound_video_gen.cli.generate", "bundle_main", "assemble a model bundle from files or run folders, or --verify one"),
    "generator": ("sound_video_gen.cli.generator", "main", "convert an NVlabs StyleGAN .pkl to safetensors (safely) and/or render a sample grid"),
    "mel": ("sound_video_gen.cli.audio", "mel_main", "plot a sound's log-mel spectrogram and per-frame windows"),
    "train-generator": ("sound_video_gen.cli.train", "train_generator_main", "train a StyleGAN2/StyleGAN3 generator from scratch on clip frames or images (stage 0)"),
    "train-ssvg": ("sound_video_gen.cli.train", "train_ssvg_main", "train the sound-guided video model (stage 3) on a dataset folder"),
    "data": ("sound_video_gen.cli.data", "main", "dataset tooling: Table 1 statistics, Landscape download (yt-dlp) and cutting"),
    "train-clip": ("sound_video_gen.cli.train", "train_clip_main", "train a CLIP from scratch on a dataset's (frame, caption) pairs (stage 1)"),
    "train-audio-clip": ("sound_video_gen.cli.train", "train_audio_clip_main", "train the audio encoder F_a into a frozen CLIP's space (stage 2)"),
    "train-inverter": ("sound_video_gen.cli.train", "train_inverter_main", "train the image -> W+ encoder that inverts real frames into a frozen generator, or its loss ablation"),
    "invert": ("sound_video_gen.cli.invert", "main", "invert images into a bundle's W+ (encoder, projector or both); write the latents and a reconstruction"),
    "train-demo": ("sound_video_gen.cli.demo", "main", "train the demo model: run the recipe's stages (data … bundle), each another command's line; resumable"),
    "synthscapes": ("sound_video_gen.cli.synthscapes", "main", "generate a SynthScapes dataset (sound-driven procedural landscape clips)"),
    "edit-image": ("sound_video_gen.cli.edit", "image_main", "edit a picture (or a random scene) with a sound: w + α·E_a(x) on chosen W+ layers, to a PNG"),
    "edit-video": ("sound_video_gen.cli.edit", "video_main", "edit a video with a sound: invert its frames, add the sound's per-frame edits, write an mp4 with the sound"),
}

def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: sound-video-gen <command> [options]", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, _, help_) in sorted(COMMANDS.items())]
    lines += ["", "Run 'sound-video-gen <command> --help' for a command's options."]
    return "\n".join(lines)

def dispatch(argv: list[str] | None = None) -> int:
    "Run the subcommand named by `argv[0]`."
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        raise UserError(f"unknown command {name!r}; choose one of: {', '.join(sorted(COMMANDS))}.")
    module, func, _ = COMMANDS[name]
    return getattr(importlib.import_module(module), func)(rest) or 0

def main(argv: list[str] | None = None) -> None:
    "Console-script entry point."
    sys.exit(run_cli(dispatch, argv))

if __name__ == "__main__":
    main()
