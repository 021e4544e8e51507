"""Stage 3: train the sound-guided video model (E_a + recurrent block) against image and video discriminators.

The frozen parts are the generator G, the CLIP space and the audio encoder F_a. Each step (spec §2.7, §3):

1. Render a video for every clip of the batch: Δw_t = E_a(window_t), w_1..w_T from the recurrent block starting at
   w_0, frames = G.synthesis(w_t).
2. Discriminator step on real clips vs the (detached) generated ones: image D on every frame, video D on the clips,
   non-saturating (default) or LSGAN loss, optional R1 on real samples.
3. Model step on the weighted sum of: adversarial terms through both (frozen for this step) discriminators;
   L_CLIP^(a<->v) = 1 - cos(CLIP_img(frame_t), F_a(window_t)); L_CLIP^(a<->t) = 1 - cos(CLIP_img(frame_t),
   CLIP_text(class text)); the latent regulariser λ_b·‖w_t - w̄‖² (w̄ = G's w_avg or a running mean of the
   trajectory); optional temporal smoothness.
4. Editing readiness (`w_edit` > 0): the paper edits an image by ŵ = w + E_a(x_a). For a random truncated w per clip
   and the clip's middle window x, G(w + E_a(x)) must show the sound: the same two CLIP terms on that image, scaled
   by `w_edit`, plus `w_edit_keep`·‖E_a(x)‖² (squared norm per W+ layer, averaged) so the edit stays near w and keeps
   its content. Without it Δw only ever feeds the GRUs, and nothing makes it a displacement that means anything on
   its own.

Runs single-process or under `torchrun` (gradients are averaged over processes by one all-reduce,
`common.average_gradients`, the convention of every stage; BatchNorm is synchronised on GPUs); everything random in a
step (initial latents, rollout noise) is drawn from generators seeded by (seed, step, the clip's position in the
global batch), so one process and N processes compute the same thing, and a resumed run continues exactly.
"""
from __future__ import annotations
import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from sound_video_gen.core import Config, UserError, seed_everything
from sound_video_gen.model.discriminators import DiscriminatorConfig, ImageDiscriminator, VideoDiscriminator
from sound_video_gen.model.anchored import window_loudness
from sound_video_gen.model.encoder import layer_groups
from sound_video_gen.model.losses import (RunningMean, clip_audio_frame_loss, clip_text_frame_loss, d_loss, g_loss,
                                    latent_reg_loss, loudness_sync_loss, motion_size_loss, r1_penalty, teacher_loss,
                                    teacher_motion_loss, teacher_speed_loss, temporal_smoothness)
from sound_video_gen.model.recurrent import initial_latent
from sound_video_gen.generators.stylegan3 import input_affine_constant, is_stylegan3
from sound_video_gen.model.ssvg import SSVG, SSVGConfig, check_generator, render, save_ssvg
from sound_video_gen.train.common import (RunDir, all_reduce_mean, autocast, dist_setup, dist_teardown,
                                          progress, seed_for_rank, step_batches, item_generators, check_hyperparameters,
                                          average_gradients, make_scaler, same_start, sync_batchnorm, unwrap)
from sound_video_gen.train.clip import batch_texts, collate

__all__ = ["SSVGTrainConfig", "train_ssvg", "Frozen", "load_frozen", "model_losses", "discriminator_loss", "edit_losses"]


