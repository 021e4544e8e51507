"""What the SynthScapes-Bench classifiers call the demo bundle's 4-s videos of the shipped example sounds, per 1-s
segment (16 frames) and for the whole video, with the model's horizon and with one rollout (`--horizon 0`).

    python tools/example_classes.py [--model demo] [--seconds 4]

One JSON line per sound and horizon: the class each classifier (v1, v2) names for each segment and for the whole
video, and how many segments name the sound's own class."""
import argparse, json

import torch

from sound_video_gen.apps.pipeline import SoundToVideo
from sound_video_gen.metrics.bench import load_classifier, shipped_classifier
from sound_video_gen.model.bundle import pretrained_dir
from sound_video_gen.model.generation import GenerateOptions

p = argparse.ArgumentParser()
p.add_argument("--model", default="demo"); p.add_argument("--seconds", type=float, default=4.0)
a = p.parse_args()
s2v = SoundToVideo.from_pretrained(a.model)
clfs = {f"v{v}": load_classifier(shipped_classifier(v)) for v in (1, 2)}
for sound in sorted((pretrained_dir() / "examples").glob("*.wav")):
    for horizon in (None, 0):
        x = torch.from_numpy(s2v.generate(sound, GenerateOptions(horizon=horizon), seconds=a.seconds)).permute(0, 3, 1, 2)
        segs = torch.stack([x[i:i + 16] for i in range(0, len(x) - 15, 16)])
        rec = {"sound": sound.stem, "horizon": s2v.model.cfg.anchored.horizon if horizon is None else horizon}
        for v, c in clfs.items():
            classes = c.model.cfg.classes
            names = lambda idx: [classes[i] for i in idx]
            seg = names(c.probs(segs).argmax(1).tolist())
            rec[v] = {"segments": seg, "whole": names([int(c.probs(x[None]).argmax())])[0],
                      "own_class": sum(s == sound.stem for s in seg)}
        print(json.dumps(rec), flush=True)
