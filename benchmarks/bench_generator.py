"""Generator speed: frames/s and peak memory of G.synthesis for named configs, batch sizes and implementations.

Prints one JSON line per figure. `fast` is the default path (matrix-based filtered leaky ReLU for StyleGAN3,
activation-scaled modulated convolutions for batches); `ref` is the NVlabs reference algorithm (zero-insertion
upsampling and full-rate filtering for StyleGAN3, grouped per-sample convolutions). Each figure runs in its own
subprocess so its peak RSS is its own.

    python benchmarks/bench_generator.py                                  # every config x batch x impl (slow on CPU)
    python benchmarks/bench_generator.py --configs stylegan3-t-64 --batches 8 --impls fast ref --threads 2
"""
from __future__ import annotations
import argparse, json, os, platform, resource, subprocess, sys, time

DEFAULT_CONFIGS = ["stylegan3-t-tiny", "stylegan2-tiny", "stylegan3-t-64", "stylegan2-64", "stylegan3-t-paper"]

def run_one(cfg: str, batch: int, impl: str, device: str, reps: int, threads: int) -> dict:
    import torch
    from sound_video_gen.generators.factory import create_generator
    torch.set_num_threads(threads)
    G = create_generator(cfg, seed=0).eval().requires_grad_(False).to(device)
    kw = dict(noise_mode="const")
    if impl == "ref": kw.update(impl="ref", fused_modconv=True)
    ws = G.mapping(torch.randn(batch, G.z_dim, device=device), None)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    if device.startswith("cuda"): torch.cuda.reset_peak_memory_stats()
    with torch.no_grad():
        G.synthesis(ws, **kw); sync()   # warm-up (filter matrices, allocator)
        times = []
        for _ in range(reps):
            t = time.perf_counter(); G.synthesis(ws, **kw); sync(); times.append(time.perf_counter() - t)
    best = min(times)
    peak = (torch.cuda.max_memory_allocated() if device.startswith("cuda")
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return dict(bench="generator", config=cfg, arch=type(G).__name__, resolution=G.img_resolution, batch=batch,
                impl=impl, device=device, threads=threads, reps=reps, ms_per_batch=round(best * 1000, 2),
                ms_per_frame=round(best * 1000 / batch, 3), frames_per_s=round(batch / best, 3),
                peak_mem_mb=round(peak / 2**20, 1), peak_mem_kind="cuda_max_allocated" if device.startswith("cuda") else "process_max_rss",
                torch=torch.__version__, cpu=platform.processor() or platform.machine())

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--configs", nargs="+", default=DEFAULT_CONFIGS)
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 8, 32])
    ap.add_argument("--impls", nargs="+", default=["fast", "ref"], choices=["fast", "ref"])
    ap.add_argument("--devices", nargs="+", default=None, help="default: cpu, plus cuda when available")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)   # internal: run a single figure in this process
    a = ap.parse_args(argv)
    if a.one:
        cfg, batch, impl, device = a.one.split(",")
        print(json.dumps(run_one(cfg, int(batch), impl, device, a.reps, a.threads)), flush=True)
        return 0
    if a.devices is None:
        import torch
        a.devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in a.devices:
        for cfg in a.configs:
            for batch in a.batches:
                for impl in a.impls:
                    cmd = [sys.executable, __file__, "--one", f"{cfg},{batch},{impl},{device}", "--reps", str(a.reps), "--threads", str(a.threads)]
                    r = subprocess.run(cmd, capture_output=True, text=True, env=os.environ)
                    if r.returncode != 0:
                        err = (r.stderr.strip().splitlines() or ["failed"])[-1]
                        print(json.dumps(dict(bench="generator", config=cfg, batch=batch, impl=impl, device=device, error=err)), flush=True)
                    else:
                        print(r.stdout.strip().splitlines()[-1], flush=True)
    return 0

if __name__ == "__main__":
    sys.exit(main())