@dataclass
class SSVGTrainConfig(Config):
    "Stage 3 (`train_ssvg`): what to train, with which frozen parts, and how the losses are weighted."
    model: SSVGConfig = field(default_factory=SSVGConfig)  # E_a + recurrent block (W+ shape is taken from G)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)  # resolution is taken from G
    generator: str = "stylegan3-t-paper"  # a generator file (.pkl or .safetensors) or a named config (random: tests only)
    input_affine: bool = True             # StyleGAN3: freeze the Fourier-feature input at w_avg, as inference does (spec §2.4)
    clip: str = "ViT-B-32"                # frozen CLIP: open_clip architecture or a train-clip .safetensors file
    clip_pretrained: str | None = "openai"
    audio_encoder: str | None = None      # frozen F_a (.safetensors from train-audio-clip); needed when w_clip_audio > 0
    run_dir: str = "runs/ssvg"
    max_steps: int = 20000
    batch_size: int = 4                   # global batch of clips (split over torchrun processes)
    lr_encoder: float = 5e-4              # AdamW learning rates (the released code's)
    lr_recurrent: float = 1e-4
    lr_discriminator: float = 1e-4
    betas: tuple = (0.5, 0.999)
    adversarial: str = "nonsaturating"    # or 'lsgan'
    w_adv_image: float = 1.0              # weight of the image discriminator term
    w_adv_video: float = 1.0              # weight of the video discriminator term
    r1_gamma: float = 0.0                 # R1 weight on the discriminators (0: off)
    w_clip_audio: float = 1.0             # L_CLIP^(a<->v)
    w_clip_text: float = 1.0              # L_CLIP^(a<->t)
    w_reg: float = 1.0                    # λ_b of the latent regulariser
    reg_target: str = "w_avg"             # 'w_avg' or 'running_mean'
    w_smooth: float = 0.0                 # temporal smoothness of the trajectory
    w_edit: float = 0.0                   # CLIP terms on G(w + E_a(x)) for a random w (editing readiness; 0: off)
    w_edit_keep: float = 0.0              # ‖E_a(x)‖² per W+ layer, averaged: keeps an edit near w
    w_teacher: float = 0.0                # per-group ‖w_t − w*_t‖² against the clip's inverted frames (items need 'teacher')
    w_teacher_motion: float = 0.0         # ‖(w_t − w_{t−1}) − (w*_t − w*_{t−1})‖²: the teacher's steps
    w_teacher_speed: float = 0.0          # per group, the speed ‖w_t − w_{t−1}‖ against the teacher's, frame by frame
    w_motion_size: float = 0.0            # per group, the clip's mean speed against the teacher's (the size of the motion)
    motion_size_frames: int = 1           # ... of paths averaged over this many frames first (>1: jitter does not count)
    w_sync: float = 0.0                   # 1 − corr_t(‖w_t − w_{t−1}‖, loudness of window t)
    sync_groups: bool = False             # the sync term per layer group (coarse, mid, fine each follow the loudness)
    sync_span: int = 0                    # the sync correlation over consecutive spans of this many frames, averaged, in
                                          # windows of two spans or more (0: over the whole window); 16 asks each second
                                          # of a long window to follow its own loudness, as the benchmark's segments do
    render_every: int = 1                 # render G (adversarial, CLIP and edit terms) every N steps; 0: never
    render_rollout: bool = True           # a render step also renders the rollout's frames (False: it serves the edit terms only)
    teacher: str | None = None            # image encoder that builds the teacher cache (CLI: the dataset becomes TeacherClips)
    p_first: float = 0.25                 # with a teacher: probability that an item's window starts at frame 0
    lambda_enc: float = 1.0               # λ_enc: scales the CLIP terms and the regulariser together
    text_source: str = "class"            # 'class' (class_template of the class name) or 'caption'
    class_template: str = "{}"
    grad_clip: float = 0.0                # clip the model's gradient norm (0: off)
    ckpt_every: int = 500
    log_every: int = 10
    train_frames: int = 0                 # frames per clip that get gradients: a window after a no-grad rollout of a random
                                          # prefix of the clip (truncated BPTT, so long videos are trained on); 0: whole clip
    p_fresh: float = 0.0                  # with train_frames: probability that a step's window starts at frame 0 (a fresh
                                          # rollout, as generate and the benchmark's segments begin); else uniform over the clip
    init_from: str | None = None          # warm start a new run from a stage-3 run's checkpoint.safetensors (E_a, GRUs, D)
                                          # or an ssvg.safetensors (E_a, GRUs)
    sample_every: int = 500               # write run_dir/samples/step-N.mp4 (generated | real) every N steps (0: off)
    seed: int = 0
    num_workers: int = 0
    channels_last: bool = True            # G and the discriminators in NHWC (faster CPU convolutions; equal up to rounding)
    fused_adam: bool = True               # AdamW's fused kernel (one pass over each parameter; equal up to rounding)
    device: str = "auto"
    amp: bool = True                      # mixed precision on CUDA (bf16, or fp16 + GradScaler) for E_a, the GRUs, D and CLIP; G stays fp32
    progress: bool = True

    def __post_init__(self):
        check_hyperparameters(self)
        bad = []
        if self.max_steps < 0: bad.append(f"max_steps={self.max_steps}")
        if self.batch_size < 1: bad.append(f"batch_size={self.batch_size}")
        if self.train_frames == 1 or self.train_frames < 0: bad.append(f"train_frames={self.train_frames} (0, or at least 2)")
        if self.render_every < 0: bad.append(f"render_every={self.render_every}")
        if self.motion_size_frames < 1: bad.append(f"motion_size_frames={self.motion_size_frames}")
        if self.sync_span in (1, 2) or self.sync_span < 0: bad.append(f"sync_span={self.sync_span} (0, or at least 3)")
        if not 0 <= self.p_first <= 1: bad.append(f"p_first={self.p_first}")
        if not 0 <= self.p_fresh <= 1: bad.append(f"p_fresh={self.p_fresh}")
        if min(self.lr_encoder, self.lr_recurrent, self.lr_discriminator) <= 0: bad.append("learning rates must be > 0")
        if self.adversarial not in ("nonsaturating", "lsgan"): bad.append(f"adversarial={self.adversarial!r}")
        if self.reg_target not in ("w_avg", "running_mean"): bad.append(f"reg_target={self.reg_target!r}")
        if self.text_source not in ("class", "caption"): bad.append(f"text_source={self.text_source!r}")
        weights = (self.w_adv_image, self.w_adv_video, self.r1_gamma, self.w_clip_audio, self.w_clip_text, self.w_reg,
                   self.w_smooth, self.lambda_enc, self.w_edit, self.w_edit_keep, *self.teacher_weights, self.w_sync)
        if min(weights) < 0: bad.append("loss weights must be >= 0")
        if "{}" not in self.class_template: bad.append("class_template needs one '{}'")
        if bad: raise UserError(f"invalid SSVGTrainConfig: {', '.join(bad)}.")

    @property
    def teacher_weights(self) -> tuple[float, ...]:
        "The weights of the terms that read the teacher's trajectory."
        return (self.w_teacher, self.w_teacher_motion, self.w_teacher_speed, self.w_motion_size)


