"""Training stages 1 and 2 (DESIGN §5): a CLIP from scratch on (frame, caption) pairs (`train_clip`), and the
audio encoder F_a aligned to a frozen CLIP (`train_audio_clip`, `spec/paper.md` §3.3), plus their evaluation
(zero-shot audio classification, audio→image recall@k). The commands are `sound_video_gen.cli.train`.

Both stages take any torch `Dataset` whose items are dicts. The keys they read (names set in the config; the
defaults are those of `sound_video_gen.data.clips.AVClipDataset`):

- `frames`: an image (3, H, W) in [-1, 1], or a clip of frames (T, 3, H, W) — then one time t per item and
  step is drawn from a generator seeded by (seed, step, the item's place in the global batch), so the draw does
  not depend on the number of processes or on resumption;
- `audio`: a log-mel window (1, n_mels, W) in [0, 1], or per-frame windows (T, 1, n_mels, W) aligned with the
  frames (the same t is taken);
- `caption`: a string; `label`: an int class index (for class prompts and evaluation).

Losses are computed over the global batch: embeddings are gathered from every process with gradients
(`common.all_gather_with_grad`) and gradients are averaged with one all-reduce (`common.average_gradients`, the
convention of every stage), so a `torchrun` run matches one process with the same global batch.
"""
from __future__ import annotations
import json, math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from sound_video_gen.core import Config, UserError, atomic_write_text, seed_everything
from sound_video_gen.audio import spec_augment
from sound_video_gen.multimodal.audio_encoder import AudioEncoder, AudioEncoderConfig, save_audio_encoder
from sound_video_gen.multimodal.clip import (ClipSpace, class_text_embeddings, clip_preprocess, contrastive_loss, load_clip,
                                  recall_at_k, save_clip, zero_shot_predict)
from sound_video_gen.train.common import (RunDir, all_gather_nograd, all_gather_with_grad, autocast,
                                          dist_setup, dist_teardown, lr_at, make_scaler, progress, seed_for_rank,
                                          step_batches, item_generators, check_hyperparameters,
                                          average_gradients, same_start, sync_batchnorm)

__all__ = ["ClipTrainConfig", "AudioClipTrainConfig", "train_clip", "train_audio_clip", "TrainResult", "collate", "pick_pairs",
           "augment_text", "evaluate_clip", "evaluate_audio_clip", "dataset_classnames",
           "batch_texts"]


# ----------------------------------------------------------------------------------------------------------
# Configs

@dataclass
class TrainResult:
    "What a stage returns: the trained model (eval mode), the last log record, and the run folder."
    model: nn.Module
    record: dict
    run_dir: Path

@dataclass
class ClipTrainConfig(Config):
    "Stage 1: a CLIP trained from scratch (or fine-tuned) on (frame, caption) pairs."
    model: str = "clip-synthscapes"   # open_clip architecture (see open_clip.list_models())
    pretrained: str | None = None     # start from these weights (tag or file); None: random
    run_dir: str = "runs/clip"        # config.json, log.jsonl, checkpoint.safetensors, clip.safetensors
    max_steps: int = 1500             # stop after this many optimizer steps (a resumed run continues to it)
    batch_size: int = 64              # global batch (split over torchrun processes)
    lr: float = 1e-3                  # AdamW peak learning rate
    weight_decay: float = 0.1         # AdamW weight decay (not on gains, biases, embeddings, logit scale)
    warmup_steps: int = 50            # linear warm-up
    decay_steps: int = 0              # cosine decay to 0 over this many steps (0: constant after warm-up)
    grad_clip: float = 1.0            # clip the gradient norm (0: off)
    ckpt_every: int = 200             # write checkpoint.safetensors every N steps (and at the end)
    log_every: int = 10               # append to log.jsonl every N steps
    seed: int = 0
    num_workers: int = 0              # DataLoader workers
    device: str = "auto"              # 'cpu', 'cuda', 'auto'
    amp: bool = True                  # float16 mixed precision (CUDA only)
    frame_key: str = "frames"         # dataset keys (those of sound_video_gen.data.clips.AVClipDataset)
    text_key: str = "caption"
    label_key: str = "label"
    class_prompt_p: float = 0.0       # probability of replacing a caption by `class_template` of its class
    class_template: str = "{}"        # prompt with one '{}' for the class name
    text_aug_p: float = 0.0           # probability of a random word swap or deletion in a caption
    progress: bool = True             # tqdm bar on rank 0

    def __post_init__(self):
        _check_common(self)


