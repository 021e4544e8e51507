"""Stage-0 training speed: seconds per step and images per second of `train_generator` (G, D, lazy R1, G_ema).

Prints one JSON line per config. Configs are named `GeneratorTrainConfig`s (default: the tiny test config, the CPU
demo's StyleGAN2 64², and the paper's StyleGAN3-T 256²); `--set key=value` changes fields of all of them (values are
JSON), e.g. `--set batch_size=8 'generator_overrides={"mapping_layers": 2}'`. Data are random uint8 images in
memory, so the figure is the networks' cost, not the loader's. A step's time is averaged over the steps after
`--warmup`, so lazy R1 (every r1_interval steps) is counted in proportion only when `--steps` spans an interval.

    python benchmarks/bench_train_generator.py [--configs train-generator-tiny train-generator-demo] [--steps 16] [--threads 2]

`--nvlabs PATH` (a checkout of NVlabs/stylegan3 or stylegan2-ada-pytorch, kept outside this repository) also times
NVlabs' own training step on the same StyleGAN2 architecture, batch and lazy-regularisation intervals: their
`networks_stylegan2` G and D, `StyleGAN2Loss.accumulate_gradients` per phase, their gradient clean-up, Adam and
G_ema update, as `training_loop.py` runs them (their custom ops fall back to their reference kernels on a CPU).
Both sides then run without augmentation (NVlabs' ADA pipe is off; ours `augment=""`) and with fp32 synthesis
(`num_fp16_res=0`), and each figure line carries `nvlabs_sec_per_step` and `speedup`. `--repeat R` measures each
side R times, alternating between them, and reports the medians (a shared machine's slow spells then hit both).
"""
import argparse, json, os, platform, resource, statistics, tempfile, time

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
    p.add_argument("--repeat", type=int, default=1, help="measure each side this many times, alternating; report medians")
    p.add_argument("--nvlabs", help="path of an NVlabs stylegan3 / stylegan2-ada-pytorch checkout: also time their step")
    a = p.parse_args()
    if a.repeat < 1: p.error(f"--repeat must be at least 1, got {a.repeat}.")
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
        if a.nvlabs:   # like for like: no augmentation, fp32
            cfg = cfg.replace(augment="", generator_overrides={**cfg.generator_overrides, "num_fp16_res": 0})
        cfg = cfg.replace(**over, max_steps=a.warmup + a.steps + 1, ckpt_every=0, sample_every=0, log_every=10**6,
                          device=a.device, progress=False)
        res = cfg.generator_config().img_resolution
        images = torch.randint(0, 256, (max(64, 2 * cfg.batch_size), 3, res, res), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
        def ours() -> float:
            stamps = []
            def cb(step, rec):
                if torch.cuda.is_available() and a.device != "cpu": torch.cuda.synchronize()
                stamps.append(time.perf_counter())
            with tempfile.TemporaryDirectory() as d:
                train_generator(cfg, images, run_dir=d, callback=cb)
            t = stamps[a.warmup:a.warmup + a.steps + 1]
            return (t[-1] - t[0]) / (len(t) - 1)
        runs, nv_runs = [], []
        for _ in range(a.repeat):   # alternate the two sides, so that a slow spell of the machine hits both
            runs.append(ours())
            if a.nvlabs: nv_runs.append(nvlabs_sec_per_step(a.nvlabs, cfg, images, a.warmup, a.steps, a.device))
        sec, extra = statistics.median(runs), {}
        if a.repeat > 1: extra["runs_sec_per_step"] = [round(r, 4) for r in runs]
        if a.nvlabs:
            nv_sec = statistics.median(nv_runs)
            extra.update(nvlabs_sec_per_step=round(nv_sec, 4), speedup=round(nv_sec / sec, 2), augment="none", num_fp16_res=0)
            if a.repeat > 1: extra["nvlabs_runs_sec_per_step"] = [round(r, 4) for r in nv_runs]
        print(json.dumps({**extra, "bench": "train_generator", "config": name, "overrides": over, "generator": cfg.generator,
                          "resolution": res, "batch_size": cfg.batch_size, "sec_per_step": round(sec, 4),
                          "images_per_s": round(cfg.batch_size / sec, 2), "r1_interval": cfg.r1_interval,
                          "steps": a.steps, "threads": a.threads, "device": a.device, "torch": torch.__version__,
                          "cpu": platform.processor() or platform.machine(),
                          "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}), flush=True)


def nvlabs_sec_per_step(path: str, cfg, images: torch.Tensor, warmup: int, steps: int, device: str) -> float:
    "Seconds per step of NVlabs' training loop body for the same G/D architecture, batch and lazy intervals."
    import copy, sys
    import numpy as np
    sys.path.insert(0, path)
    from training.networks_stylegan2 import Discriminator, Generator
    from training.loss import StyleGAN2Loss
    dev = torch.device(device)
    gc = cfg.generator_config()
    if type(gc).__name__ != "StyleGAN2Config": raise SystemExit("--nvlabs compares StyleGAN2 configs only.")
    G = Generator(z_dim=gc.z_dim, c_dim=0, w_dim=gc.w_dim, img_resolution=gc.img_resolution, img_channels=gc.img_channels,
                  mapping_kwargs=dict(num_layers=gc.mapping_layers), channel_base=gc.channel_base, channel_max=gc.channel_max,
                  num_fp16_res=0, conv_clamp=gc.conv_clamp).train().requires_grad_(False).to(dev)
    D = Discriminator(c_dim=0, img_resolution=gc.img_resolution, img_channels=gc.img_channels, architecture=cfg.d_architecture,
                      channel_base=cfg.d_channel_base or gc.channel_base, channel_max=cfg.d_channel_max or gc.channel_max,
                      num_fp16_res=0, conv_clamp=gc.conv_clamp, epilogue_kwargs=dict(mbstd_group_size=cfg.mbstd_group_size)
                      ).train().requires_grad_(False).to(dev)
    G_ema = copy.deepcopy(G).eval()
    loss = StyleGAN2Loss(device=dev, G=G, D=D, r1_gamma=cfg.r1_gamma, style_mixing_prob=cfg.style_mixing_prob,
                         pl_weight=cfg.pl_weight, pl_batch_shrink=cfg.pl_batch_shrink, pl_decay=cfg.pl_decay)
    phases = []
    for name, module, lr, interval in [("G", G, cfg.G_lr, cfg.pl_interval if cfg.pl_weight > 0 else None),
                                       ("D", D, cfg.D_lr, cfg.r1_interval if cfg.r1_gamma > 0 else None)]:
        if interval is None:
            phases.append((name + "both", module, torch.optim.Adam(module.parameters(), lr=lr, betas=tuple(cfg.betas), eps=1e-8), 1))
        else:
            r = interval / (interval + 1)
            opt = torch.optim.Adam(module.parameters(), lr=lr * r, betas=tuple(b ** r for b in cfg.betas), eps=1e-8)
            phases += [(name + "main", module, opt, 1), (name + "reg", module, opt, interval)]
    B, gen = cfg.batch_size, torch.Generator().manual_seed(0)
    stamps, cur_nimg = [], 0
    for step in range(warmup + steps + 1):
        real = (images[torch.randint(len(images), (B,), generator=gen)].to(dev).float() / 127.5 - 1)
        c = torch.zeros([B, 0], device=dev)
        for name, module, opt, interval in phases:           # training_loop.py, one round
            if step % interval: continue
            z = torch.randn([B, G.z_dim], generator=gen).to(dev)
            opt.zero_grad(set_to_none=True)
            module.requires_grad_(True)
            loss.accumulate_gradients(phase=name, real_img=real, real_c=c, gen_z=z, gen_c=c, gain=interval, cur_nimg=cur_nimg)
            module.requires_grad_(False)
            params = [p for p in module.parameters() if p.numel() > 0 and p.grad is not None]
            if params:
                flat = torch.nan_to_num(torch.cat([p.grad.flatten() for p in params]), nan=0, posinf=1e5, neginf=-1e5)
                for p, g in zip(params, flat.split([p.numel() for p in params])): p.grad = g.reshape(p.shape)
            opt.step()
        ema_nimg = cfg.ema_kimg * 1000
        if cfg.ema_rampup > 0: ema_nimg = min(ema_nimg, cur_nimg * cfg.ema_rampup)
        beta = 0.5 ** (B / max(ema_nimg, 1e-8))
        with torch.no_grad():
            for pe, p in zip(G_ema.parameters(), G.parameters()): pe.copy_(p.lerp(pe, beta))
            for be, b in zip(G_ema.buffers(), G.buffers()): be.copy_(b)
        cur_nimg += B
        if dev.type == "cuda": torch.cuda.synchronize()
        stamps.append(time.perf_counter())
    t = stamps[warmup:warmup + steps + 1]
    return (t[-1] - t[0]) / (len(t) - 1)


if __name__ == "__main__":
    main()