# ----------------------------------------------------------------------------------------------------------
# The frozen parts

@dataclass
class Frozen:
    "The frozen networks of stage 3: the generator, the CLIP space and (optionally) the audio encoder F_a."
    G: nn.Module
    clip: nn.Module | None
    audio_encoder: nn.Module | None


def _freeze(m: nn.Module | None):
    if m is not None: m.eval().requires_grad_(False)
    return m


def load_frozen(cfg: SSVGTrainConfig, device, G=None, clip=None, audio_encoder=None) -> Frozen:
    "Load (or take) G, CLIP and F_a per the config; check they fit together."
    if G is None:
        from sound_video_gen.generators.factory import load_generator
        G = load_generator(cfg.generator)
    if cfg.input_affine and is_stylegan3(G): G = input_affine_constant(G)   # train on the generator `SoundToVideo` renders with
    needs_clip = (cfg.lambda_enc > 0 or cfg.w_edit > 0) and (cfg.w_clip_audio > 0 or cfg.w_clip_text > 0)
    if clip is None and needs_clip:
        from sound_video_gen.multimodal.clip import load_clip
        pre = None if str(cfg.clip).endswith(".safetensors") else cfg.clip_pretrained
        clip = load_clip(cfg.clip, pre, device=device)
    if audio_encoder is None and (cfg.lambda_enc > 0 or cfg.w_edit > 0) and cfg.w_clip_audio > 0:
        if not cfg.audio_encoder:
            raise UserError("w_clip_audio > 0 needs a trained audio encoder F_a: set audio_encoder to the "
                            "audio_encoder.safetensors that train-audio-clip wrote (or set w_clip_audio to 0).")
        from sound_video_gen.multimodal.audio_encoder import load_audio_encoder
        audio_encoder = load_audio_encoder(cfg.audio_encoder, device=device)
    if clip is not None and audio_encoder is not None and audio_encoder.cfg.embed_dim != clip.embed_dim:
        raise UserError(f"F_a embeds into {audio_encoder.cfg.embed_dim} dimensions but the CLIP into {clip.embed_dim}.")
    fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
    return Frozen(_freeze(G.to(device, memory_format=fmt)), _freeze(clip.to(device)) if clip is not None else None,
                  _freeze(audio_encoder.to(device)) if audio_encoder is not None else None)