@dataclass
class AudioClipTrainConfig(Config):
    "Stage 2: the audio encoder F_a trained against a frozen CLIP with three symmetric InfoNCE terms."
    encoder: AudioEncoderConfig = field(default_factory=AudioEncoderConfig)  # F_a's architecture
    clip: str = "ViT-B-32"            # frozen CLIP: an open_clip architecture or a save_clip/train_clip file
    clip_pretrained: str | None = "openai"  # its weights (tag or file); None for an architecture name means random
    run_dir: str = "runs/audio_clip"
    max_steps: int = 3000
    batch_size: int = 64              # global batch (split over torchrun processes)
    optimizer: str = "adamw"          # 'adamw' or 'sgd' (the CVPR'22 recipe: SGD, momentum 0.9)
    lr: float = 1e-3
    weight_decay: float = 1e-4
    momentum: float = 0.9             # SGD only
    warmup_steps: int = 50
    decay_steps: int = 0              # cosine decay over this many steps (0: constant)
    grad_clip: float = 1.0
    w_text: float = 1.0               # weight of InfoNCE audio↔text
    w_image: float = 1.0              # weight of InfoNCE audio↔image
    w_self: float = 1.0               # weight of InfoNCE audio↔SpecAugmented audio
    init_temperature: float = 0.07    # τ: logits are (1/τ)·cos (CLIP's init; the CVPR'22 release used exp(0.07))
    learn_temperature: bool = True    # learn log(1/τ), clamped at 100 as CLIP does
    spec_masks: int = 2               # SpecAugment: masks per spectrogram
    spec_max_freq: float = 0.15       # widest frequency mask (fraction of mel bands)
    spec_max_time: float = 0.3        # widest time mask (fraction of frames)
    text_source: str = "caption"      # 'caption' or 'class' (class_template of the label, as the CVPR code)
    class_template: str = "{}"
    text_aug_p: float = 0.0           # probability of a random word swap or deletion in the text
    ckpt_every: int = 200
    log_every: int = 10
    seed: int = 0
    num_workers: int = 0
    device: str = "auto"
    amp: bool = True
    mel_key: str = "audio"
    frame_key: str = "frames"
    text_key: str = "caption"
    label_key: str = "label"
    progress: bool = True

    def __post_init__(self):
        _check_common(self)
        bad = []
        if self.optimizer not in ("adamw", "sgd"): bad.append(f"optimizer={self.optimizer!r} (use 'adamw' or 'sgd')")
        if not 0 < self.init_temperature < 10: bad.append(f"init_temperature={self.init_temperature}")
        if min(self.w_text, self.w_image, self.w_self) < 0 or self.w_text + self.w_image + self.w_self <= 0:
            bad.append("loss weights must be >= 0 with a positive sum")
        if self.text_source not in ("caption", "class"): bad.append(f"text_source={self.text_source!r}")
        if bad: raise UserError(f"invalid AudioClipTrainConfig: {', '.join(bad)}.")


def _check_common(c) -> None:
    check_hyperparameters(c)
    bad = []
    if c.max_steps < 0: bad.append(f"max_steps={c.max_steps}")
    if c.batch_size < 2: bad.append(f"batch_size={c.batch_size} (contrastive training needs >= 2)")
    if not c.lr > 0: bad.append(f"lr={c.lr}")
    if c.warmup_steps < 0 or c.decay_steps < 0: bad.append("warmup_steps/decay_steps must be >= 0")
    if c.ckpt_every < 0 or c.log_every < 0: bad.append("ckpt_every/log_every must be >= 0")
    if "{}" not in c.class_template: bad.append("class_template needs one '{}'")
    if not 0 <= c.text_aug_p <= 1: bad.append(f"text_aug_p={c.text_aug_p}")
    if not 0 <= getattr(c, "class_prompt_p", 0) <= 1: bad.append(f"class_prompt_p={c.class_prompt_p}")
    if bad: raise UserError(f"invalid {type(c).__name__}: {', '.join(bad)}.")


