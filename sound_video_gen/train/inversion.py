"""Training the image → W+ encoder used to invert real frames into a frozen generator (spec §4.3, §6.3), and the
paper's inversion ablation.

The encoder (`model.inversion.ImageEncoder`, pSp over IR-SE, output w_avg + Δ) is trained on two kinds of images,
mixed in every batch:

- generator samples G(w) (clamped to [-1, 1]), whose latent w is known, so a latent loss is possible;
- real frames (SynthScapes clips, or any folder `train.generator.load_images` reads), uint8 in memory.

Loss terms, each switched on by a positive weight (a term with weight 0 is not computed at all):

| weight | term |
|---|---|
| `w_l2` | pixel MSE between the input and its reconstruction G(E(x)) |
| `w_perceptual` | a perceptual distance between them: LPIPS when its weight files are given (`lpips`), otherwise `ClassifierFeatureDistance` on the SynthScapes-Bench classifier's features (`classifier`) |
| `w_reg` | latent regulariser: mean squared distance of E(x) to w_avg |
| `w_clip` | 1 − cosine of the CLIP image embeddings of input and reconstruction (a project CLIP, `clip`) |
| `w_latent` | MSE between E(G(w)) and w, on generator samples only |

Real frames are flipped left-right at random (`flip`); generator samples are not, so their w stays a valid target.

The paper measures the ablation with LPIPS on LHQ (L2+L_reg 0.648; +LPIPS 0.468; +LPIPS+CLIP 0.432).
`inversion_ablation` runs the same three variants on SynthScapes with the offline metrics this project can compute
without downloaded weights: pixel MSE and the classifier feature distance (and LPIPS when its weights are given).
The offline perceptual term is a feature distance of a network this project trains itself; it is not LPIPS.

Every random draw of a step (which real frames, the z of the samples, flips) comes from a generator seeded by
(seed, step), so a run killed and resumed from its checkpoint ends bit-identical to one that was never interrupted.
Writes to `run_dir`: `config.json`, `log.jsonl`, `checkpoint.safetensors`, `image_encoder.safetensors`.
"""
from __future__ import annotations
import json, math, time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from sound_video_gen.core import Config, UserError, atomic_write_text, seed_everything
from sound_video_gen.model.inversion import (ImageEncoder, ImageEncoderConfig, invert, pixel_mse, save_image_encoder,
                                             synthesize)
from sound_video_gen.train.common import (RunDir, check_hyperparameters, dist_setup, dist_teardown, item_seed, lr_at,
                                          progress)

__all__ = ["InversionTrainConfig", "ClassifierFeatureDistance", "load_feature_distance", "clip_distance",
           "inversion_losses", "train_inverter", "evaluate_inversion", "ABLATION_VARIANTS", "inversion_ablation",
           "InverterResult"]


# ----------------------------------------------------------------------------------------------------------
# Config

@dataclass
class InversionTrainConfig(Config):
    "The image → W+ encoder trained against a frozen generator on its samples and on real frames."
    encoder: ImageEncoderConfig = field(default_factory=ImageEncoderConfig)  # must match G's W+ (num_ws, w_dim)
    generator: str = ""               # frozen G: our .safetensors, an NVlabs .pkl, or a config name (random weights)
    clip: str | None = None           # a project CLIP (save_clip / train-clip file) for w_clip
    classifier: str | None = None     # SynthScapes-Bench classifier.safetensors: the offline perceptual distance
    lpips: str | None = None          # folder (or lin file) with LPIPS weights: then w_perceptual is real LPIPS
    run_dir: str = "runs/inverter"
    max_steps: int = 2000
    batch_size: int = 8
    real_fraction: float = 0.5        # share of each batch taken from real frames (0 without real frames)
    truncation_psi: float = 1.0       # truncation of the generator samples' w
    flip: bool = True                 # random horizontal flips of the inputs
    lr: float = 5e-4                  # Adam
    warmup_steps: int = 50
    decay_steps: int = 0              # cosine decay to 0 at this step (0: constant after warm-up)
    grad_clip: float = 1.0
    w_l2: float = 1.0
    w_perceptual: float = 0.8
    w_reg: float = 0.005
    w_clip: float = 0.5
    w_latent: float = 0.0
    ckpt_every: int = 100
    log_every: int = 10
    seed: int = 0
    device: str = "auto"
    progress: bool = True

    def __post_init__(self):
        check_hyperparameters(self)
        bad = []
        if not 0 <= self.real_fraction <= 1: bad.append(f"real_fraction={self.real_fraction} must lie in [0, 1]")
        if not 0 < self.truncation_psi <= 1: bad.append(f"truncation_psi={self.truncation_psi} must lie in (0, 1]")
        if self.max_steps < 0 or self.batch_size < 1: bad.append("max_steps must be >= 0 and batch_size >= 1")
        if self.w_l2 + self.w_perceptual + self.w_clip + self.w_latent <= 0:
            bad.append("at least one of w_l2, w_perceptual, w_clip, w_latent must be positive")
        if bad: raise UserError(f"invalid InversionTrainConfig: {'; '.join(bad)}.")