# ----------------------------------------------------------------------------------------------------------
# One step's losses (pure functions of the batch and the draws; the tests call them directly)

def _draws(model: SSVG, G, B: int, T: int, gens: list[torch.Generator], device):
    "Per-clip w_0 and rollout noise from the clip's own generator."
    rec = model.recurrent
    noise = torch.stack([rec.draw_noise(1, T, g)[0] for g in gens]).to(device) if rec.cfg.noise_std > 0 else None
    if model.cfg.w0 in ("w_avg", "sound"):
        w0 = initial_latent(G, B, "w_avg").to(device)
    else:
        z = torch.stack([torch.randn(G.z_dim, generator=g) for g in gens]).to(device)
        with torch.no_grad(): w0 = G.mapping(z, None, truncation_psi=model.cfg.psi)
    return w0, noise


def generate(model: nn.Module, G, windows: torch.Tensor, w0: torch.Tensor, noise, sound: str, amp=None, prefix: int = 0,
             render_frames: bool = True):
    """Trajectory, frames and anchors for a batch: (ws (B, T', num_ws, w_dim), frames (B, T', 3, H, W) or None, anchors
    (the anchored path's a_t, like ws) or None). With `prefix` > 0 the first `prefix` frames are rolled out without
    gradients (nor rendering) and only the remaining T' = T - prefix are returned, continuing that rollout's state:
    truncated backpropagation through time. `render_frames=False` skips G (steps whose terms live in W+). Mixed
    precision (`amp`, an autocast context) covers E_a and the GRUs only: the frozen StyleGAN renders in float32."""
    head = lambda x: None if x is None else x[:, :prefix]
    tail = lambda x: None if x is None else x[:, prefix:]
    with amp or contextlib.nullcontext():
        state = None
        if prefix > 0:
            with torch.no_grad():
                _, state = model(head(windows), w0, noise=head(noise), sound=sound, return_state=True)
        ws, state = model(tail(windows), w0, noise=tail(noise), sound=sound, state=state, t0=prefix, return_state=True)
    ws = ws.float()
    anchors = state["anchor"].float() if "anchor" in state else None
    frames = render(G, ws, chunk=max(1, ws.shape[0] * ws.shape[1])) if render_frames else None
    return ws, frames, anchors


def _to_d_res(x: torch.Tensor, res: int) -> torch.Tensor:
    "Frames (N, 3, H, W) resized to the discriminator's resolution if needed."
    return x if x.shape[-1] == res and x.shape[-2] == res else F.interpolate(x, size=(res, res), mode="area")


def discriminator_loss(D_img, D_vid, real: torch.Tensor, fake: torch.Tensor, cfg: SSVGTrainConfig) -> dict:
    "D-side terms for clips real/fake (B, T, 3, H, W); fake must be detached."
    B, T = real.shape[:2]
    res = D_img.cfg.resolution
    real_f = _to_d_res(real.flatten(0, 1), res)
    fake_f = _to_d_res(fake.flatten(0, 1), res)
    terms = {}
    r1 = cfg.r1_gamma > 0
    if cfg.w_adv_image > 0:
        x = real_f.detach().requires_grad_(r1)
        lr = D_img(x)
        terms["d_image"] = cfg.w_adv_image * d_loss(lr, D_img(fake_f), cfg.adversarial)
        if r1: terms["r1_image"] = cfg.r1_gamma * r1_penalty(x, lr)
    if cfg.w_adv_video > 0:
        v = real_f.view(B, T, *real_f.shape[1:]).detach().requires_grad_(r1)
        lv = D_vid(v)
        terms["d_video"] = cfg.w_adv_video * d_loss(lv, D_vid(fake_f.view(B, T, *fake_f.shape[1:])), cfg.adversarial)
        if r1: terms["r1_video"] = cfg.r1_gamma * r1_penalty(v, lv)
    return terms


