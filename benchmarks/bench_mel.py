"""Peak memory of `sound-video-gen mel` on long sounds: each length and sample rate in a fresh process, its peak RSS
from the kernel (/usr/bin/time's "Maximum resident set size" of that process alone), beside the same command on a
2-second sound (the floor: importing torch alone takes most of it). One JSON line per sound. Target: a 2-hour sound
costs no more than a short one, at any sample rate.

    python benchmarks/bench_mel.py                       # 1 h and 2 h at 16 kHz and 48 kHz (writes up to 690 MB of WAV to a temp folder)
    python benchmarks/bench_mel.py --hours 0.25 --rates 16000
"""
from __future__ import annotations
import argparse, json, os, platform, subprocess, sys, tempfile, time
from pathlib import Path

import numpy as np

from report import cpu_name   # benchmarks/report.py, beside this script


def write_sound(path: Path, hours: float, rate: int) -> None:
    "A long 16-bit WAV written in one-minute blocks (a chirp with noise), so writing it needs little memory."
    import soundfile as sf
    rng = np.random.default_rng(0)
    with sf.SoundFile(str(path), "w", samplerate=rate, channels=1, subtype="PCM_16") as f:
        n, block = int(hours * 3600 * rate), 60 * rate
        for i in range(0, n, block):
            t = (np.arange(i, min(i + block, n)) / rate).astype(np.float32)
            f.write(0.3 * np.sin(2 * np.pi * (200 + 50 * np.sin(t / 7)) * t) + 0.05 * rng.standard_normal(len(t)).astype(np.float32))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hours", type=float, nargs="+", default=[1.0, 2.0])
    p.add_argument("--rates", type=int, nargs="+", default=[16000, 48000])
    a = p.parse_args(argv)
    baselines = {}
    with tempfile.TemporaryDirectory() as d:
        for rate in a.rates:
            for hours in a.hours:
                wav = Path(d) / f"{hours:g}h_{rate}.wav"
                write_sound(wav, hours, rate)
                peak, seconds, ok, err = _peak(wav)
                base = baselines.setdefault(rate, _peak(_short(Path(d), rate))[0])
                print(json.dumps({"bench": "mel", "hours": hours, "sample_rate": rate, "ok": ok, "peak_rss_mb": peak,
                                  "two_second_sound_mb": base, "over_two_second_sound_mb": round(peak - base, 1),
                                  "seconds": seconds, "machine": platform.machine(), "cpu": cpu_name(), "cores": os.cpu_count()}), flush=True)
                res = type("R", (), {"returncode": 0 if ok else 1, "stderr": err})
                if res.returncode: print(res.stderr[-500:], file=sys.stderr)
                wav.unlink()
    return 0


def _peak(wav: Path) -> tuple[float, float, bool, str]:
    "(peak RSS in MB, seconds, ok, stderr) of `sound-video-gen mel WAV` in its own process."
    t0 = time.perf_counter()
    res = subprocess.run(["/usr/bin/time", "-f", "%M", sys.executable, "-m", "sound_video_gen.cli", "mel", str(wav), "-o",
                          str(wav.with_suffix(".png")), "--overwrite"], capture_output=True, text=True,
                         env={**os.environ, "HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg"})
    kb = int(res.stderr.strip().splitlines()[-1])
    return round(kb / 1024, 1), round(time.perf_counter() - t0, 1), res.returncode == 0, res.stderr[-500:]


def _short(d: Path, rate: int) -> Path:
    wav = d / f"short_{rate}.wav"
    if not wav.exists(): write_sound(wav, 2 / 3600, rate)
    return wav


if __name__ == "__main__":
    sys.exit(main())
