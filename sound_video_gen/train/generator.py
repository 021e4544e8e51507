"""Stage 0: train a StyleGAN2 (or StyleGAN3) generator from scratch on the frames of a clip folder or on images.

The objective is StyleGAN2-ADA's (Karras et al. 2020, `training/loss.py` of stylegan2-ada-pytorch / stylegan3):

- non-saturating logistic loss, `softplus(-D(G(z)))` for G and `softplus(D(G(z))) + softplus(-D(x))` for D;
- lazy R1 on real images, `r1_gamma / 2 · ‖∇_x D(x)‖²`, every `r1_interval` steps, scaled by the interval, with the
  optimizer's lr and betas adjusted by `interval / (interval + 1)` as NVlabs does;
- optional path-length regularisation for StyleGAN2 (`pl_weight`, lazy every `pl_interval` steps);
- style mixing with probability `style_mixing_prob`;
- `G_ema` with a half-life of `ema_kimg` thousand images and NVlabs' ramp-up (`ema_rampup`).

Augmentation is DiffAugment (Zhao et al. 2020: color, translation, cutout), applied to every image D sees, real
or generated, and differentiable so G learns through it. We use it rather than ADA because the data this stage
trains on is small (a few thousand frames of a few hundred scenes), D overfits such data within a few thousand
steps, and DiffAugment prevents that with three cheap ops of fixed strength, whereas ADA's 18-op pipeline (with
geometric warps through up/down-sampling filters) costs more per image than our 64² CPU generator and its
adaptive strength needs hundreds of kimg to settle. `augment=""` turns it off.

Every random draw of a step (latents, mixing cut-offs, augmentation, the synthesis noise, the path-length noise)
comes from a generator seeded by (seed, step, phase) and is made for the whole global batch; each process keeps
its rows (`rows`). The synthesis noise, which the generator draws from the global torch RNG, is drawn inside
`torch.random.fork_rng` with such a seed and `generators.stylegan2.noise_rows`, so the global stream is never
consumed. Real images are picked by `StepBatchSampler`, a function of (seed, step). A run killed and resumed from
its last checkpoint therefore ends bit-identical to one that was never interrupted, and N processes under torchrun
compute what one process does with the same global batch: gradients are averaged over processes, the
path-length mean and G's `w_avg` are averaged too. One statistic stays per process, as in NVlabs: D's
minibatch standard deviation groups images within a process's batch (`mbstd_group_size=1` turns it off).

Writes to `run_dir`: `config.json`, `log.jsonl`, `checkpoint.safetensors` (G, D, G_ema, both optimizers, step),
`G_ema.safetensors` (loadable with `factory.load_generator`), `samples/reals.png` and `samples/fakes{step:06d}.png`
(a fixed-z grid of G_ema), and, when a detector is given, a Fréchet distance `fd_<name>` in the log.
"""
from __future__ import annotations
import contextlib, copy, json, math, time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from sound_video_gen.core import Config, UserError, atomic_path, get_config
from sound_video_gen.generators.discriminator import StyleGAN2Discriminator, StyleGAN2DiscriminatorConfig
from sound_video_gen.generators.factory import create_generator, save_generator
from sound_video_gen.generators.stylegan2 import noise_rows
from sound_video_gen.train.common import (DistEnv, RunDir, StepBatchSampler, dist_setup, dist_teardown, progress,
                                          seed_for_rank)

__all__ = ["GeneratorTrainConfig", "train_generator", "diff_augment", "AUGMENT_OPS", "load_images", "frame_images",
           "ssclf_frame_detector", "fd_detector_name", "image_grid", "save_png", "step_generator"]

AUGMENT_OPS = ("color", "translation", "cutout")
_PHASE = {"Gmain": 0, "Greg": 1, "Dmain": 2, "Dreg": 3, "eval": 4, "sample": 5}