# ----------------------------------------------------------------------------------------------------------
# Batches

def collate(items: list[dict]) -> dict:
    "Stack tensors and numbers; keep strings and anything else as lists."
    out = {}
    for k in items[0]:
        vals = [it[k] for it in items]
        if isinstance(vals[0], torch.Tensor): out[k] = torch.stack(vals)
        elif isinstance(vals[0], (bool, int, float)): out[k] = torch.tensor(vals)
        else: out[k] = vals
    return out


def pick_pairs(batch: dict, frame_key: str | None, mel_key: str | None,
               gens: list[torch.Generator] | None = None) -> dict:
    """One (frame, mel) per item: items that are clips (frames (B, T, 3, H, W), mels (B, T, 1, n, w)) give the
    frame and mel window at one time t per item, drawn from the item's generator (the middle one without)."""
    out = dict(batch)
    f = batch.get(frame_key) if frame_key else None
    m = batch.get(mel_key) if mel_key else None
    T = None
    if f is not None and f.dim() == 5: T = f.shape[1]
    if m is not None and m.dim() == 5:
        if T is not None and m.shape[1] != T:
            raise UserError(f"items have {T} frames but {m.shape[1]} mel windows; they must align one to one.")
        T = m.shape[1]
    if T is None: return out
    B = (f if f is not None and f.dim() == 5 else m).shape[0]
    t = (torch.tensor([int(torch.randint(0, T, (1,), generator=g)) for g in gens]) if gens is not None
         else torch.full((B,), T // 2))
    ar = torch.arange(B)
    if f is not None and f.dim() == 5: out[frame_key] = f[ar, t]
    if m is not None and m.dim() == 5: out[mel_key] = m[ar, t]
    out["_t"] = t
    return out


def augment_text(text: str, gen: torch.Generator, p: float) -> str:
    "With probability `p`, swap two random words or delete one (EDA without a thesaurus)."
    words = text.split()
    if p <= 0 or len(words) < 3 or float(torch.rand(1, generator=gen)) >= p: return text
    if float(torch.rand(1, generator=gen)) < 0.5:
        i, j = torch.randint(0, len(words), (2,), generator=gen).tolist()
        words[i], words[j] = words[j], words[i]
    else:
        del words[int(torch.randint(0, len(words), (1,), generator=gen))]
    return " ".join(words)


def dataset_classnames(dataset) -> list[str] | None:
    "Class names from a dataset's `classes` (or `class_names`) attribute, following Subset wrappers."
    d = dataset
    while d is not None:
        for attr in ("classes", "class_names"):
            v = getattr(d, attr, None)
            if isinstance(v, (list, tuple)) and v and all(isinstance(c, str) for c in v): return list(v)
        d = getattr(d, "dataset", None)
    return None


def batch_texts(batch: dict,              # a collated batch
                class_template: str,      # prompt with one '{}' for the class name
                p_class: float = 1.0,     # probability of the class prompt instead of the caption (1: always)
                gens=None,                # one torch.Generator per item (needed when 0 < p_class < 1 or aug_p > 0)
                classnames=None,          # class names in label order; default: the batch's 'class' strings
                text_key: str = "caption", label_key: str = "label",
                aug_p: float = 0.0,       # probability of a random word swap or deletion
               ) -> list[str]:
    "One text per item: its caption, or (with probability `p_class`, or when it has none) its class prompt."
    caps, labels, names = batch.get(text_key), batch.get(label_key), batch.get("class")
    n = len(next(v for v in batch.values() if isinstance(v, (list, torch.Tensor))))
    out = []
    for i in range(n):
        use_class = p_class >= 1 or (p_class > 0 and float(torch.rand(1, generator=gens[i])) < p_class)
        if use_class or caps is None:
            if classnames is not None and labels is not None: name = classnames[int(labels[i])]
            elif names is not None: name = names[i]
            else: raise UserError(f"class prompts need '{label_key}' in the items and class names on the dataset.")
            text = class_template.format(name.replace("_", " "))
        else:
            text = caps[i]
        out.append(augment_text(text, gens[i], aug_p) if aug_p > 0 else text)
    return out


def _need(batch: dict, key: str, what: str) -> torch.Tensor:
    if key not in batch: raise UserError(f"dataset items have no '{key}' ({what}); keys are {', '.join(batch)}.")
    return batch[key]


def _first_item_check(dataset, keys: dict[str, str]) -> None:
    if len(dataset) == 0: raise UserError("the dataset is empty.")
    item = dataset[0]
    if not isinstance(item, dict): raise UserError(f"dataset items must be dicts, got {type(item).__name__}.")
    for key, what in keys.items():
        if key not in item: raise UserError(f"dataset items have no '{key}' ({what}); keys are {', '.join(item)}.")


# ----------------------------------------------------------------------------------------------------------
# Modules whose forward does the whole step

class _ClipStep(nn.Module):
    def __init__(self, clip: ClipSpace):
        super().__init__()
        self.model = clip.model
        self._pp = (clip.image_size, clip.mean, clip.std, clip.interpolation)

    def forward(self, images, tokens):
        x = clip_preprocess(images, *self._pp)
        img = F.normalize(self.model.encode_image(x).float(), dim=-1)
        txt = F.normalize(self.model.encode_text(tokens).float(), dim=-1)
        return img, txt, self.model.logit_scale.float().clamp(max=math.log(100)).exp()


class _AudioStep(nn.Module):
    def __init__(self, enc: AudioEncoder, init_temperature: float, learn: bool):
        super().__init__()
        self.encoder = enc
        self.log_scale = nn.Parameter(torch.tensor(math.log(1 / init_temperature)), requires_grad=learn)

    def forward(self, mels):
        return self.encoder(mels), self.log_scale.float().clamp(max=math.log(100)).exp()


def _param_groups(model: nn.Module, wd: float):
    decay, no_decay = [], []
    for n, p in model.named_parameters():
        if not p.requires_grad: continue
        (no_decay if p.ndim < 2 or "embedding" in n or "logit_scale" in n or "log_scale" in n else decay).append(p)
    return [{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}]


def _step_optim(opt, scaler, params, grad_clip: float) -> float:
    scaler.unscale_(opt)
    gn = float(torch.nn.utils.clip_grad_norm_(params, grad_clip if grad_clip > 0 else float("inf")))
    scaler.step(opt)
    scaler.update()
    return gn


# ----------------------------------------------------------------------------------------------------------
# Stage 1: CLIP from scratch

def train_clip(cfg: ClipTrainConfig,
               dataset,                        # items with cfg.frame_key and cfg.text_key (and cfg.label_key)
               eval_dataset=None,              # optional: zero-shot image classification and recall at the end
               resume: bool = True,            # continue from run_dir/checkpoint.safetensors if there is one
               overwrite: bool = False,        # with resume=False: discard an existing run in run_dir
               on_step: Callable | None = None,  # called as on_step(step, record) after every step (tests, hooks)
               classnames: list[str] | None = None,  # class names (default: the dataset's `classes`)
              ) -> TrainResult:
    "Train a CLIP contrastively on (frame, caption) pairs; write run_dir/clip.safetensors; return the final record."
    env = dist_setup(cfg.device)
    try:
        run = RunDir(cfg.run_dir, cfg, env, resume=resume, overwrite=overwrite)
        _first_item_check(dataset, {cfg.frame_key: "frames", cfg.text_key: "captions"})
        classnames = classnames or dataset_classnames(dataset)
        seed_everything(cfg.seed)                      # identical initial weights on every rank
        clip = load_clip(cfg.model, cfg.pretrained, device=env.device)
        clip.model.train()
        step_mod = _ClipStep(clip).to(env.device)
        opt = torch.optim.AdamW(_param_groups(step_mod, cfg.weight_decay), lr=cfg.lr, betas=(0.9, 0.98), eps=1e-6)
        scaler = make_scaler(env, cfg.amp)
        seed_for_rank(cfg.seed, env.rank)
        same_start([step_mod], env)
        st = run.resume({"clip": step_mod}, {"opt": opt}, scaler)
        batches = step_batches(dataset, cfg.batch_size, env, cfg.seed, st.step, cfg.num_workers, collate)
        params = [p for p in step_mod.parameters() if p.requires_grad]
        local_b = cfg.batch_size // env.world_size
        rec = {}
        for step in progress(range(st.step, cfg.max_steps), env, "train-clip", cfg.progress):
            gens = item_generators(cfg.seed, step, env.rank * local_b, local_b)
            batch = pick_pairs(next(batches), cfg.frame_key, None, gens)
            images = _need(batch, cfg.frame_key, "frames").to(env.device, non_blocking=True)
            texts = batch_texts(batch, cfg.class_template, cfg.class_prompt_p, gens, classnames, cfg.text_key, cfg.label_key, cfg.text_aug_p)
            tokens = clip.tokenize(texts)
            lr = lr_at(step, cfg.lr, cfg.warmup_steps, cfg.decay_steps)
            for g in opt.param_groups: g["lr"] = lr
            with autocast(env, cfg.amp):
                img, txt, scale = step_mod(images, tokens)
            img, txt = all_gather_with_grad(img.float(), env), all_gather_with_grad(txt.float(), env)
            loss = contrastive_loss(img, txt, scale)
            run.check_finite(step + 1, {"loss": loss.detach()})
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            average_gradients(params, env)
            gn = _step_optim(opt, scaler, params, cfg.grad_clip)
            done = step + 1
            rec = {"loss": float(loss.detach()), "scale": float(scale.detach()), "lr": lr, "grad_norm": gn}
            if run.due(done, cfg.log_every, cfg.max_steps): rec = run.log(done, **rec)
            if run.due(done, cfg.ckpt_every, cfg.max_steps): run.save(done, {"clip": step_mod}, {"opt": opt}, scaler)
            if on_step is not None: on_step(done, rec)
        clip.model.eval()
        if env.is_main: save_clip(run.path / "clip.safetensors", clip, meta={"step": cfg.max_steps})
        if eval_dataset is not None and env.is_main:
            metrics = evaluate_clip(clip, eval_dataset, classnames, cfg)
            rec = run.log(cfg.max_steps, **{f"eval/{k}": v for k, v in metrics.items()})
            atomic_write_text(run.path / "metrics.json", json.dumps(metrics, indent=2) + "\n")
        return TrainResult(clip, rec, run.path)
    finally:
        dist_teardown(env)


# ----------------------------------------------------------------------------------------------------------
# Stage 2: F_a against a frozen CLIP

def train_audio_clip(cfg: AudioClipTrainConfig,
                     dataset,                   # items with mel, frame, caption (and label) keys
                     eval_dataset=None,         # optional: zero-shot accuracy and audio→image recall@k at the end
                     resume: bool = True,
                     overwrite: bool = False,
                     on_step: Callable | None = None,
                     classnames: list[str] | None = None,
                     clip: ClipSpace | None = None,  # an already-loaded frozen CLIP (default: cfg.clip)
                    ) -> TrainResult:
    "Train F_a with InfoNCE audio↔text + audio↔image + audio↔augmented audio; write run_dir/audio_encoder.safetensors."
    env = dist_setup(cfg.device)
    try:
        run = RunDir(cfg.run_dir, cfg, env, resume=resume, overwrite=overwrite)
        need = {cfg.mel_key: "mel spectrograms"}
        if cfg.w_image > 0: need[cfg.frame_key] = "frames"
        if cfg.w_text > 0: need[cfg.text_key if cfg.text_source == "caption" else cfg.label_key] = "texts"
        _first_item_check(dataset, need)
        classnames = classnames or dataset_classnames(dataset)
        if clip is None:
            pre = cfg.clip_pretrained if not Path(cfg.clip).suffix == ".safetensors" else None
            clip = load_clip(cfg.clip, pre, device=env.device)
        clip = clip.to(env.device).freeze()
        if cfg.encoder.embed_dim != clip.embed_dim:
            raise UserError(f"the audio encoder's embed_dim ({cfg.encoder.embed_dim}) must equal the CLIP's ({clip.embed_dim}); "
                            f"set encoder.embed_dim to {clip.embed_dim}.")
        seed_everything(cfg.seed)
        step_mod = _AudioStep(AudioEncoder(cfg.encoder), cfg.init_temperature, cfg.learn_temperature).to(env.device)
        step_mod = sync_batchnorm(step_mod, env)
        groups = _param_groups(step_mod, cfg.weight_decay)
        opt = (torch.optim.AdamW(groups, lr=cfg.lr) if cfg.optimizer == "adamw"
               else torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum))
        scaler = make_scaler(env, cfg.amp)
        seed_for_rank(cfg.seed, env.rank)
        same_start([step_mod], env)
        st = run.resume({"audio": step_mod}, {"opt": opt}, scaler)
        batches = step_batches(dataset, cfg.batch_size, env, cfg.seed, st.step, cfg.num_workers, collate)
        params = [p for p in step_mod.parameters() if p.requires_grad]
        local_b = cfg.batch_size // env.world_size
        p_class = 1.0 if cfg.text_source == "class" else 0.0
        rec = {}
        for step in progress(range(st.step, cfg.max_steps), env, "train-audio-clip", cfg.progress):
            gens = item_generators(cfg.seed, step, env.rank * local_b, local_b)
            batch = pick_pairs(next(batches), cfg.frame_key if cfg.w_image > 0 else None, cfg.mel_key, gens)
            mel = _need(batch, cfg.mel_key, "mel spectrograms").float()
            if mel.dim() == 3: mel = mel[:, None]
            B = mel.shape[0]
            mels = mel
            if cfg.w_self > 0:
                aug = torch.stack([spec_augment(x, cfg.spec_masks, cfg.spec_max_freq, cfg.spec_max_time, generator=g)
                                   for x, g in zip(mel, gens)])
                mels = torch.cat([mel, aug])
            with torch.no_grad():
                txt = clip.encode_text(batch_texts(batch, cfg.class_template, p_class, gens, classnames, cfg.text_key, cfg.label_key, cfg.text_aug_p)) if cfg.w_text > 0 else None
                img = clip.encode_image(batch[cfg.frame_key].to(env.device)) if cfg.w_image > 0 else None
            lr = lr_at(step, cfg.lr, cfg.warmup_steps, cfg.decay_steps)
            for g in opt.param_groups: g["lr"] = lr
            with autocast(env, cfg.amp):
                emb, scale = step_mod(mels.to(env.device, non_blocking=True))
            emb = emb.float()
            a = all_gather_with_grad(emb[:B], env)
            terms = {}
            if cfg.w_text > 0: terms["text"] = contrastive_loss(a, all_gather_nograd(txt, env), scale)
            if cfg.w_image > 0: terms["image"] = contrastive_loss(a, all_gather_nograd(img, env), scale)
            if cfg.w_self > 0: terms["self"] = contrastive_loss(a, all_gather_with_grad(emb[B:], env), scale)
            weights = {"text": cfg.w_text, "image": cfg.w_image, "self": cfg.w_self}
            loss = sum(weights[k] * v for k, v in terms.items())
            run.check_finite(step + 1, {f"loss_{k}": v.detach() for k, v in terms.items()})
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            average_gradients(params, env)
            gn = _step_optim(opt, scaler, params, cfg.grad_clip)
            done = step + 1
            rec = {"loss": float(loss.detach()), **{f"loss_{k}": float(v.detach()) for k, v in terms.items()},
                   "scale": float(scale.detach()), "lr": lr, "grad_norm": gn}
            if run.due(done, cfg.log_every, cfg.max_steps): rec = run.log(done, **rec)
            if run.due(done, cfg.ckpt_every, cfg.max_steps): run.save(done, {"audio": step_mod}, {"opt": opt}, scaler)
            if on_step is not None: on_step(done, rec)
        enc = step_mod.encoder.eval()
        if env.is_main:
            save_audio_encoder(run.path / "audio_encoder.safetensors", enc,
                               meta={"step": cfg.max_steps, "clip": cfg.clip, "clip_pretrained": cfg.clip_pretrained,
                                     "temperature": float(1 / step_mod.log_scale.detach().exp())})
        if eval_dataset is not None and env.is_main:
            metrics = evaluate_audio_clip(enc, clip, eval_dataset, classnames, cfg)
            rec = run.log(cfg.max_steps, **{f"eval/{k}": v for k, v in metrics.items()})
            atomic_write_text(run.path / "metrics.json", json.dumps(metrics, indent=2) + "\n")
        return TrainResult(enc, rec, run.path)
    finally:
        dist_teardown(env)


# ----------------------------------------------------------------------------------------------------------
# Evaluation

@torch.no_grad()
def _embed_dataset(dataset, fns: dict[str, Callable], cfg, batch_size: int = 64) -> dict:
    "Run `fns[name](batch)` over the dataset in order (middle frame/window of clips); concatenate."
    out = {k: [] for k in fns}
    labels = []
    for i in range(0, len(dataset), batch_size):
        batch = pick_pairs(collate([dataset[j] for j in range(i, min(len(dataset), i + batch_size))]),
                           cfg.frame_key, getattr(cfg, "mel_key", None), None)
        for k, fn in fns.items(): out[k].append(fn(batch).cpu())
        if cfg.label_key in batch: labels.append(torch.as_tensor(batch[cfg.label_key]))
    res = {k: torch.cat(v) for k, v in out.items()}
    res["label"] = torch.cat(labels) if labels else None
    return res


@torch.no_grad()
def evaluate_clip(clip: ClipSpace, dataset, classnames: list[str] | None, cfg: ClipTrainConfig | None = None,
                  ks: tuple[int, ...] = (1, 5)) -> dict:
    "Zero-shot image classification (class prompts) and image→caption recall@k of a CLIP on a dataset."
    cfg = cfg or ClipTrainConfig()
    clip = clip.eval()
    r = _embed_dataset(dataset, {"image": lambda b: clip.encode_image(b[cfg.frame_key]),
                                 "text": lambda b: clip.encode_text(list(b[cfg.text_key]))}, cfg)
    m = {"n": len(r["image"])}
    for k in ks: m[f"image_to_text_R@{k}"] = recall_at_k(r["image"], r["text"], k)
    if classnames and r["label"] is not None:
        cls = class_text_embeddings(clip, classnames, (cfg.class_template,)).cpu()
        m["zero_shot_image_acc"] = float((zero_shot_predict(r["image"], cls) == r["label"]).float().mean())
        m["chance_acc"] = 1 / len(classnames)
    return m


@torch.no_grad()
def evaluate_audio_clip(enc: AudioEncoder, clip: ClipSpace, dataset, classnames: list[str] | None,
                        cfg: AudioClipTrainConfig | None = None, ks: tuple[int, ...] = (1, 5)) -> dict:
    "Zero-shot audio classification (cosine to class-name text) and audio→image recall@k on a dataset."
    cfg = cfg or AudioClipTrainConfig()
    enc, clip = enc.eval(), clip.eval()
    dev = next(enc.parameters()).device
    def audio(b):
        m = b[cfg.mel_key].float()
        return enc((m[:, None] if m.dim() == 3 else m).to(dev))
    fns = {"audio": audio}
    if cfg.frame_key in dataset[0]: fns["image"] = lambda b: clip.encode_image(b[cfg.frame_key].to(clip.device))
    r = _embed_dataset(dataset, fns, cfg)
    m = {"n": len(r["audio"])}
    if "image" in r:
        for k in ks: m[f"audio_to_image_R@{k}"] = recall_at_k(r["audio"], r["image"], k)
        for k in ks: m[f"chance_R@{k}"] = min(1.0, k / len(r["audio"]))
    if classnames and r["label"] is not None:
        cls = class_text_embeddings(clip, classnames, (cfg.class_template,)).cpu()
        m["zero_shot_audio_acc"] = float((zero_shot_predict(r["audio"], cls) == r["label"]).float().mean())
        if "image" in r:
            m["zero_shot_image_acc"] = float((zero_shot_predict(r["image"], cls) == r["label"]).float().mean())
        m["chance_acc"] = 1 / len(classnames)
    return m
