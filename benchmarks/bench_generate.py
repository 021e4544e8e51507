"""Sound to video, end to end: seconds from a sound file to an mp4, frames/s per part, and peak memory for long sounds.

Prints one JSON line per figure. Each figure runs in its own subprocess (its peak RSS is its own) on a bundle it
builds with random weights: `tiny` (stylegan2-tiny + ssvg-tiny), `demo` (the demo's architecture: StyleGAN2 64²
with channel_base 2048 / max 128 and 2 mapping layers, as `train-generator-demo` trains it, + ssvg-demo),
`stylegan2-64` (the full-width named config, channel_base 8192 / max 256, + ssvg-tiny) and `paper` (StyleGAN3-T 256² + ssvg-paper; slow on a CPU, so it gets a shorter
sound); `shipped` is the trained demo bundle that ships with the package (float16 on disk, ssvg-demo: E_a 2.3M,
GRUs 4.7M). The demo-size target is 10 s at 16 fps in <= 5 s on 2 CPU cores. Parts: `audio` (reading, resampling,
spectrogram, windows), `latents` (E_a + recurrent block), `synthesis` (G), `encoding` (h264 + AAC).

    python benchmarks/bench_generate.py                                 # tiny, demo, paper (2 s), shipped, 1-hour RSS
    python benchmarks/bench_generate.py --configs shipped demo --hour-minutes 0
"""
from __future__ import annotations
import argparse, json, os, platform, resource, subprocess, sys, tempfile, time

CONFIGS = {"tiny": ("stylegan2-tiny", "ssvg-tiny"), "demo": ("stylegan2-64", "ssvg-demo"), "stylegan2-64": ("stylegan2-64", "ssvg-tiny"),
           "paper": ("stylegan3-t-paper", "ssvg-paper"), "shipped": ("StyleGAN2 64² (trained)", "ssvg-demo")}
OVERRIDES = {"demo": {"channel_base": 2048, "channel_max": 128, "mapping_layers": 2}}   # as train-generator-demo


def _bundle(name: str, folder: str):
    import torch
    from sound_video_gen.core import get_config
    from sound_video_gen.generators.factory import create_generator
    from sound_video_gen.model.ssvg import SSVG
    from sound_video_gen.model.bundle import find_bundle, make_bundle
    if name == "shipped": return find_bundle("demo")
    g, m = CONFIGS[name]
    G = create_generator(g, seed=0, **OVERRIDES.get(name, {})).eval()
    torch.manual_seed(0)
    model = SSVG(get_config(m).for_generator(G)).eval()
    return make_bundle(os.path.join(folder, name), G, model)


def _sound(path: str, seconds: float, sr: int = 16000):
    import numpy as np, soundfile as sf
    with sf.SoundFile(path, "w", sr, 1) as f:
        for start in range(0, int(seconds), 60):
            t = np.arange(int(min(60, seconds - start) * sr)) / sr + start
            f.write((0.3 * np.sin(2 * np.pi * (300 + 50 * np.sin(t)) * t) * (1 + np.sin(3 * t))).astype(np.float32))


def run_one(name: str, seconds: float, fps: float, device: str, threads: int, batch: int, kind: str) -> dict:
    import torch
    from sound_video_gen.apps.pipeline import SoundToVideo
    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as d:
        bundle = _bundle(name, d)
        wav = os.path.join(d, "sound.wav")
        _sound(wav, seconds)
        t = time.perf_counter()
        s2v = SoundToVideo.from_pretrained(bundle, device=device)
        load_s = time.perf_counter() - t
        timings: dict = {}
        t = time.perf_counter()
        s2v.save(os.path.join(d, "out.mp4"), wav, fps=fps, timings=timings, batch_size=batch, chunk_frames=max(batch, 64))
        total = time.perf_counter() - t
        n = int(seconds * fps)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    rec = dict(bench="generate", figure=kind, config=name, generator=CONFIGS[name][0] + (f" {OVERRIDES[name]}" if name in OVERRIDES else ""), model=CONFIGS[name][1],
               resolution=s2v.G.img_resolution, sound_s=seconds, fps=fps, frames=n, device=device, threads=threads,
               batch=batch, load_bundle_s=round(load_s, 2), end_to_end_s=round(total, 2),
               realtime_factor=round(seconds / total, 3),
               **{f"{k}_frames_per_s": round(n / v, 1) for k, v in timings.items() if v > 0},
               **{f"{k}_s": round(v, 2) for k, v in timings.items()},
               peak_rss_mb=round(peak / 2**20, 1), torch=torch.__version__, cpu=platform.processor() or platform.machine(),
               load_avg_1min=round(os.getloadavg()[0], 2))
    if kind == "e2e" and name in ("demo", "shipped"): rec["target_10s_16fps_le_5s"] = bool(total <= 5.0) if (seconds, fps) == (10, 16) else None
    return rec


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    ap.add_argument("--seconds", type=float, default=10.0, help="sound length for tiny and demo")
    ap.add_argument("--paper-seconds", type=float, default=2.0, help="sound length for the paper config (slow on CPU)")
    ap.add_argument("--fps", type=float, default=16.0)
    ap.add_argument("--hour-minutes", type=float, default=60.0, help="length of the long-sound memory figure (tiny bundle; 0: skip)")
    ap.add_argument("--hour-fps", type=float, default=8.0)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.one:
        name, seconds, fps, device, batch, kind = a.one.split(",")
        print(json.dumps(run_one(name, float(seconds), float(fps), device, a.threads, int(batch), kind)), flush=True)
        return 0
    if a.device is None:
        import torch
        a.device = "cuda" if torch.cuda.is_available() else "cpu"
    jobs = [(c, a.paper_seconds if c == "paper" else a.seconds, a.fps, a.device, a.batch if c != "paper" else 4, "e2e") for c in a.configs]
    if a.hour_minutes > 0: jobs.append(("tiny", a.hour_minutes * 60, a.hour_fps, a.device, 64, "long_sound_rss"))
    for job in jobs:
        res = subprocess.run([sys.executable, __file__, "--threads", str(a.threads), "--one", ",".join(map(str, job))],
                             capture_output=True, text=True)
        if res.returncode: print(json.dumps(dict(bench="generate", config=job[0], figure=job[5], error=res.stderr.strip().splitlines()[-1:])), flush=True)
        else: print(res.stdout.strip(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