@dataclass
class GeneratorTrainConfig(Config):
    "Stage 0 (`train_generator`): the generator to train, its discriminator, and the StyleGAN2-ADA objective."
    generator: str = "stylegan2-64"        # a named generator config or a JSON file (StyleGAN2Config / StyleGAN3Config)
    generator_overrides: dict = field(default_factory=dict)  # fields of the generator config to change, e.g. {"mapping_layers": 2}
    d_architecture: str = "resnet"         # discriminator architecture: 'resnet', 'orig' or 'skip'
    d_channel_base: int = 0                # D's channel_base (0: the generator's)
    d_channel_max: int = 0                 # D's channel_max (0: the generator's)
    mbstd_group_size: int = 4              # minibatch-std group size of D
    channels_last: bool = True             # G, D and images in NHWC layout (faster convolutions on CPU; same results up to rounding)
    run_dir: str = "runs/generator"
    max_steps: int = 10000                 # optimizer steps of G (each sees batch_size images)
    batch_size: int = 16                   # global batch (split over torchrun processes)
    G_lr: float = 0.0025                   # Adam learning rate of G
    D_lr: float = 0.0025                   # Adam learning rate of D
    betas: tuple = (0.0, 0.99)             # Adam betas (NVlabs)
    r1_gamma: float = 1.0                  # R1 weight γ (0: off)
    r1_interval: int = 16                  # lazy R1 every N steps
    pl_weight: float = 0.0                 # path-length regularisation weight (StyleGAN2 only; NVlabs: 2)
    pl_interval: int = 4                   # lazy path-length regularisation every N steps
    pl_batch_shrink: int = 2               # path-length batch = batch // shrink
    pl_decay: float = 0.01                 # decay of the running path length
    style_mixing_prob: float = 0.9         # probability of mixing two latents in a batch (0: off)
    ema_kimg: float = 5.0                  # G_ema half-life in thousands of images (NVlabs: batch·10/32)
    ema_rampup: float = 0.05               # ramp the half-life up with the images seen (0: off)
    augment: str = "color,translation,cutout"  # DiffAugment ops, comma-separated ('': none)
    xflip: bool = True                     # add mirrored images to the dataset
    frames_per_clip: int = 8               # frames taken from each clip, evenly spaced
    split: str = "train"                   # clip split to train on ('train', 'val', 'test', or 'all')
    seed: int = 0
    ckpt_every: int = 500                  # full checkpoint + G_ema.safetensors every N steps
    sample_every: int = 500                # fakes{step}.png every N steps (0: off)
    log_every: int = 10
    eval_every: int = 0                    # Fréchet distance every N steps, when a detector is given (0: only at the end)
    fd_items: int = 1000                   # images per Fréchet distance (real and generated)
    grid_size: int = 8                     # the sample grid has grid_size × grid_size images
    device: str = "auto"
    progress: bool = True

    def __post_init__(self):
        bad = []
        def finite(v): return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        for k in ("G_lr", "D_lr"):
            v = getattr(self, k)
            if not finite(v) or not 0 < v <= 1: bad.append(f"{k}={v!r} (a learning rate must be in (0, 1])")
        b = tuple(self.betas) if isinstance(self.betas, (list, tuple)) else ()
        if len(b) != 2 or not all(finite(x) and 0 <= x < 1 for x in b): bad.append(f"betas={self.betas!r} (two numbers in [0, 1))")
        for k in ("r1_gamma", "pl_weight", "pl_decay", "style_mixing_prob", "ema_rampup"):
            v = getattr(self, k)
            if not finite(v) or v < 0: bad.append(f"{k}={v!r} (must be finite and >= 0)")
        if finite(self.style_mixing_prob) and self.style_mixing_prob > 1: bad.append(f"style_mixing_prob={self.style_mixing_prob} (a probability)")
        if finite(self.pl_decay) and self.pl_decay > 1: bad.append(f"pl_decay={self.pl_decay} (must be <= 1)")
        if not finite(self.ema_kimg) or self.ema_kimg <= 0: bad.append(f"ema_kimg={self.ema_kimg!r} (must be > 0)")
        for k in ("r1_interval", "pl_interval", "pl_batch_shrink", "batch_size", "frames_per_clip", "grid_size", "fd_items"):
            if getattr(self, k) < 1: bad.append(f"{k}={getattr(self, k)} (must be >= 1)")
        for k in ("max_steps", "ckpt_every", "sample_every", "log_every", "eval_every", "d_channel_base", "d_channel_max", "mbstd_group_size"):
            if getattr(self, k) < 0: bad.append(f"{k}={getattr(self, k)} (must be >= 0)")
        ops = [o.strip() for o in self.augment.split(",") if o.strip()]
        if any(o not in AUGMENT_OPS for o in ops): bad.append(f"augment={self.augment!r} (ops: {', '.join(AUGMENT_OPS)})")
        if self.d_architecture not in ("resnet", "orig", "skip"): bad.append(f"d_architecture={self.d_architecture!r}")
        if self.split not in ("train", "val", "test", "all"): bad.append(f"split={self.split!r}")
        if not isinstance(self.generator_overrides, dict): bad.append("generator_overrides must be a JSON object")
        if bad: raise UserError(f"invalid GeneratorTrainConfig: {'; '.join(bad)}.")

    def generator_config(self) -> Config:
        "The resolved generator config (named config + overrides)."
        base = get_config(self.generator)
        if type(base).__name__ not in ("StyleGAN2Config", "StyleGAN3Config"):
            raise UserError(f"{self.generator} is a {type(base).__name__}, not a generator config (expected a StyleGAN2Config "
                            "or StyleGAN3Config name, such as stylegan2-64).")
        return get_config(self.generator, **self.generator_overrides)

    def discriminator_config(self, G) -> StyleGAN2DiscriminatorConfig:
        "D's config for a generator: same resolution and channels unless d_channel_base / d_channel_max say otherwise."
        return StyleGAN2DiscriminatorConfig(img_resolution=G.img_resolution, img_channels=G.img_channels,
                                            architecture=self.d_architecture,
                                            channel_base=self.d_channel_base or G.cfg.channel_base,
                                            channel_max=self.d_channel_max or G.cfg.channel_max,
                                            mbstd_group_size=self.mbstd_group_size).validate()


