"""Where an anchored model's motion comes from, and whether it follows the sound, early and late in a 4-s sound.

    python tools/motion_parts.py DATA MODEL [MODEL ...] [--generator G] [--beta 1] [--split test] [--horizon H --crossfade F]

Each whole test clip (64 frames) is rolled out twice in W+, at β and at β = 0 (the anchor alone: the running mean of
E_a); the residual is their difference. For every layer group, and for frames 1-15 (the length stage 3 usually trains
on) and 16-63, it prints the mean speed (RMS per element of w_t - w_{t-1}) of the whole path, of the residual and of
the anchor, and the Pearson correlation of each speed with the windows' loudness (the model's own reading) and with
the clip's known motion driver (what the benchmark's sync score uses). One JSON line per model."""
import argparse, json
import numpy as np
import torch
from sound_video_gen.generators.factory import load_generator
from sound_video_gen.metrics.av_scores import pearson
from sound_video_gen.metrics.baselines import SSVGMethod
from sound_video_gen.metrics.bench import load_split
from sound_video_gen.model.anchored import window_loudness
from sound_video_gen.model.bundle import model_files
from sound_video_gen.model.generation import GenerateOptions

p = argparse.ArgumentParser()
p.add_argument("data"); p.add_argument("models", nargs="+")
p.add_argument("--generator", default=None, help="generator .safetensors (default: the first model's bundle generator)")
p.add_argument("--beta", type=float, default=1.0); p.add_argument("--split", default="test")
p.add_argument("--horizon", type=int, help="frames between fresh GRU rollouts (default: each model's; 0: one rollout)")
p.add_argument("--crossfade", type=int, help="frames of each hand-over (default: each model's)")
a = p.parse_args()
d = load_split(a.data, a.split, n_frames=64, segments=1)
gen = a.generator or model_files(a.models[0]).generator
if gen is None: raise SystemExit(f"{a.models[0]} is a model file without a bundle: give its generator with --generator.")
G = load_generator(gen).eval()
PARTS = {"frames 1-15": slice(0, 15), "frames 16-63": slice(15, 63)}

for path in a.models:
    opts = GenerateOptions(beta=a.beta, horizon=a.horizon, crossfade=a.crossfade)
    full, anchor = SSVGMethod(path, opts), SSVGMethod(path, opts.replace(beta=0.0))
    if full.model.cfg.path != "anchored": raise SystemExit(f"{path}: not an anchored model (path={full.model.cfg.path!r}).")
    mode, groups, rows = full.model.cfg.anchored.loudness, full.model.recurrent.groups, {}
    for i in range(len(d["labels"])):
        win = d["windows"][i].float()
        with torch.no_grad(): w, w_a = full.latents(win, G, i), anchor.latents(win, G, i)
        loud, drv = window_loudness(win[None], mode)[0][1:].numpy(), d["motion"][i][1:].numpy()
        for g, (lo, hi) in groups.items():
            for name, ws in (("path", w), ("residual", w - w_a), ("anchor", w_a)):
                s = (ws[1:, lo:hi] - ws[:-1, lo:hi]).pow(2).mean((1, 2)).sqrt().numpy()
                for part, sl in PARTS.items():   # a constant series counts as uncorrelated (0), as in the sync score
                    rows.setdefault((g, name, part), []).append(
                        (s[sl].mean(), np.nan_to_num(pearson(s[sl], loud[sl])), np.nan_to_num(pearson(s[sl], drv[sl]))))
    out = {g: {n: {part: dict(zip(("speed", "loudness", "driver"), np.mean(rows[g, n, part], 0).round(4).tolist())) for part in PARTS}
               for n in ("path", "residual", "anchor")} for g in groups}
    print(json.dumps({"model": str(path), "beta": a.beta, "horizon": full.horizon, "loudness": mode, "split": a.split, "clips": len(d["labels"]), "groups": out}))
