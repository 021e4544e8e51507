"""Write the example sounds shipped with the package: `sound_video_gen/pretrained/examples/<class>.wav`.

Three SynthScapes sounds (thunderstorm, ocean_waves, birdsong), 4 s, 16 kHz mono, 16-bit PCM, each the sound of
`generate_clip(cls, seed=SEED)`; `make demo` turns them into videos. Run again to rewrite them (same seed, same file).
"""
from pathlib import Path

import soundfile as sf

from sound_video_gen.core import atomic_path
from sound_video_gen.data.synthscapes import generate_clip

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "sound_video_gen" / "pretrained" / "examples"
CLASSES = ("thunderstorm", "ocean_waves", "birdsong")
SEED = 7


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for cls in CLASSES:
        clip = generate_clip(cls, seed=SEED, seconds=4.0, size=64, fps=16)
        path = OUT / f"{cls}.wav"
        with atomic_path(path) as tmp:
            sf.write(tmp, clip.audio, clip.sr, subtype="PCM_16", format="WAV")
        print(f"wrote {path.relative_to(ROOT)} ({len(clip.audio) / clip.sr:.1f} s, {clip.sr} Hz)")


if __name__ == "__main__":
    main()