# ----------------------------------------------------------------------------------------------------------
# Distances

class ClassifierFeatureDistance(nn.Module):
    """An LPIPS-style distance on the SynthScapes-Bench classifier's three conv stages (not LPIPS: no learned
    weights per channel, and a network this project trains on SynthScapes). Each image is a one-frame clip; each
    stage's features are unit-normalised over channels, squared differences are averaged over positions, and the
    three stages are averaged. Inputs (B, 3, H, W) in [-1, 1]; output (B,)."""
    name = "ssclf-features"

    def __init__(self, model):   # a metrics.bench.SSClassifier
        super().__init__()
        self.net, self.size = model.net, model.cfg.size
        self.taps = [i for i, m in enumerate(self.net) if isinstance(m, nn.ReLU)]
        self.requires_grad_(False).eval()

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        f = (x.float() + 1) / 2
        if tuple(f.shape[-2:]) != (self.size, self.size):
            f = F.interpolate(f, size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=True)
        h = torch.cat([f, torch.zeros_like(f)], 1)[:, :, None]   # (B, 6, 1, s, s): frame, zero frame difference
        out = []
        for i, m in enumerate(self.net):
            h = m(h)
            if i in self.taps: out.append(h)
        return out

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if a.shape != b.shape or a.ndim != 4: raise UserError(f"the feature distance needs two (B, 3, H, W) batches of one shape, got {tuple(a.shape)} and {tuple(b.shape)}.")
        d = 0
        for fa, fb in zip(self.features(a), self.features(b)):
            d = d + (F.normalize(fa, dim=1, eps=1e-10) - F.normalize(fb, dim=1, eps=1e-10)).square().sum(1).flatten(1).mean(1)
        return d / len(self.taps)


def load_feature_distance(classifier: str | Path) -> ClassifierFeatureDistance:
    "The offline perceptual distance from a `bench train` classifier file."
    from sound_video_gen.metrics.bench import load_classifier
    return ClassifierFeatureDistance(load_classifier(classifier).model)


def _load_lpips(spec: str):
    from sound_video_gen.metrics.detectors import load_lpips
    p = Path(spec)
    if p.is_file(): return load_lpips(lin_path=p, backbone_path=p.parent)
    return load_lpips(lin_path=p, backbone_path=p)


def clip_distance(clip) -> Callable:
    "1 − cosine of a CLIP's image embeddings, per pair (B,); images in [-1, 1]."
    def dist(a, b): return 1 - (clip.encode_image(a) * clip.encode_image(b)).sum(-1)
    return dist


def perceptual_distance(cfg: InversionTrainConfig, device="cpu"):
    "The perceptual distance a config names: LPIPS from `cfg.lpips`, else the classifier-feature distance from `cfg.classifier`."
    if cfg.lpips: return _load_lpips(cfg.lpips).to(device)
    if cfg.classifier: return load_feature_distance(cfg.classifier).to(device)
    raise UserError("w_perceptual > 0 needs a perceptual distance: give lpips (a folder with LPIPS weights) or "
                    "classifier (a SynthScapes-Bench classifier.safetensors), or set w_perceptual=0.")


# ----------------------------------------------------------------------------------------------------------
# One step

