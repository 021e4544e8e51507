"""SynthScapes generation speed: clips/s and the wall time of the default split.

Prints one JSON line per figure. Default: the default split (all 9 classes x 100 clips, 4 s, 64x64, 16 fps, 16 kHz)
with 2 worker processes, written to a temporary folder that is deleted afterwards.
    python benchmarks/bench_synthscapes.py [--n-per-class 100] [--workers 2] [--keep DIR]
"""
import argparse, json, os, platform, shutil, sys, tempfile, time

os.environ.setdefault("OMP_NUM_THREADS", "1")

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-per-class", type=int, default=100)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--fps", type=int, default=16)
    ap.add_argument("--keep", default=None, help="write the dataset here and keep it")
    a = ap.parse_args()
    from sound_video_gen.data.synthscapes import CLASSES, generate_clip, make_synthscapes
    common = dict(cpu_count=os.cpu_count(), machine=platform.machine(), python=platform.python_version(),
                  seconds=a.seconds, size=a.size, fps=a.fps, sr=16000)
    # 1. synthesis alone (no encoding), one process
    t0 = time.perf_counter(); n = 0
    for c in CLASSES:
        for s in range(3): generate_clip(c, s, a.seconds, a.size, a.fps); n += 1
    dt = time.perf_counter() - t0
    print(json.dumps(dict(figure="synthscapes_synthesis_clips_per_s", value=round(n / dt, 2), unit="clips/s", workers=1, clips=n, **common)))
    # 2. the whole split: synthesis + h264/AAC encoding + files, `workers` processes
    out = a.keep or tempfile.mkdtemp(prefix="bench_synthscapes_")
    try:
        t0 = time.perf_counter()
        make_synthscapes(out, n_per_class=a.n_per_class, seconds=a.seconds, size=a.size, fps=a.fps, workers=a.workers,
                         overwrite=True, progress=False)
        dt = time.perf_counter() - t0
        n = len(CLASSES) * a.n_per_class
        size_mb = sum(f.stat().st_size for f in __import__("pathlib").Path(out).rglob("*") if f.is_file()) / 1e6
        print(json.dumps(dict(figure="synthscapes_split_seconds", value=round(dt, 1), unit="s", clips=n, classes=len(CLASSES),
                              n_per_class=a.n_per_class, workers=a.workers, target_s=300, passed=dt < 300, folder_mb=round(size_mb, 1), **common)))
        print(json.dumps(dict(figure="synthscapes_clips_per_s", value=round(n / dt, 2), unit="clips/s", workers=a.workers, clips=n, **common)))
    finally:
        if a.keep is None: shutil.rmtree(out, ignore_errors=True)

if __name__ == "__main__":
    sys.exit(main())
