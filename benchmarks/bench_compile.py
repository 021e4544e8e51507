"""torch.compile (inductor) against eager for the shipped demo generator's synthesis on this CPU: the first call's
compile time, then seconds per batch of 16 frames, and the largest difference from eager. Prints one JSON line.

    python benchmarks/bench_compile.py [--threads 2] [--repeat 5]
"""
import argparse, json, os, platform, time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=5)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    from sound_video_gen.apps.pipeline import SoundToVideo
    G = SoundToVideo.from_pretrained("demo").G
    g = torch.Generator().manual_seed(0)
    ws = G.mapping.w_avg.repeat(16, G.num_ws, 1) + 0.1 * torch.randn(16, G.num_ws, G.w_dim, generator=g)
    def timed(f):
        t0 = time.perf_counter()
        for _ in range(a.repeat): y = f(ws, noise_mode="const")
        return (time.perf_counter() - t0) / a.repeat, y
    # dynamo cannot trace under inference_mode here (a guard on the layers' gains fails), so both run under no_grad
    with torch.no_grad():
        for _ in range(2): G.synthesis(ws, noise_mode="const")
        eager, ref = timed(G.synthesis)
        compiled = torch.compile(G.synthesis, dynamic=False)
        t0 = time.perf_counter(); compiled(ws, noise_mode="const"); first = time.perf_counter() - t0
        fast, y = timed(compiled)
    print(json.dumps({"bench": "compile", "generator": "shipped demo (StyleGAN2 64²)", "batch": 16, "threads": a.threads,
                      "cpu": platform.processor() or platform.machine(), "torch": torch.__version__,
                      "eager_s": round(eager, 4), "compiled_s": round(fast, 4), "compile_s": round(first, 1),
                      "max_abs_diff": float((y - ref).abs().max())}))


if __name__ == "__main__":
    main()