def inversion_losses(cfg: InversionTrainConfig, enc: ImageEncoder, G, x: torch.Tensor,
                     w_known: torch.Tensor | None = None,   # (n, num_ws, w_dim): latents of the first n inputs (samples)
                     perceptual: Callable | None = None, clip=None) -> dict[str, torch.Tensor]:
    "The weighted loss terms for inputs `x` (B, 3, R, R) in [-1, 1] and their sum under 'loss'; zero-weight terms are skipped."
    w_hat = enc(x)
    rec = G.synthesis(w_hat, noise_mode="const")
    terms = {}
    if cfg.w_l2 > 0: terms["l2"] = pixel_mse(rec, x).mean()
    if cfg.w_perceptual > 0:
        if perceptual is None: raise UserError("w_perceptual > 0 but no perceptual distance was given.")
        terms["perceptual"] = perceptual(rec, x).mean()
    if cfg.w_reg > 0: terms["reg"] = (w_hat - enc.w_avg).square().mean()
    if cfg.w_clip > 0:
        if clip is None: raise UserError("w_clip > 0 needs a CLIP (clip: a save_clip / train-clip file).")
        with torch.no_grad(): target = clip.encode_image(x)
        terms["clip"] = (1 - (clip.encode_image(rec) * target).sum(-1)).mean()
    if cfg.w_latent > 0 and w_known is not None and len(w_known):
        terms["latent"] = (w_hat[:len(w_known)] - w_known).square().mean()
    weights = {"l2": cfg.w_l2, "perceptual": cfg.w_perceptual, "reg": cfg.w_reg, "clip": cfg.w_clip, "latent": cfg.w_latent}
    terms["loss"] = sum(weights[k] * v for k, v in terms.items())
    return terms


