"""Stage-0 training speed: seconds per step and images per second of `train_generator` (G, D, lazy R1, G_ema).

Prints one JSON line per config. Configs are named `GeneratorTrainConfig`s (default: the tiny test config, the CPU
demo's StyleGAN2 64², and the paper's StyleGAN3-T 256²); `--set key=value` changes fields of all of them (values are
JSON), e.g. `--set batch_size=8 'generator_overrides={"mapping_layers": 2}'`. Data are random uint8 images in
memory, so the figure is the networks' cost, not the loader's. A step's time is averaged over the steps after
`--warmup`, so lazy R1 (every r1_interval steps) is counted in proportion only when `--steps` spans an interval.

    python benchmarks/bench_train_generator.py [--configs train-generator-tiny train-generator-demo] [--steps 16] [--threads 2]
"""
import argparse, json, os, platform, resource, tempfile, time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--configs", nargs="*", default=["train-generator-tiny", "train-generator-demo", "train-generator-stylegan3-t-paper"])
    p.add_argument("--steps", type=int, default=16, help="timed steps per config")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    from sound_video_gen.core import get_config
    from sound_video_gen.train.generator import train_generator
    over = {}
    for kv in a.set:
        k, v = kv.split("=", 1)
        try: over[k] = json.loads(v)
        except json.JSONDecodeError: over[k] = v
    for name in a.configs:
        cfg = get_config(name)
        cfg = cfg.replace(**over, max_steps=a.warmup + a.steps + 1, ckpt_every=0, sample_every=0, log_every=10**6,
                          device=a.device, progress=False)
        res = cfg.generator_config().img_resolution
        images = torch.randint(0, 256, (max(64, 2 * cfg.batch_size), 3, res, res), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
        stamps = []
        def cb(step, rec):
            if torch.cuda.is_available() and a.device != "cpu": torch.cuda.synchronize()
            stamps.append(time.perf_counter())
        with tempfile.TemporaryDirectory() as d:
            train_generator(cfg, images, run_dir=d, callback=cb)
        t = stamps[a.warmup:a.warmup + a.steps + 1]
        sec = (t[-1] - t[0]) / (len(t) - 1)
        print(json.dumps({"bench": "train_generator", "config": name, "overrides": over, "generator": cfg.generator,
                          "resolution": res, "batch_size": cfg.batch_size, "sec_per_step": round(sec, 4),
                          "images_per_s": round(cfg.batch_size / sec, 2), "r1_interval": cfg.r1_interval,
                          "steps": a.steps, "threads": a.threads, "device": a.device, "torch": torch.__version__,
                          "cpu": platform.processor() or platform.machine(),
                          "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}), flush=True)


if __name__ == "__main__":
    main()