# ----------------------------------------------------------------------------------------------------------
# Randomness: one generator per (seed, step, phase), drawing for the global batch

def step_generator(seed: int, step: int, phase: str = "Gmain", device="cpu") -> torch.Generator:
    "A torch.Generator whose state depends only on (seed, step, phase); every process holds the same one."
    s = int(np.random.SeedSequence([int(seed), int(step), _PHASE[phase]]).generate_state(2, np.uint64)[0] >> np.uint64(1))
    return torch.Generator(device=device).manual_seed(s)


@dataclass(frozen=True)
class Rows:
    "This process's rows `start … start + n` of a global batch of `total`: draws are made for `total` and sliced."
    start: int
    n: int
    total: int

    def randn(self, *shape, gen: torch.Generator) -> torch.Tensor:
        return torch.randn([self.total, *shape], generator=gen)[self.start:self.start + self.n]

    def shrink(self, k: int) -> "Rows":
        "Every k-th row of the global batch (the path-length batch): this process's share of them."
        return Rows(self.start // k, self.n // k, self.total // k)


@contextlib.contextmanager
def _seeded_global(gen: torch.Generator, device: torch.device):
    "Run code that draws from the global torch RNG (G's synthesis noise) on a stream seeded from `gen`, restoring the global state after."
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=gen)))
        yield


# ----------------------------------------------------------------------------------------------------------
# DiffAugment

def diff_augment(x: torch.Tensor,   # images [N, C, H, W] in [-1, 1]
                 ops: str | tuple,   # 'color,translation,cutout' or a tuple of op names
                 gen: torch.Generator,
                 translation_ratio: float = 0.125, cutout_ratio: float = 0.5,
                 rows: tuple[int, int] | None = None,   # (start, total): x is rows start… of a `total`-row batch
                ) -> torch.Tensor:
    "DiffAugment (Zhao et al. 2020): differentiable colour, translation and cutout with draws from `gen`."
    ops = tuple(o.strip() for o in ops.split(",") if o.strip()) if isinstance(ops, str) else tuple(ops)
    if not ops: return x
    N, C, H, W = x.shape
    dev = x.device
    s0, total = rows if rows is not None else (0, N)
    def rand(*shape): return torch.rand((total, *shape[1:]), generator=gen, device=gen.device)[s0:s0 + N].to(dev)
    if "color" in ops:
        x = x + (rand(N, 1, 1, 1) - 0.5)                                   # brightness
        m = x.mean(dim=1, keepdim=True)
        x = (x - m) * (rand(N, 1, 1, 1) * 2) + m                          # saturation
        m = x.mean(dim=[1, 2, 3], keepdim=True)
        x = (x - m) * (rand(N, 1, 1, 1) + 0.5) + m                        # contrast
    if "translation" in ops:
        sh, sw = int(H * translation_ratio + 0.5), int(W * translation_ratio + 0.5)
        ty = (rand(N, 1, 1) * (2 * sh + 1)).floor().long() - sh
        tx = (rand(N, 1, 1) * (2 * sw + 1)).floor().long() - sw
        gy = (torch.arange(H, device=dev).view(1, H, 1) + ty + 1).clamp(0, H + 1)
        gx = (torch.arange(W, device=dev).view(1, 1, W) + tx + 1).clamp(0, W + 1)
        xp = F.pad(x, [1, 1, 1, 1])
        idx = (gy * (W + 2) + gx).view(N, 1, H * W).expand(N, C, H * W)
        x = xp.flatten(2).gather(2, idx).view(N, C, H, W)
    if "cutout" in ops:
        ch, cw = int(H * cutout_ratio + 0.5), int(W * cutout_ratio + 0.5)
        oy = (rand(N, 1, 1) * (H + (1 - ch % 2))).floor().long()
        ox = (rand(N, 1, 1) * (W + (1 - cw % 2))).floor().long()
        yy = torch.arange(H, device=dev).view(1, H, 1) - oy + ch // 2
        xx = torch.arange(W, device=dev).view(1, 1, W) - ox + cw // 2
        keep = ~(((yy >= 0) & (yy < ch)) & ((xx >= 0) & (xx < cw)))
        x = x * keep.unsqueeze(1).to(x.dtype)
    return x