def _batch(cfg: InversionTrainConfig, G, real: torch.Tensor | None, step: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    "Inputs of one step, a function of (seed, step): generator samples first (with their w), then real frames."
    gen = torch.Generator().manual_seed(item_seed(cfg.seed, step, 0))
    n_real = round(cfg.batch_size * cfg.real_fraction) if real is not None and len(real) else 0
    n_fake = cfg.batch_size - n_real
    z = torch.randn(n_fake, G.z_dim, generator=gen)
    idx = torch.randint(len(real), (n_real,), generator=gen) if n_real else None
    flips = torch.rand(cfg.batch_size, generator=gen) < (0.5 if cfg.flip else 0.0)
    flips[:n_fake] = False   # samples keep their orientation, so their w stays a valid target
    with torch.no_grad():
        c = torch.zeros(n_fake, G.c_dim, device=device) if getattr(G, "c_dim", 0) else None
        w = G.mapping(z.to(device), c, truncation_psi=cfg.truncation_psi) if n_fake else torch.zeros(0, G.num_ws, G.w_dim, device=device)
        parts = [G.synthesis(w, noise_mode="const").clamp(-1, 1)] if n_fake else []
        if n_real: parts.append(real[idx].to(device).float() / 127.5 - 1)
        x = torch.cat(parts)
        x = torch.where(flips.to(device)[:, None, None, None], x.flip(-1), x)
    return x, w


# ----------------------------------------------------------------------------------------------------------
# Training

@dataclass
class InverterResult:
    "What `train_inverter` returns: the trained encoder (eval mode), the last log record, and the run folder."
    encoder: ImageEncoder
    record: dict
    run_dir: Path


def _check_fit(cfg: InversionTrainConfig, G) -> None:
    e = cfg.encoder
    if (e.num_ws, e.w_dim) != (G.num_ws, G.w_dim):
        raise UserError(f"the encoder config is for a {e.num_ws} x {e.w_dim} W+, the generator's is {G.num_ws} x {G.w_dim}; "
                        f"set encoder.num_ws={G.num_ws} and encoder.w_dim={G.w_dim}.")


def train_inverter(cfg: InversionTrainConfig,
                   G=None,                           # the frozen generator (default: load cfg.generator)
                   real: torch.Tensor | None = None, # real frames, uint8 (N, 3, R, R) at G's resolution
                   resume: bool = True,              # continue from run_dir/checkpoint.safetensors if there is one
                   overwrite: bool = False,          # with resume=False: discard an existing run in run_dir
                   perceptual: Callable | None = None,  # distance for w_perceptual (default: from cfg.lpips / cfg.classifier)
                   clip=None,                        # CLIP for w_clip (default: load cfg.clip)
                   init: ImageEncoder | None = None, # start from these weights (fine-tuning) instead of a fresh encoder
                   on_step: Callable | None = None,  # on_step(step, record) after every step
                  ) -> InverterResult:
    "Train the image encoder; write run_dir/image_encoder.safetensors; return it."
    env = dist_setup(cfg.device)
    try:
        if env.distributed: raise UserError("train-inverter runs in one process; start it without torchrun.")
        dev = env.device
        if G is None:
            from sound_video_gen.generators.factory import load_generator
            if not cfg.generator: raise UserError("set generator (the frozen G the encoder inverts into).")
            G = load_generator(cfg.generator)
        G = G.to(dev).eval().requires_grad_(False)
        _check_fit(cfg, G)
        if real is not None:
            if real.dtype != torch.uint8 or real.ndim != 4 or tuple(real.shape[1:]) != (3, G.img_resolution, G.img_resolution):
                raise UserError(f"real frames must be uint8 (N, 3, {G.img_resolution}, {G.img_resolution}), got {real.dtype} {tuple(real.shape)}.")
        if cfg.w_perceptual > 0 and perceptual is None: perceptual = perceptual_distance(cfg, dev)
        if cfg.w_clip > 0 and clip is None:
            if not cfg.clip: raise UserError("w_clip > 0 needs a CLIP: set clip (a save_clip / train-clip file) or w_clip=0.")
            from sound_video_gen.multimodal.clip import load_clip
            clip = load_clip(cfg.clip, device=dev)
        if clip is not None: clip.freeze()
        run = RunDir(cfg.run_dir, cfg, env, resume=resume, overwrite=overwrite)
        seed_everything(cfg.seed)
        enc = ImageEncoder(cfg.encoder)
        if init is not None: enc.load_state_dict(init.state_dict())
        else: enc.set_w_avg(G)
        enc = enc.to(dev).train()
        opt = torch.optim.Adam(enc.parameters(), lr=cfg.lr, betas=(0.9, 0.999))
        st = run.resume({"encoder": enc}, {"opt": opt})
        rec, t0 = {}, time.time()
        for step in progress(range(st.step, cfg.max_steps), env, "train-inverter", cfg.progress):
            x, w = _batch(cfg, G, real, step, dev)
            lr = lr_at(step, cfg.lr, cfg.warmup_steps, cfg.decay_steps)
            for g in opt.param_groups: g["lr"] = lr
            terms = inversion_losses(cfg, enc, G, x, w, perceptual, clip)
            run.check_finite(step + 1, {k: v.detach() for k, v in terms.items()})
            opt.zero_grad(set_to_none=True)
            terms["loss"].backward()
            gn = float(torch.nn.utils.clip_grad_norm_(enc.parameters(), cfg.grad_clip if cfg.grad_clip > 0 else float("inf")))
            opt.step()
            done = step + 1
            rec = {**{k: float(v.detach()) for k, v in terms.items()}, "lr": lr, "grad_norm": gn}
            if run.due(done, cfg.log_every, cfg.max_steps): rec = run.log(done, **rec)
            if run.due(done, cfg.ckpt_every, cfg.max_steps): run.save(done, {"encoder": enc}, {"opt": opt})
            if on_step is not None: on_step(done, rec)
        enc.eval()
        save_image_encoder(run.path / "image_encoder.safetensors", enc,
                           meta={"step": cfg.max_steps, "generator": Path(cfg.generator).name if cfg.generator else None,
                                 "losses": {k: getattr(cfg, k) for k in ("w_l2", "w_perceptual", "w_reg", "w_clip", "w_latent")},
                                 "perceptual": "lpips" if cfg.lpips else ("ssclf-features" if cfg.classifier else None)})
        return InverterResult(enc, rec, run.path)
    finally:
        dist_teardown(env)


# ----------------------------------------------------------------------------------------------------------
# Evaluation and the ablation

@torch.no_grad()
def _render(G, ws): return synthesize(G, ws).clamp(-1, 1)


def evaluate_inversion(G, images: torch.Tensor,           # float (N, 3, R, R) in [-1, 1], or uint8
                       encoder: ImageEncoder | None = None,
                       methods: tuple[str, ...] = ("encoder",),
                       metrics: dict[str, Callable] | None = None,  # name -> distance (B,); default {'mse': pixel_mse}
                       steps: int = 100,                  # projector steps
                       projector_distance: Callable | None = None,  # the projector's objective (default pixel MSE)
                       batch: int = 16, seed: int = 0) -> dict:
    "Mean reconstruction distances per method: {method: {metric: value, 'seconds_per_image': s}}."
    if images.dtype == torch.uint8: images = images.float() / 127.5 - 1
    metrics = metrics or {"mse": pixel_mse}
    dev = next(G.parameters()).device
    out = {}
    for m in methods:
        sums, t0 = {k: 0.0 for k in metrics}, time.time()
        for i in range(0, len(images), batch):
            x = images[i:i + batch].to(dev)
            ws = invert(G, x, m, encoder=encoder, steps=steps, distance=projector_distance, seed=seed)
            with torch.no_grad():
                rec = _render(G, ws)
                for k, d in metrics.items(): sums[k] += float(d(rec, x).sum())
        out[m] = {**{k: v / len(images) for k, v in sums.items()}, "seconds_per_image": (time.time() - t0) / len(images)}
    return out


ABLATION_VARIANTS = {                        # the paper's three rows (§6.3), with our offline perceptual term
    "l2+reg": {"w_perceptual": 0.0, "w_clip": 0.0},
    "l2+reg+perceptual": {"w_clip": 0.0},
    "l2+reg+perceptual+clip": {},
}


def inversion_ablation(cfg: InversionTrainConfig,      # the full-loss config; each variant switches terms off
                       test_images: torch.Tensor,      # held-out frames, uint8 (N, 3, R, R)
                       G=None, real: torch.Tensor | None = None,
                       perceptual: Callable | None = None, clip=None,
                       lpips: Callable | None = None,  # real LPIPS for the measurement (only when its weights exist)
                       run_root: str | Path | None = None,   # variant run folders (default: cfg.run_dir/<variant>)
                       variants: dict | None = None, resume: bool = True) -> dict:
    """Train the three encoder variants (L2+reg, +perceptual, +perceptual+CLIP) for the same steps and seed, and
    measure their reconstructions of `test_images`: pixel MSE, the offline feature distance, LPIPS when given."""
    from sound_video_gen.generators.factory import load_generator
    G = (G if G is not None else load_generator(cfg.generator)).eval().requires_grad_(False)
    dev = next(G.parameters()).device
    if perceptual is None and cfg.w_perceptual > 0: perceptual = perceptual_distance(cfg, dev)
    if clip is None and cfg.w_clip > 0 and cfg.clip:
        from sound_video_gen.multimodal.clip import load_clip
        clip = load_clip(cfg.clip, device=dev)
    metrics = {"mse": pixel_mse}
    if perceptual is not None: metrics[getattr(perceptual, "name", "perceptual")] = perceptual
    if lpips is not None: metrics["lpips"] = lpips
    if clip is not None: metrics["clip_distance"] = clip_distance(clip)
    root = Path(run_root or cfg.run_dir)
    rows = {}
    for name, over in (variants or ABLATION_VARIANTS).items():
        vcfg = cfg.replace(run_dir=str(root / name), **over)
        t0 = time.time()
        res = train_inverter(vcfg, G, real, resume=resume, overwrite=not resume, perceptual=perceptual, clip=clip)
        ev = evaluate_inversion(G, test_images, res.encoder, ("encoder",), metrics)["encoder"]
        rows[name] = {"losses": {k: getattr(vcfg, k) for k in ("w_l2", "w_perceptual", "w_reg", "w_clip", "w_latent")},
                      "train_seconds": round(time.time() - t0, 1), **{k: round(v, 5) for k, v in ev.items()}}
    return {"variants": rows, "steps": cfg.max_steps, "batch_size": cfg.batch_size, "seed": cfg.seed,
            "n_test": int(len(test_images)), "metrics": list(metrics),
            "perceptual_train": "lpips" if cfg.lpips else ("ssclf-features" if cfg.classifier else None)}
