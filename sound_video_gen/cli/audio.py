"`sound-video-gen mel`: look at what the model hears."
from __future__ import annotations
from pathlib import Path

from sound_video_gen.audio import MelConfig, mel_overview, plot_mel
from sound_video_gen.cli.common import FPS, SECONDS, ArgParser, check_out
from sound_video_gen.core import UserError, atomic_path, get_config


MAX_COLUMNS = 4000   # more columns than a 120-dpi figure has pixels


def mel_main(argv: list[str] | None = None) -> int:
    p = ArgParser(prog="sound-video-gen mel", description="Plot a sound's log-mel spectrogram, with the "
                  "window each video frame sees, to an image file.")
    p.add_argument("audio", help="audio file (wav/flac/ogg/mp3) or a video with an audio track")
    p.add_argument("-o", "--out", help="output image (.png/.pdf/.svg); default: <audio>.mel.png")
    p.add_argument("--config", default="mel-paper", help="named mel config or a .json file (default: mel-paper)")
    p.add_argument("--fps", type=FPS, default=None, help="mark per-frame windows of a video at this frame rate")
    p.add_argument("--seconds", type=SECONDS, default=None, help="only the first N seconds")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    a = p.parse_args(argv)
    cfg = get_config(a.config)
    if not isinstance(cfg, MelConfig): raise UserError(f"config {a.config!r} is not a mel config.")
    out = check_out(a.out or Path(a.audio).with_suffix(".mel.png"), a.overwrite, (".png", ".pdf", ".svg", ".jpg"), inputs=(a.audio,))
    # Streamed and averaged down to the plot's resolution as it is read: an hour costs what a minute does.
    mel, seconds = mel_overview(a.audio, cfg, duration=a.seconds, max_columns=MAX_COLUMNS)
    n_frames = int(seconds * a.fps) if a.fps else None
    fig = plot_mel(mel, cfg, fps=a.fps, n_frames=n_frames, title=Path(a.audio).name, seconds=seconds)
    with atomic_path(out, overwrite=a.overwrite) as tmp:
        fig.savefig(tmp, format=out.suffix[1:].replace("jpg", "jpeg"), dpi=120, bbox_inches="tight")
    frames = round(seconds * cfg.frame_rate)
    pooled = f", shown as {mel.shape[1]} columns" if mel.shape[1] < frames else ""
    print(f"wrote {out} ({mel.shape[0]} mels x {frames} frames{pooled}, {seconds:.2f} s)")
    return 0