# ----------------------------------------------------------------------------------------------------------
# Data: uint8 images in memory

_IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def _resize_uint8(x: torch.Tensor, size: int) -> torch.Tensor:
    "uint8 [N, 3, H, W] -> uint8 [N, 3, size, size]: shorter side scaled to `size` (antialiased), centre crop."
    if tuple(x.shape[-2:]) == (size, size): return x.contiguous()
    H, W = x.shape[-2:]
    s = size / min(H, W)
    nh, nw = max(size, round(H * s)), max(size, round(W * s))
    y = F.interpolate(x.float(), size=(nh, nw), mode="bilinear", antialias=True, align_corners=False)
    i, j = (nh - size) // 2, (nw - size) // 2
    return y[..., i:i + size, j:j + size].round().clamp(0, 255).to(torch.uint8).contiguous()


def frame_images(items: list[dict], size: int, frames_per_clip: int, progress_bar: bool = True) -> torch.Tensor:
    "`frames_per_clip` evenly spaced frames of every clip (dicts with 'path' and 'info', as `scan_folder` returns) as uint8 [N, 3, size, size]."
    from sound_video_gen.data.clips import probe_video, read_frames
    from tqdm.auto import tqdm
    out = []
    for it in tqdm(items, desc="reading frames", disable=not progress_bar, leave=False):
        info = it.get("info") or probe_video(it["path"])
        dur = info["n_frames"] / info["fps"]
        times = (np.arange(frames_per_clip) + 0.5) * dur / frames_per_clip
        fr = torch.from_numpy(np.ascontiguousarray(read_frames(it["path"], times))).permute(0, 3, 1, 2)
        out.append(_resize_uint8(fr, size))
    return torch.cat(out)


def load_images(source,                    # clip folder, image folder, AVClipDataset, or a uint8 tensor [N, 3, H, W]
                size: int,                 # output resolution
                frames_per_clip: int = 8,  # frames per clip for video sources
                split: str = "train",      # clip split ('all': every clip)
                progress_bar: bool = True) -> torch.Tensor:
    "The training images as one uint8 tensor [N, 3, size, size], decoded once and kept in memory."
    if isinstance(source, torch.Tensor):
        if source.dtype != torch.uint8 or source.ndim != 4 or source.shape[1] != 3:
            raise UserError(f"an image tensor must be uint8 [N, 3, H, W], got {source.dtype} {list(source.shape)}.")
        return _resize_uint8(source, size)
    if hasattr(source, "items") and isinstance(getattr(source, "items"), list):   # AVClipDataset
        items = source.items
        if split != "all" and any(it.get("split") for it in items): items = [it for it in items if it.get("split") in (split, None)]
        if not items: raise UserError(f"the dataset has no clips in split {split!r}.")
        return frame_images(items, size, frames_per_clip, progress_bar)
    root = Path(source)
    if not root.is_dir(): raise UserError(f"dataset folder {root} does not exist.")
    images = sorted(f for f in root.rglob("*") if f.suffix.lower() in _IMAGE_EXTS and not any(p.startswith(".") for p in f.relative_to(root).parts))
    from sound_video_gen.data.clips import scan_folder
    clips = []
    if (root / "metadata.csv").is_file() or any(d.is_dir() for d in root.iterdir()):
        try: clips, _ = scan_folder(root, require_audio=False)
        except UserError: clips = []
    clips = [c for c in clips if Path(c["path"]).suffix.lower() not in _IMAGE_EXTS]
    if clips:
        if split != "all": clips = [c for c in clips if c.get("split") == split]
        if not clips: raise UserError(f"{root} has no clips in split {split!r}.")
        return frame_images(clips, size, frames_per_clip, progress_bar)
    if not images: raise UserError(f"{root} holds neither videos nor images ({', '.join(_IMAGE_EXTS)}).")
    from sound_video_gen.metrics.distances import read_image
    return torch.stack([_resize_uint8(read_image(f)[None], size)[0] for f in images])


