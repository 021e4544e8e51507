"""Stage-3 training speed: seconds per optimisation step (one D step + one model step) of `train_ssvg`.

Prints one JSON line per figure. Configs:
  tiny   ssvg-tiny on stylegan2-tiny (32x32), tiny CLIP and F_a, batch 2 x 6 frames;
  demo   ssvg-tiny encoder widths on stylegan2-64 (64x64), tiny CLIP and F_a, batch 2 x 6 frames;
  paper  ssvg-paper (IR-SE-50 at 256^2, GRUs of 512) on stylegan3-t-paper (256x256), ViT-B-32 and the paper
         F_a (ResNet-50), batch 1 x 2 frames — random weights of the real architectures (the cost is the same).
Data are random tensors in memory, so the figure is the model's cost, not the loader's. Weights are seeded, so two
versions of the code can be compared at the same numbers: `first_step` holds the first step's losses and gradient norm.

    python benchmarks/bench_train_ssvg.py [--configs tiny demo paper] [--steps 3] [--threads 2] [--device cpu]
"""
import argparse, json, os, platform, resource, tempfile, time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch


class RandomClips(torch.utils.data.Dataset):
    def __init__(self, n, T, size, n_mels, width):
        self.n, self.T, self.size, self.n_mels, self.width = n, T, size, n_mels, width
    def __len__(self): return self.n
    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        return {"frames": torch.rand(self.T, 3, self.size, self.size, generator=g) * 2 - 1,
                "audio": torch.rand(self.T, 1, self.n_mels, self.width, generator=g), "class": "rain", "caption": "rain"}


def setup(name):
    torch.manual_seed(0)
    from sound_video_gen.core import get_config
    from sound_video_gen.generators.factory import create_generator
    from sound_video_gen.multimodal.clip import load_clip
    from sound_video_gen.multimodal.audio_encoder import AudioEncoder
    from sound_video_gen.train.ssvg import SSVGTrainConfig
    if name in ("tiny", "demo"):
        G = create_generator("stylegan2-tiny" if name == "tiny" else "stylegan2-64")
        clip, fa = load_clip("clip-tiny", None), AudioEncoder(get_config("audio-encoder-tiny"))
        model, mel, batch, T = get_config("ssvg-tiny"), get_config("mel-tiny"), 2, 6
        disc = SSVGTrainConfig().discriminator.replace(channels=16, max_channels=64)
    else:
        G = create_generator("stylegan3-t-paper")
        clip, fa = load_clip("ViT-B-32", None), AudioEncoder(get_config("audio-encoder-paper"))
        model, mel, batch, T = get_config("ssvg-paper"), get_config("mel-paper"), 1, 2
        disc = SSVGTrainConfig().discriminator
    data = RandomClips(64, T, G.img_resolution, mel.n_mels, mel.window_frames)
    return G, clip, fa, model, disc, data, batch, T


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--configs", nargs="*", default=["tiny", "demo", "paper"])
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    from sound_video_gen.train.ssvg import SSVGTrainConfig, train_ssvg
    for name in a.configs:
        G, clip, fa, model, disc, data, batch, T = setup(name)
        times = []
        with tempfile.TemporaryDirectory() as d:
            cfg = SSVGTrainConfig(model=model, discriminator=disc, generator="(in memory)", clip="(in memory)",
                                  run_dir=d, max_steps=a.steps + 1, batch_size=batch, log_every=1, ckpt_every=0,
                                  sample_every=0, progress=False, device=a.device)
            last, first = [time.perf_counter()], {}
            def on_step(step, rec):
                now = time.perf_counter(); times.append(now - last[0]); last[0] = now
                if step == 1: first.update({k: v for k, v in rec.items() if k not in ("step", "time")})
            train_ssvg(cfg, data, G=G, clip=clip, audio_encoder=fa, on_step=on_step)
        steady = sorted(times[1:-1] if len(times) > 3 else times[1:])  # the first pays for warm-up, the last for the save
        s = steady[len(steady) // 2]
        dev = a.device if a.device != "cpu" else f"{platform.machine()} cpu, {a.threads} threads"
        print(json.dumps({"benchmark": "train_ssvg", "config": name, "device": dev, "resolution": G.img_resolution,
                          "batch": batch, "frames": T, "steps": len(steady), "s_per_step": round(s, 3),  # the median step
                          "steps_per_s": round(1 / s, 4),
                          "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                          "first_step": {k: round(float(v), 7) for k, v in first.items()}}), flush=True)


if __name__ == "__main__":
    main()
