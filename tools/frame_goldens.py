"""Frames of the shipped demo bundle for fixed seeds and options, on the example sounds: the contract of the generation
and editing paths (tests/test_frame_goldens.py renders the same cases and compares).

    python tools/frame_goldens.py [--out tests/data/frame_goldens.npz]

Each case is `generate(sound, GenerateOptions(**options), seconds=SECONDS)` or an image edit; the file holds the uint8 frames under
the case's name and, under `cases`, the JSON of every case (its options and the frames' sha256). Regenerate it only
when a change is meant to change the frames, and say which cases changed and why in the commit.
"""
from __future__ import annotations
import argparse, hashlib, json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "sound_video_gen" / "pretrained" / "examples"
SECONDS = 0.75                     # 12 frames at the demo's 16 fps: the first chunk, and the rollout's first steps
SOUNDS = ("birdsong", "ocean_waves", "thunderstorm")
GENERATE = {                       # name -> options of `SoundToVideo.generate`
    "default": {},
    "random": {"w0": "random", "seed": 3},
    "w_avg": {"w0": "w_avg", "seed": 1},
    "coarse_beta": {"beta": 0.5, "groups": ["coarse"], "seed": 2},
}
EDITS = {                          # name -> options of `edit_image` (a seeded scene)
    "edit": {"seed": 5, "alpha": 1.0},
    "edit_fine": {"seed": 6, "alpha": 0.5, "groups": ["mid", "fine"]},
}


def cases() -> list[dict]:
    "Every case: kind, sound, name and options."
    out = []
    for s in SOUNDS:
        out += [{"kind": "generate", "sound": s, "name": f"{s}/{n}", "options": o} for n, o in GENERATE.items()]
        out += [{"kind": "edit_image", "sound": s, "name": f"{s}/{n}", "options": o} for n, o in EDITS.items()]
    return out


def render(pipe, case: dict) -> np.ndarray:
    "The uint8 frames (T, H, W, 3) of one case."
    sound = EXAMPLES / f"{case['sound']}.wav"
    if case["kind"] == "generate":
        from sound_video_gen.model.generation import GenerateOptions
        return pipe.generate(sound, GenerateOptions(**case["options"]), seconds=SECONDS)
    from sound_video_gen.apps.editing import edit_image
    return edit_image(pipe, sound, **case["options"]).after[None]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(ROOT / "tests" / "data" / "frame_goldens.npz"))
    a = p.parse_args(argv)
    import torch
    torch.set_num_threads(1)
    from sound_video_gen.apps.pipeline import SoundToVideo
    pipe = SoundToVideo.from_pretrained("demo")
    arrays, meta = {}, []
    for case in cases():
        x = np.ascontiguousarray(render(pipe, case))
        arrays[case["name"]] = x
        meta.append({**case, "shape": list(x.shape), "sha256": hashlib.sha256(x.tobytes()).hexdigest()})
        print(case["name"], x.shape, meta[-1]["sha256"][:12])
    tmp = Path(a.out).with_suffix(".tmp.npz")
    np.savez_compressed(tmp, cases=np.array(json.dumps(meta)), **arrays)
    tmp.replace(a.out)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