# ----------------------------------------------------------------------------------------------------------
# Images out

def image_grid(img: torch.Tensor, rows: int) -> torch.Tensor:
    "float [N, 3, H, W] in [-1, 1] (or uint8) -> uint8 grid [3, rows·H, (N/rows)·W]."
    if img.dtype != torch.uint8: img = ((img.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    N, C, H, W = img.shape
    cols = math.ceil(N / rows)
    if N < rows * cols: img = torch.cat([img, img.new_zeros(rows * cols - N, C, H, W)])
    return img.cpu().view(rows, cols, C, H, W).permute(2, 0, 3, 1, 4).reshape(C, rows * H, cols * W)


def save_png(img: torch.Tensor, path: str | Path) -> Path:
    "Write a uint8 [3, H, W] image as PNG (atomically)."
    from PIL import Image
    path = Path(path)
    with atomic_path(path) as tmp:
        Image.fromarray(img.permute(1, 2, 0).numpy()).save(tmp, format="PNG")
    return path


# ----------------------------------------------------------------------------------------------------------
# Fréchet detectors

def ssclf_frame_detector(path: str | Path, n_frames: int = 4) -> Callable:
    """The SynthScapes-Bench classifier (`bench train`) as a frame detector: each image is shown as a still clip of
    `n_frames` frames and its penultimate features are returned. The Fréchet distance it gives is named `fd_ssclf`."""
    from sound_video_gen.metrics.bench import load_classifier
    det = load_classifier(path)
    def features(img: torch.Tensor) -> torch.Tensor:
        return det.features(img.unsqueeze(1).expand(-1, n_frames, -1, -1, -1).contiguous())
    features.name = "ssclf"
    return features


def fd_detector_name(detector) -> str:
    "The metric name of a detector: `fd_<detector.name>` (or `fd_custom`)."
    return f"fd_{getattr(detector, 'name', None) or 'custom'}"


@torch.no_grad()
def _features(detector, images_uint8: torch.Tensor, batch: int = 250) -> np.ndarray:
    out = []
    for i in range(0, len(images_uint8), batch):
        f = detector(images_uint8[i:i + batch])
        out.append(f.detach().cpu().double().numpy() if isinstance(f, torch.Tensor) else np.asarray(f, np.float64))
    return np.concatenate(out)


def _frechet(a: np.ndarray, b: np.ndarray) -> float:
    from sound_video_gen.metrics.distances import frechet_distance
    return float(frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)))