def sync_spans(x: torch.Tensor, span: int) -> torch.Tensor:
    """Cut each clip of x (B, T, ...) into its T // span consecutive spans of `span` frames, as clips of their own
    (B · T // span, span, ...); the frames after the last whole span are left out."""
    n = x.shape[1] // span
    return x[:, :n * span].reshape(x.shape[0] * n, span, *x.shape[2:])


def model_losses(ws: torch.Tensor, frames: torch.Tensor | None, windows: torch.Tensor, frozen: Frozen, D_img, D_vid,
                 text_emb: torch.Tensor | None, w_bar: torch.Tensor, cfg: SSVGTrainConfig,
                 teacher: torch.Tensor | None = None, anchors: torch.Tensor | None = None) -> dict:
    """Model-side terms (each already weighted) for a generated batch: trajectory ws, frames (None: a step without
    rendering, so only the terms in W+), the windows behind them, the teacher's trajectory when there is one, and the
    anchored path's anchors a_t: the sync term then moves the residual only (its gradient does not reach the anchor)."""
    terms = {}
    if frames is not None:
        B, T = frames.shape[:2]
        flat = frames.flatten(0, 1)
        if cfg.w_adv_image > 0 or cfg.w_adv_video > 0:
            res = D_img.cfg.resolution
            f = _to_d_res(flat, res)
            if cfg.w_adv_image > 0: terms["g_image"] = cfg.w_adv_image * g_loss(D_img(f), cfg.adversarial)
            if cfg.w_adv_video > 0: terms["g_video"] = cfg.w_adv_video * g_loss(D_vid(f.view(B, T, *f.shape[1:])), cfg.adversarial)
        enc = cfg.lambda_enc
        if enc > 0 and (cfg.w_clip_audio > 0 or cfg.w_clip_text > 0):
            img = frozen.clip.encode_image(flat)
            if cfg.w_clip_audio > 0:
                with torch.no_grad(): aud = frozen.audio_encoder(windows.flatten(0, 1))
                terms["clip_audio"] = enc * cfg.w_clip_audio * clip_audio_frame_loss(img, aud)
            if cfg.w_clip_text > 0 and text_emb is not None:
                terms["clip_text"] = enc * cfg.w_clip_text * clip_text_frame_loss(img, text_emb.repeat_interleave(T, 0))
    if cfg.lambda_enc > 0 and cfg.w_reg > 0: terms["reg"] = cfg.lambda_enc * cfg.w_reg * latent_reg_loss(ws, w_bar)
    if cfg.w_smooth > 0: terms["smooth"] = cfg.w_smooth * temporal_smoothness(ws)
    groups = layer_groups(ws.shape[2], cfg.model.group_bounds)
    if teacher is not None and cfg.w_teacher > 0:
        per_group = teacher_loss(ws, teacher, groups)
        for g, v in per_group.items(): terms[f"teacher_{g}"] = cfg.w_teacher * v / len(per_group)
    if teacher is not None and cfg.w_teacher_motion > 0: terms["teacher_motion"] = cfg.w_teacher_motion * teacher_motion_loss(ws, teacher)
    if teacher is not None and cfg.w_teacher_speed > 0:
        terms["teacher_speed"] = cfg.w_teacher_speed * teacher_speed_loss(ws, teacher, groups)
    if teacher is not None and cfg.w_motion_size > 0:
        terms["motion_size"] = cfg.w_motion_size * motion_size_loss(ws, teacher, groups, cfg.motion_size_frames)
    if cfg.w_sync > 0:
        moving = ws if anchors is None else anchors.detach() + (ws - anchors)   # same values; the anchor gets no gradient
        loud = window_loudness(windows, cfg.model.anchored.loudness if cfg.model.path == "anchored" else "window")
        if cfg.sync_span and moving.shape[1] >= 2 * cfg.sync_span:
            moving, loud = sync_spans(moving, cfg.sync_span), sync_spans(loud, cfg.sync_span)
        terms["sync"] = cfg.w_sync * loudness_sync_loss(moving, loud, groups if cfg.sync_groups else None)
    return terms


