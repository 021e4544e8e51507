"""How SynthScapes-Bench classifiers read still frames with pixel noise: the flicker-reads-as-rain check.

    python tools/classifier_robustness.py DATA CLASSIFIER [CLASSIFIER ...] [--noise 4]

For every test segment: the real clip, its first frame held still, and that still frame with fresh Gaussian pixel
noise of σ = NOISE/255 on every frame. Prints one JSON line per classifier with the class consistency of each, and
the share of the noisy stills called 'rain'."""
import argparse, json
import torch
from sound_video_gen.metrics.bench import load_classifier, load_split

p = argparse.ArgumentParser()
p.add_argument("data"); p.add_argument("classifiers", nargs="+"); p.add_argument("--noise", type=float, default=4.0)
a = p.parse_args()
d = load_split(a.data, "test")
x, y = d["frames"], d["labels"]
still = x[:, :1].expand_as(x).contiguous()
g = torch.Generator().manual_seed(0)
noisy = (still.float() + a.noise * torch.randn(still.shape, generator=g)).round().clamp(0, 255).to(torch.uint8)
rain = d["classes"].index("rain")
for c in a.classifiers:
    det = load_classifier(c)
    out = {"classifier": c, "noise_levels": a.noise}
    for name, v in (("real", x), ("still", still), ("still_noise", noisy)):
        pred = det.probs(v).argmax(1)
        out[name] = round(float((pred == y).float().mean()), 4)
        if name == "still_noise": out["still_noise_called_rain"] = round(float((pred == rain).float().mean()), 4)
    print(json.dumps(out))