@torch.no_grad()
def _generate(G, z: torch.Tensor, device, batch: int = 64) -> torch.Tensor:
    "uint8 images of G for the latents `z` (constant noise: deterministic)."
    out = []
    for i in range(0, len(z), batch):
        img = G(z[i:i + batch].to(device), noise_mode="const")
        out.append(((img.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu())
    return torch.cat(out)


# ----------------------------------------------------------------------------------------------------------
# The loop

def _run_G(G, z, gen, style_mixing_prob: float, rows: Rows, update_emas: bool = False):
    "G's images and ws for latents z (this process's `rows`), with style mixing (cut-off and second latent drawn from `gen`)."
    ws = G.mapping(z, None, update_emas=update_emas)
    if style_mixing_prob > 0:
        cutoff = int(torch.randint(1, ws.shape[1], (), generator=gen))
        if float(torch.rand((), generator=gen)) >= style_mixing_prob: cutoff = ws.shape[1]
        z2 = rows.randn(z.shape[1], gen=gen).to(z.device)
        if cutoff < ws.shape[1]:
            ws = torch.cat([ws[:, :cutoff], G.mapping(z2, None, update_emas=False)[:, cutoff:]], dim=1)
    with noise_rows(rows.start, rows.total):
        return G.synthesis(ws, update_emas=update_emas), ws


def _check_finite(name: str, value: torch.Tensor, step: int, last_ckpt: int, run_dir) -> float:
    v = float(value.detach())
    if not math.isfinite(v):
        raise UserError(f"step {step + 1}: the {name} loss is {v} (training diverged); the run stopped and {run_dir} keeps its "
                        f"last good checkpoint (step {last_ckpt}): lower G_lr/D_lr or raise r1_gamma, then resume.")
    return v


def _average_w_avg(G, env: DistEnv) -> None:
    "Average G's running mean of w over processes (each moved it toward its own rows' mean; the update is linear)."
    if not env.distributed: return
    dist.all_reduce(G.mapping.w_avg)
    G.mapping.w_avg /= env.world_size


def _reduce_grads(params, env: DistEnv) -> None:
    "Average gradients over processes and replace NaN/Inf entries (as NVlabs does)."
    for p in params:
        if p.grad is None: continue
        if env.distributed:
            dist.all_reduce(p.grad)
            p.grad /= env.world_size
        torch.nan_to_num(p.grad, nan=0, posinf=1e5, neginf=-1e5, out=p.grad)


def train_generator(cfg: GeneratorTrainConfig,
                    dataset,                              # clip folder, image folder, AVClipDataset, or uint8 [N, 3, H, W]
                    run_dir: str | Path | None = None,    # default: cfg.run_dir
                    detector: Callable | None = None,     # uint8 [N, 3, H, W] -> features [N, D]; gives fd_<name> in the log
                    resume: bool = True,                  # continue from run_dir/checkpoint.safetensors
                    overwrite: bool = False,              # discard an existing run when not resuming
                    G=None,                               # start from this generator instead of random weights
                    callback: Callable | None = None,     # called as callback(step, record) after every step
                   ) -> dict:
    "Train G, D and G_ema with the StyleGAN2-ADA objective; returns the last log record."
    if run_dir is not None: cfg = cfg.replace(run_dir=str(run_dir))
    env = dist_setup(cfg.device)
    dev = env.device
    local_batch = cfg.batch_size // env.world_size
    if cfg.batch_size % env.world_size: raise UserError(f"batch_size {cfg.batch_size} must be divisible by the {env.world_size} processes.")
    if cfg.mbstd_group_size and local_batch % min(cfg.mbstd_group_size, local_batch):
        raise UserError(f"the per-process batch {local_batch} must be a multiple of mbstd_group_size {cfg.mbstd_group_size}.")
    if cfg.pl_weight > 0 and local_batch % cfg.pl_batch_shrink:
        raise UserError(f"the per-process batch {local_batch} must be a multiple of pl_batch_shrink {cfg.pl_batch_shrink}.")
    rows = Rows(env.rank * local_batch, local_batch, cfg.batch_size)

    # Every global RNG this stage touches starts from the seed (Python's and NumPy's are saved in the checkpoint).
    seed_for_rank(cfg.seed, env.rank)
    # Construct networks (before touching the run folder, so bad configs write nothing).
    gcfg = cfg.generator_config()
    if G is None:
        torch.manual_seed(cfg.seed)
        G = create_generator(gcfg)
    elif G.cfg != gcfg:
        raise UserError("the given G does not match cfg.generator / generator_overrides.")
    arch = type(G).__name__
    if cfg.pl_weight > 0 and arch != "StyleGAN2Generator": raise UserError("path-length regularisation (pl_weight > 0) is for StyleGAN2 only.")
    fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
    G = G.to(dev, memory_format=fmt).train().requires_grad_(False)
    torch.manual_seed(cfg.seed + 1)
    D = StyleGAN2Discriminator(cfg.discriminator_config(G)).to(dev, memory_format=fmt).train().requires_grad_(False)
    G_ema = copy.deepcopy(G).eval()
    images = load_images(dataset, G.img_resolution, cfg.frames_per_clip, cfg.split, progress_bar=cfg.progress and env.is_main)
    n_real = len(images) * (2 if cfg.xflip else 1)
    sampler = StepBatchSampler(n_real, cfg.batch_size, env.rank, env.world_size, cfg.seed)

    # Optimizers with NVlabs' lazy-regularisation adjustment.
    def adam(module, lr, interval):
        r = interval / (interval + 1) if interval else 1.0
        return torch.optim.Adam(module.parameters(), lr=lr * r, betas=tuple(b ** r for b in cfg.betas), eps=1e-8)
    G_reg_interval = cfg.pl_interval if cfg.pl_weight > 0 else None
    D_reg_interval = cfg.r1_interval if cfg.r1_gamma > 0 else None
    G_opt, D_opt = adam(G, cfg.G_lr, G_reg_interval), adam(D, cfg.D_lr, D_reg_interval)
    phases = [("Gmain", G, G_opt, 1)]
    if G_reg_interval: phases.append(("Greg", G, G_opt, G_reg_interval))
    phases.append(("Dmain", D, D_opt, 1))
    if D_reg_interval: phases.append(("Dreg", D, D_opt, D_reg_interval))

    run = RunDir(cfg.run_dir, cfg, env, resume=resume, overwrite=overwrite)
    pl_mean = torch.zeros([], device=dev)
    state = run.resume(modules={"G": G, "D": D, "G_ema": G_ema}, optimizers={"G_opt": G_opt, "D_opt": D_opt})
    if state.extra and "pl_mean" in state.extra: pl_mean = state.extra["pl_mean"].reshape([]).to(dev)
    start = state.step
    if env.is_main:
        (run.path / "samples").mkdir(exist_ok=True)
        cfg.to_json(run.path / "training_options.json")
        info = {"images": len(images), "xflip": cfg.xflip, "resolution": G.img_resolution, "G": arch,
                "G_params": sum(p.numel() for p in G.parameters()), "D_params": sum(p.numel() for p in D.parameters())}
        (run.path / "dataset.json").write_text(json.dumps(info) + "\n")

    def reals(step: int) -> torch.Tensor:
        idx = torch.tensor(sampler.indices(step))
        img = images[idx % len(images)]
        if cfg.xflip: img = torch.where((idx >= len(images)).view(-1, 1, 1, 1), img.flip(-1), img)
        return (img.to(dev).float() / 127.5 - 1).contiguous(memory_format=fmt)

    # Fixed latents for the sample grid and the Fréchet distance; reals for both, once.
    gz = torch.randn([cfg.grid_size ** 2, G.z_dim], generator=torch.Generator().manual_seed(cfg.seed + 7))
    if env.is_main and not (run.path / "samples" / "reals.png").exists():
        pick = torch.randperm(len(images), generator=torch.Generator().manual_seed(cfg.seed))[:cfg.grid_size ** 2]
        save_png(image_grid(images[pick], cfg.grid_size), run.path / "samples" / "reals.png")
    fd_name, fd_real = fd_detector_name(detector), None
    if detector is not None and env.is_main:
        pick = torch.randperm(len(images), generator=torch.Generator().manual_seed(cfg.seed + 3))[:cfg.fd_items]
        fd_real = _features(detector, images[pick])
    fz = torch.randn([cfg.fd_items, G.z_dim], generator=torch.Generator().manual_seed(cfg.seed + 11))
    def evaluate() -> float:
        return _frechet(fd_real, _features(detector, _generate(G_ema, fz, dev)))

    aug_ops = cfg.augment
    def run_D(img, gen):
        return D(diff_augment(img, aug_ops, gen, rows=(rows.start, rows.total)) if aug_ops else img)

    last_ckpt, rec = start, {}
    sums: dict[str, float] = {}   # running sums of this logging window (a window restarts at a resumed checkpoint)
    counts: dict[str, int] = {}
    def note(**values):
        for k, v in values.items(): sums[k] = sums.get(k, 0.0) + v; counts[k] = counts.get(k, 0) + 1
    busy, step_last = 0.0, start   # seconds spent in training steps since the last log record
    cur_nimg = start * cfg.batch_size
    for step in progress(range(start, cfg.max_steps), env, desc="train-generator", enabled=cfg.progress):
        t0 = time.perf_counter()
        real = reals(step)
        for name, module, opt, interval in phases:
            if step % interval: continue
            gen = step_generator(cfg.seed, step, name)
            module.requires_grad_(True)
            opt.zero_grad(set_to_none=True)
            z = rows.randn(G.z_dim, gen=gen).to(dev)
            with _seeded_global(gen, dev):
                if name == "Gmain":
                    img, _ = _run_G(G, z, gen, cfg.style_mixing_prob, rows)
                    loss = F.softplus(-run_D(img, gen)).mean()
                    note(loss_G=_check_finite("G", loss, step, last_ckpt, run.path))
                    loss.backward()
                elif name == "Greg":
                    pl_rows = rows.shrink(cfg.pl_batch_shrink)          # every k-th image of the global batch
                    img, ws = _run_G(G, z[::cfg.pl_batch_shrink], gen, cfg.style_mixing_prob, pl_rows)
                    pl_noise = pl_rows.randn(*img.shape[1:], gen=gen).to(dev) / np.sqrt(img.shape[2] * img.shape[3])
                    pl_grads, = torch.autograd.grad((img * pl_noise).sum(), ws, create_graph=True)
                    pl_lengths = pl_grads.square().sum(2).mean(1).sqrt()
                    batch_mean = pl_lengths.mean().detach()
                    if env.distributed: dist.all_reduce(batch_mean); batch_mean /= env.world_size
                    pl_mean = pl_mean.lerp(batch_mean, cfg.pl_decay)
                    loss = (pl_lengths - pl_mean).square().mean() * cfg.pl_weight
                    note(loss_pl=_check_finite("path-length", loss, step, last_ckpt, run.path), pl_mean=float(pl_mean))
                    (loss * interval).backward()
                elif name == "Dmain":
                    with torch.no_grad(): img, _ = _run_G(G, z, gen, cfg.style_mixing_prob, rows, update_emas=True)
                    fake_logits = run_D(img, gen)
                    real_logits = run_D(real, gen)
                    loss = F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()
                    note(loss_D=_check_finite("D", loss, step, last_ckpt, run.path),
                         D_real=float(real_logits.detach().mean()), D_fake=float(fake_logits.detach().mean()))
                    loss.backward()
                else:  # Dreg
                    x = real.detach().requires_grad_(True)
                    real_logits = run_D(x, gen)
                    r1_grads, = torch.autograd.grad(real_logits.sum(), x, create_graph=True)
                    loss = r1_grads.square().sum([1, 2, 3]).mean() * (cfg.r1_gamma / 2)
                    note(loss_r1=_check_finite("R1", loss, step, last_ckpt, run.path))
                    (loss * interval).backward()
            _reduce_grads(module.parameters(), env)
            opt.step()
            module.requires_grad_(False)
        _average_w_avg(G, env)

        # G_ema, with NVlabs' ramp-up of the half-life.
        ema_nimg = cfg.ema_kimg * 1000
        if cfg.ema_rampup > 0: ema_nimg = min(ema_nimg, cur_nimg * cfg.ema_rampup)
        ema_beta = 0.5 ** (cfg.batch_size / max(ema_nimg, 1e-8))
        with torch.no_grad():
            for p_ema, p in zip(G_ema.parameters(), G.parameters()): p_ema.copy_(p.lerp(p_ema, ema_beta))
            for b_ema, b in zip(G_ema.buffers(), G.buffers()): b_ema.copy_(b)
        cur_nimg += cfg.batch_size
        done = step + 1
        busy += time.perf_counter() - t0

        # Log, evaluate, sample, checkpoint.
        rec = {}
        if done % max(cfg.log_every, 1) == 0 or done == cfg.max_steps:
            if env.distributed and sums:   # the log reports the global batch: average each process's means
                keys = sorted(sums)
                t = torch.tensor([sums[k] for k in keys], dtype=torch.float64, device=dev)
                dist.all_reduce(t)
                sums.update(zip(keys, (t / env.world_size).tolist()))
            rec = dict(kimg=round(cur_nimg / 1000, 3), **{k: round(sums[k] / counts[k], 5) for k in sums},
                       sec_per_step=round(busy / max(done - step_last, 1), 4))
            busy, step_last = 0.0, done
            sums.clear(); counts.clear()
        if detector is not None and env.is_main and ((cfg.eval_every and done % cfg.eval_every == 0) or done == cfg.max_steps):
            rec[fd_name] = round(evaluate(), 4)
        if rec: rec = run.log(done, **rec)
        if env.is_main and cfg.sample_every and (done % cfg.sample_every == 0 or done == cfg.max_steps):
            save_png(image_grid(_generate(G_ema, gz, dev), cfg.grid_size), run.path / "samples" / f"fakes{done:06d}.png")
        if run.due(done, cfg.ckpt_every, cfg.max_steps):
            run.save(done, modules={"G": G, "D": D, "G_ema": G_ema}, optimizers={"G_opt": G_opt, "D_opt": D_opt},
                     extra={"pl_mean": pl_mean.detach().cpu().reshape(1), "cur_nimg": cur_nimg})
            if env.is_main and done < cfg.max_steps:   # the final export comes after the loop
                save_generator(G_ema, run.path / "G_ema.safetensors", meta={"step": done, "kimg": cur_nimg / 1000})
            last_ckpt = done
        if callback is not None: callback(done, rec)
    # The export after the loop: a run killed between its final checkpoint and the export above (or resumed when
    # already complete) still ends with the final G_ema.
    if env.is_main: save_generator(G_ema, run.path / "G_ema.safetensors", meta={"step": cfg.max_steps, "kimg": cur_nimg / 1000})
    dist_teardown(env)
    if not rec and start >= cfg.max_steps: rec = dict((run.read_log() or [{}])[-1]) if env.is_main else {}
    return rec
