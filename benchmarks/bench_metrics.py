"""Metric evaluation speed: SynthScapes-Bench scores for 256 clips of 16 frames at 64x64 on CPU.

Prints one JSON line per figure. The target: all four scores (FVD-SS, IS-SS, class consistency, sync) for 256
generated clips against 256 real clips in under 2 minutes on CPU. With --classifier the trained benchmark
classifier is used, otherwise a randomly initialised one of the same architecture (same cost).
--i3d N also times the FVD I3D (random weights, 224x224 resize inside, the StyleGAN-V call) on N clips.

    python benchmarks/bench_metrics.py [--clips 256] [--threads 2] [--classifier PATH] [--i3d 4]
"""
import argparse
import json
import platform
import time

import torch


def line(**kw):
    print(json.dumps({"machine": f"{platform.machine()} cpu, {torch.get_num_threads()} threads", **kw}), flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--clips", type=int, default=256)
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--classifier", default=None)
    p.add_argument("--i3d", type=int, default=0, help="also time the I3D detector on this many clips")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    from sound_video_gen.metrics.bench import ClassifierDetector, SSClassifier, SSClassifierConfig, bench_scores, load_classifier
    from sound_video_gen.metrics.distances import FeatureStats, frechet_distance_stats

    g = torch.Generator().manual_seed(0)
    shape = (a.clips, a.frames, 3, a.size, a.size)
    real = torch.randint(0, 256, shape, dtype=torch.uint8, generator=g)
    fake = torch.randint(0, 256, shape, dtype=torch.uint8, generator=g)
    data = {"frames": fake, "labels": torch.arange(a.clips) % 9, "motion": torch.rand(a.clips, a.frames, generator=g)}
    det = load_classifier(a.classifier) if a.classifier else ClassifierDetector(SSClassifier(SSClassifierConfig()).eval())

    t0 = time.perf_counter()
    scores = bench_scores(fake, data, {"frames": real}, det)
    dt = time.perf_counter() - t0
    line(figure="synthscapes_bench_scores_seconds", value=round(dt, 2), clips=a.clips, frames=a.frames, size=a.size,
         scores=["fvd_ss", "is_ss", "consistency", "sync"], target_seconds=120, passed=dt < 120,
         classifier="trained" if a.classifier else "random-init")

    t0 = time.perf_counter()
    det.features(real)
    line(figure="classifier_features_clips_per_second", value=round(a.clips / (time.perf_counter() - t0), 1))

    x = torch.randn(2048, 400, dtype=torch.float64, generator=g)
    t0 = time.perf_counter()
    s1, s2 = FeatureStats().append(x), FeatureStats().append(x + 0.1)
    frechet_distance_stats(s1, s2)
    line(figure="frechet_2048x400_seconds", value=round(time.perf_counter() - t0, 3))

    if a.i3d:
        from sound_video_gen.metrics.detectors import I3DDetector, InceptionI3d
        i3d = I3DDetector(InceptionI3d())
        clips = real[:a.i3d]
        t0 = time.perf_counter()
        for i in range(len(clips)): i3d.features(clips[i:i + 1])
        per = (time.perf_counter() - t0) / len(clips)
        line(figure="i3d_224_seconds_per_clip", value=round(per, 2), frames=a.frames,
             note="random weights; resize to 224x224 inside as the StyleGAN-V protocol; FVD on 2048+2048 clips needs a GPU")


if __name__ == "__main__":
    main()