def edit_losses(model: SSVG, frozen: Frozen, windows: torch.Tensor, w: torch.Tensor, text_emb: torch.Tensor | None,
                cfg: SSVGTrainConfig, amp=None) -> dict:
    """Editing-readiness terms (each already weighted): ŵ = w + E_a(x) for latents w (B, num_ws, w_dim) and each clip's
    middle window x must show the sound (CLIP audio and text terms on G(ŵ)) and stay near w (‖E_a(x)‖²)."""
    x = windows[:, windows.shape[1] // 2]
    with amp or contextlib.nullcontext(): dw = model.encoder(x)
    dw = dw.float()
    terms = {}
    if cfg.w_edit > 0 and (cfg.w_clip_audio > 0 or (cfg.w_clip_text > 0 and text_emb is not None)):
        img = render(frozen.G, (w + dw)[:, None])[:, 0]
        emb = frozen.clip.encode_image(img)
        if cfg.w_clip_audio > 0:
            with torch.no_grad(): aud = frozen.audio_encoder(x)
            terms["edit_audio"] = cfg.w_edit * cfg.w_clip_audio * clip_audio_frame_loss(emb, aud)
        if cfg.w_clip_text > 0 and text_emb is not None:
            terms["edit_text"] = cfg.w_edit * cfg.w_clip_text * clip_text_frame_loss(emb, text_emb)
    if cfg.w_edit_keep > 0: terms["edit_keep"] = cfg.w_edit_keep * dw.pow(2).sum(-1).mean()
    return terms


# ----------------------------------------------------------------------------------------------------------
# The loop

def train_ssvg(cfg: SSVGTrainConfig,
               dataset,                          # items with 'frames' (T, 3, H, W) in [-1, 1], 'audio' (T, 1, n_mels, w), 'class'/'caption'
               G: nn.Module | None = None,       # an already-loaded generator (default: cfg.generator)
               clip: nn.Module | None = None,    # an already-loaded CLIP space (default: cfg.clip)
               audio_encoder: nn.Module | None = None,  # an already-loaded F_a (default: cfg.audio_encoder)
               resume: bool = True,              # continue from run_dir/checkpoint.safetensors if there is one
               overwrite: bool = False,          # with resume=False: discard an existing run in run_dir
               on_step: Callable | None = None,  # on_step(step, record) after every step
              ) -> dict:
    "Train E_a and the recurrent block; write run_dir/ssvg.safetensors; return the last log record."
    env = dist_setup(cfg.device)
    try:
        frozen = load_frozen(cfg, env.device, G, clip, audio_encoder)
        G = frozen.G
        mcfg = cfg.model.for_generator(G)
        dcfg = cfg.discriminator.replace(resolution=G.img_resolution, img_channels=G.img_channels)
        run_cfg = cfg.replace(model=mcfg, discriminator=dcfg)
        run = RunDir(cfg.run_dir, run_cfg, env, resume=resume, overwrite=overwrite)
        first = dataset[0]
        for k in ("frames", "audio"):
            if k not in first: raise UserError(f"the dataset's items have no '{k}'; stage 3 needs clips with frames and audio windows.")
        T = first["frames"].shape[0]
        L = cfg.train_frames or T                        # frames per step that get gradients
        if L > T: raise UserError(f"train_frames={L} is longer than the dataset's clips ({T} frames).")

        seed_everything(cfg.seed)                        # identical initial weights on every rank
        model = sync_batchnorm(SSVG(mcfg).to(env.device), env)
        check_generator(model, G)
        fmt2, fmt3 = (torch.channels_last, torch.channels_last_3d) if cfg.channels_last else (torch.contiguous_format,) * 2
        D_img = ImageDiscriminator(dcfg.replace(num_frames=L)).to(env.device, memory_format=fmt2)
        D_vid = VideoDiscriminator(dcfg.replace(num_frames=L)).to(env.device, memory_format=fmt3)
        w_mean = RunningMean((mcfg.num_ws, mcfg.w_dim)).to(env.device)
        same_start([model, D_img, D_vid], env)
        opt_g = torch.optim.AdamW([{"params": model.encoder.parameters(), "lr": cfg.lr_encoder},
                                   {"params": model.recurrent.parameters(), "lr": cfg.lr_recurrent}], betas=tuple(cfg.betas),
                                  fused=cfg.fused_adam or None)
        opt_d = torch.optim.AdamW(list(D_img.parameters()) + list(D_vid.parameters()), lr=cfg.lr_discriminator,
                                  betas=tuple(cfg.betas), fused=cfg.fused_adam or None)
        seed_for_rank(cfg.seed, env.rank)
        modules = {"model": model, "d_image": D_img, "d_video": D_vid, "w_mean": w_mean}
        scaler_g, scaler_d = make_scaler(env, cfg.amp), make_scaler(env, cfg.amp)
        optimizers = {"opt_g": opt_g, "opt_d": opt_d, "scaler_g": scaler_g, "scaler_d": scaler_d}
        st = run.resume(modules, optimizers)
        if st.step == 0 and cfg.init_from: _warm_start(cfg.init_from, modules)
        batches = step_batches(dataset, cfg.batch_size, env, cfg.seed, st.step, cfg.num_workers, collate)
        g_params = [p for p in model.parameters()]
        d_params = list(D_img.parameters()) + list(D_vid.parameters())
        local_b = cfg.batch_size // env.world_size
        w_avg = G.mapping.w_avg.detach().to(env.device)
        rec = {}
        for step in progress(range(st.step, cfg.max_steps), env, "train-ssvg", cfg.progress):
            batch = next(batches)
            real = batch["frames"].to(env.device).float()
            windows = batch["audio"].to(env.device).float()
            B = real.shape[0]
            gens = item_generators(cfg.seed, step, env.rank * local_b, B)
            w0, noise = _draws(model, G, B, T, gens, env.device)
            p = window_start(cfg.seed, step, T, L, cfg.p_fresh)   # the rollout runs over frames [0, p) without gradients
            w_edit0 = None
            if cfg.w_edit > 0 or cfg.w_edit_keep > 0:  # the random w an edit starts from, from each clip's own generator
                z = torch.stack([torch.randn(G.z_dim, generator=g) for g in gens]).to(env.device)
                with torch.no_grad(): w_edit0 = G.mapping(z, None, truncation_psi=mcfg.psi)
            text_emb = None
            if frozen.clip is not None and cfg.w_clip_text > 0 and (cfg.lambda_enc > 0 or cfg.w_edit > 0):
                with torch.no_grad(): text_emb = frozen.clip.encode_text(batch_texts(batch, cfg.class_template, 1.0 if cfg.text_source == "class" else 0.0))
            model.train()
            render_now = cfg.render_every > 0 and step % cfg.render_every == 0
            ws, fake, anchors = generate(model, G, windows[:, :p + L], w0, None if noise is None else noise[:, :p + L],
                                         mcfg.sound, autocast(env, cfg.amp), prefix=p, render_frames=render_now and cfg.render_rollout)
            real, windows = real[:, p:p + L], windows[:, p:p + L]
            teacher = batch["teacher"][:, p:p + L].to(env.device).float() if "teacher" in batch else None
            if teacher is None and max(cfg.teacher_weights) > 0:
                raise UserError("the teacher terms (w_teacher, w_teacher_motion, w_teacher_speed, w_motion_size) need items with "
                                "teacher trajectories (train-ssvg --teacher IMAGE_ENCODER).")
            if fake is not None and fake.shape[-2:] != real.shape[-2:]:
                real = F.interpolate(real.flatten(0, 1), size=fake.shape[-2:], mode="area").view(*real.shape[:3], *fake.shape[-2:])

            # Discriminator step on detached fakes.
            d_terms = {}
            if fake is not None and (cfg.w_adv_image > 0 or cfg.w_adv_video > 0):
                with autocast(env, cfg.amp):
                    d_terms = discriminator_loss(D_img, D_vid, real, fake.detach(), cfg)
                opt_d.zero_grad(set_to_none=True)
                scaler_d.scale(sum(v.float() for v in d_terms.values())).backward()
                average_gradients(d_params, env)
                scaler_d.step(opt_d); scaler_d.update()

            # Model step (discriminators frozen for it).
            w_bar = w_mean.mean if cfg.reg_target == "running_mean" and w_mean.count > 0 else w_avg  # w_avg until the mean has data
            if anchors is not None: w_bar = anchors.detach()     # the anchored path: the regulariser pulls towards a_t
            D_img.requires_grad_(False); D_vid.requires_grad_(False)
            with autocast(env, cfg.amp):
                g_terms = model_losses(ws, fake, windows, frozen, D_img, D_vid, text_emb, w_bar, cfg, teacher, anchors)
            if w_edit0 is not None and render_now:
                g_terms.update(edit_losses(model, frozen, windows, w_edit0, text_emb, cfg, autocast(env, cfg.amp)))
            D_img.requires_grad_(True); D_vid.requires_grad_(True)
            opt_g.zero_grad(set_to_none=True)
            loss = sum(v.float() for v in g_terms.values()) if g_terms else None
            if loss is not None:
                scaler_g.scale(loss).backward()
                average_gradients(g_params, env)
                scaler_g.unscale_(opt_g)
                gn = float(torch.nn.utils.clip_grad_norm_(g_params, cfg.grad_clip if cfg.grad_clip > 0 else float("inf")))
                scaler_g.step(opt_g); scaler_g.update()
            else:
                gn = 0.0
            if cfg.reg_target == "running_mean":
                m = ws.detach().float().mean((0, 1))
                if env.distributed: dist.all_reduce(m); m /= env.world_size
                w_mean.update(m[None])

            done = step + 1
            rec = {k: all_reduce_mean(float(v.detach()), env) for k, v in {**d_terms, **g_terms}.items()}
            run.check_finite(done, rec)
            rec["loss_model"] = sum(v for k, v in rec.items() if k in g_terms)
            rec["grad_norm"] = gn
            if run.due(done, cfg.log_every, cfg.max_steps): rec = run.log(done, **rec)
            if env.is_main and fake is not None and cfg.sample_every and run.due(done, cfg.sample_every, cfg.max_steps):
                _write_sample(run.path / "samples" / f"step-{done:07d}.mp4", fake[0], real[0], mcfg.fps)
            if run.due(done, cfg.ckpt_every, cfg.max_steps): run.save(done, modules, optimizers)
            if on_step is not None: on_step(done, rec)
        if env.is_main:
            save_ssvg(run.path / "ssvg.safetensors", model.eval(), meta={"step": cfg.max_steps, "generator": cfg.generator})
        return rec
    finally:
        dist_teardown(env)


def window_start(seed: int, step: int, T: int, L: int, p_fresh: float = 0.0) -> int:
    """First frame of the step's gradient window in a T-frame clip: 0 with probability `p_fresh`, else uniform in
    [0, T - L]; seeded by (seed, step), so the same on every rank and on resume."""
    if L >= T: return 0
    g = torch.Generator().manual_seed(seed * 1_000_003 + step)
    p = int(torch.randint(0, T - L + 1, (1,), generator=g))
    return 0 if p_fresh > 0 and float(torch.rand((), generator=g)) < p_fresh else p


def _warm_start(path: str, modules: dict) -> None:
    "Initialise a new run's modules from a stage-3 run checkpoint (model, discriminators) or an ssvg.safetensors (model)."
    from sound_video_gen.core import check_regular_file, load_checkpoint, load_state_strict
    state, cfg, _ = load_checkpoint(check_regular_file(path, "init_from checkpoint"), map_location="cpu")
    if "modules" in state:
        for k in ("model", "d_image", "d_video"):
            if k in state["modules"]: load_state_strict(unwrap(modules[k]), state["modules"][k], f"init_from {k}")
    else:
        load_state_strict(unwrap(modules["model"]), state, "init_from model")


def _write_sample(path: Path, fake: torch.Tensor, real: torch.Tensor, fps: float) -> None:
    "An mp4 with the generated clip on the left and the real one on the right."
    from sound_video_gen.data.clips import write_video
    path.parent.mkdir(parents=True, exist_ok=True)
    side = torch.cat([fake.detach().cpu(), real.detach().cpu()], -1)  # (T, 3, H, 2W)
    if side.shape[-2] % 2 or side.shape[-1] % 2:  # h264 wants even sizes
        side = F.pad(side, (0, side.shape[-1] % 2, 0, side.shape[-2] % 2))
    write_video(path, side.clamp(-1, 1), fps)
