"""Shared machinery of every training stage: run folders, `log.jsonl`, atomic checkpoints with exact resume
(RNG states included), a deterministic step-indexed batch sampler, `torchrun`/DDP setup, per-rank seeding,
mixed precision and a differentiable all-gather for contrastive losses.

A stage's loop reads like this::

    env = dist_setup(cfg.device)                     # single process or torchrun; gloo on CPU, nccl on GPU
    run = RunDir(cfg.run_dir, cfg, env, resume=resume)
    seed_for_rank(cfg.seed, env.rank)
    gen = torch.Generator().manual_seed(cfg.seed + env.rank)   # the loop's own augmentation RNG
    model, opt = ...
    state = run.resume(modules={"model": model}, optimizers={"opt": opt}, generators={"loop": gen})
    batches = step_batches(dataset, cfg.batch_size, env, cfg.seed, start_step=state.step)
    for step in progress(range(state.step, cfg.max_steps), env, ...):
        ...
        run.log(step + 1, loss=...)
        if run.due(step + 1, cfg.ckpt_every, cfg.max_steps): run.save(step + 1, ...)
    dist_teardown(env)

Everything a stage needs to continue exactly where it stopped is in one safetensors file
(`run_dir/checkpoint.safetensors`): step, module and optimizer states, the GradScaler, and the Python,
NumPy, torch (CPU and CUDA) and loop-generator RNG states of every rank.
"""
from __future__ import annotations
import atexit, json, math, os, random, time, warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
import torch.distributed as dist

from sound_video_gen.core import (Config, UserError, atomic_write_text, get_device, keep_freed_memory, load_checkpoint,
                                  make_dir, read_checkpoint_meta, save_checkpoint, seed_everything)

__all__ = ["DistEnv", "dist_setup", "dist_teardown", "seed_for_rank", "rng_state", "set_rng_state", "RunDir",
           "ResumeState", "StepBatchSampler", "step_batches", "all_gather_with_grad", "all_gather_nograd",
           "autocast", "make_scaler", "progress", "unwrap", "lr_at", "MemoryDataset", "CHECKPOINT_NAME", "RUN_CONTROL_KEYS",
           "item_seed", "item_generators", "check_hyperparameters", "NonFiniteLossError", "average_gradients",
           "same_start", "sync_batchnorm", "amp_dtype"]

CHECKPOINT_NAME = "checkpoint.safetensors"
# Config keys that may change between a run and its resumption (they steer the run, not what it computes).
RUN_CONTROL_KEYS = {"max_steps", "ckpt_every", "log_every", "num_workers", "device", "run_dir", "eval_every", "progress",
                    "sample_every", "fd_items", "grid_size"}


# ----------------------------------------------------------------------------------------------------------
# Processes and devices

@dataclass
class DistEnv:
    "Where this process stands: rank, world size, local rank, device, and whether it initialised the group."
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    owns_group: bool = False

    @property
    def is_main(self) -> bool: return self.rank == 0

    @property
    def distributed(self) -> bool: return self.world_size > 1


def dist_setup(device: str | None = None) -> DistEnv:
    """Join the `torchrun` process group if there is one (gloo on CPU, nccl on GPU); else a single-process env.
    Every training loop starts here, so here the process also keeps its freed tensors for reuse (`keep_freed_memory`:
    no page faults for the next step's buffers on Linux)."""
    keep_freed_memory()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistEnv(device=get_device(device))
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    dev = get_device(device)
    if dev.type == "cuda":
        dev = torch.device("cuda", local % torch.cuda.device_count())
        torch.cuda.set_device(dev)
    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
        atexit.register(_destroy_group)
    return DistEnv(dist.get_rank(), dist.get_world_size(), local, dev, owns)


def _destroy_group() -> None:
    if dist.is_initialized(): dist.destroy_process_group()


def dist_teardown(env: DistEnv) -> None:
    """End a stage: wait for every rank. The process group stays open for a next stage in the same script (it is
    destroyed when the process exits); re-creating a group under torchrun is not reliable."""
    if env.distributed and dist.is_initialized(): dist.barrier()


def barrier(env: DistEnv) -> None:
    if env.distributed: dist.barrier()


def broadcast_object(obj, env: DistEnv):
    "Rank 0's value of `obj` on every rank."
    if not env.distributed: return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def seed_for_rank(seed: int, rank: int = 0) -> int:
    "Seed every global RNG with `seed + rank` (each rank draws different noise, reproducibly); return it."
    return seed_everything(int(seed) + int(rank))


def unwrap(module: torch.nn.Module) -> torch.nn.Module:
    "The module inside a DDP wrapper (or the module itself)."
    return module.module if hasattr(module, "module") and isinstance(module, torch.nn.parallel.DistributedDataParallel) else module


# ----------------------------------------------------------------------------------------------------------
# RNG states

def rng_state(generators: dict[str, torch.Generator] | None = None) -> dict:
    "Python, NumPy, torch CPU/CUDA and named generator states, as tensors and JSON values."
    py = random.getstate()
    np_state = np.random.get_state()
    state = {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "generators": {k: g.get_state() for k, g in (generators or {}).items()},
    }
    return state


def set_rng_state(state: dict, generators: dict[str, torch.Generator] | None = None) -> None:
    "Restore what `rng_state` captured."
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))
    torch.set_rng_state(state["torch"].to(torch.uint8))
    if torch.cuda.is_available() and state.get("cuda"):
        for i, s in enumerate(state["cuda"][:torch.cuda.device_count()]): torch.cuda.set_rng_state(s.to(torch.uint8), i)
    for k, g in (generators or {}).items():
        if k in state.get("generators", {}): g.set_state(state["generators"][k].to(torch.uint8))


# ----------------------------------------------------------------------------------------------------------
# Guard rails

class NonFiniteLossError(UserError):
    "A loss became NaN or infinite: the run stops, keeping its last good checkpoint."


def check_hyperparameters(cfg: Config) -> None:
    """Refuse a stage config whose learning rates, betas or loss weights are non-finite or out of range, before a
    run writes anything. Fields are recognised by name: `lr*` (> 0), `betas` (each in [0, 1)), and `w_*`, `*_gamma`,
    `lambda_*`, `weight_decay`, `grad_clip`, `momentum`, `*_steps`, `*_every`, `*_interval` (>= 0)."""
    bad = []
    for name, v in vars(cfg).items():
        if isinstance(v, bool) or not isinstance(v, (int, float, tuple, list)): continue
        vals = list(v) if isinstance(v, (tuple, list)) else [v]
        if not all(isinstance(x, (int, float)) for x in vals): continue
        if not all(math.isfinite(x) for x in vals):
            if name.startswith(("lr", "w_", "lambda_")) or name in ("betas", "weight_decay", "grad_clip", "momentum") or name.endswith("_gamma"):
                bad.append(f"{name}={v} is not finite")
            continue
        if name.startswith("lr") and min(vals) <= 0: bad.append(f"{name}={v} must be > 0")
        elif (name.endswith(("_steps", "_every", "_interval")) or name == "max_steps") and min(vals) < 0:
            bad.append(f"{name}={v} must be >= 0")
        elif name == "betas" and not all(0 <= x < 1 for x in vals): bad.append(f"betas={tuple(vals)} must lie in [0, 1)")
        elif (name.startswith(("w_", "lambda_")) or name.endswith("_gamma") or name in ("weight_decay", "grad_clip", "momentum")) \
                and min(vals) < 0: bad.append(f"{name}={v} must be >= 0")
    if bad: raise UserError(f"invalid {type(cfg).__name__}: {'; '.join(bad)}.")


# ----------------------------------------------------------------------------------------------------------
# Run folder: config.json, log.jsonl, checkpoint.safetensors

@dataclass
class ResumeState:
    "What a stage gets back from `RunDir.resume`: the step to start from and the stage's extra values."
    step: int = 0
    extra: dict | None = None


class RunDir:
    "A run folder: `config.json`, `log.jsonl` (rank 0 writes), and the resumable `checkpoint.safetensors`."

    def __init__(self, path: str | Path, cfg: Config, env: DistEnv, resume: bool = True, overwrite: bool = False):
        if not path: raise UserError("run_dir must be set (a folder for config.json, log.jsonl and checkpoints).")
        self.path, self.cfg, self.env = Path(path), cfg, env
        self.ckpt = self.path / CHECKPOINT_NAME
        self.log_path = self.path / "log.jsonl"
        if env.is_main:
            if self.path.exists() and not self.path.is_dir(): raise UserError(f"run_dir {self.path} is a file, not a folder.")
            if self.ckpt.exists() and not resume:
                if not overwrite:
                    raise UserError(f"{self.path} already holds a run; resume it, pick another run_dir, or pass overwrite "
                                    "(CLI: --overwrite) to start again.")
                self.ckpt.unlink()
                if self.log_path.exists(): self.log_path.unlink()
            make_dir(self.path, "run folder")
            for tmp in self.path.glob(".*.tmp"): tmp.unlink()  # left by a write that was interrupted
        barrier(env)
        self._t0 = time.time()
        self.saved_step: int | None = None  # step of the newest checkpoint on disk

    # -- logging ------------------------------------------------------------------------------------------
    def log(self, step: int, **metrics) -> dict:
        "Append one JSON line `{step, time, **metrics}` to log.jsonl (rank 0 only); return the record."
        rec = {"step": int(step), "time": round(time.time() - self._t0, 3)}
        rec.update({k: (float(v) if isinstance(v, (torch.Tensor, np.generic)) else v) for k, v in metrics.items()})
        if self.env.is_main:
            with open(self.log_path, "a", encoding="utf-8") as f: f.write(json.dumps(rec) + "\n")
        return rec

    def read_log(self) -> list[dict]:
        "Every record of log.jsonl; a last line torn by a kill mid-write is dropped."
        if not self.log_path.exists(): return []
        lines = [l for l in self.log_path.read_text(encoding="utf-8").splitlines() if l.strip()]
        out = []
        for i, line in enumerate(lines):
            try: out.append(json.loads(line))
            except json.JSONDecodeError:
                if i < len(lines) - 1: raise UserError(f"{self.log_path} line {i + 1} is not JSON.") from None
        return out

    def _truncate_log(self, step: int) -> None:
        "Drop records after `step` (they were logged after the checkpoint a resumed run restarts from)."
        if not self.env.is_main or not self.log_path.exists(): return
        keep = [json.dumps(r) for r in self.read_log() if r.get("step", 0) <= step]
        atomic_write_text(self.log_path, "".join(l + "\n" for l in keep))

    @staticmethod
    def due(step: int, every: int, max_steps: int) -> bool:
        "True at multiples of `every` and at the last step."
        return step == max_steps or (every > 0 and step % every == 0)

    # -- checkpoints --------------------------------------------------------------------------------------
    def save(self, step: int, modules: dict[str, torch.nn.Module], optimizers: dict[str, Any] | None = None,
             scaler=None, generators: dict[str, torch.Generator] | None = None, extra: dict | None = None) -> None:
        "Write the full training state atomically (rank 0 writes; every rank contributes its RNG state)."
        rngs = [rng_state(generators)]
        if self.env.distributed:
            gathered = [None] * self.env.world_size
            dist.all_gather_object(gathered, rngs[0])
            rngs = gathered
        if self.env.is_main:
            state = {"modules": {k: unwrap(m).state_dict() for k, m in modules.items()},
                     "optimizers": {k: o.state_dict() for k, o in (optimizers or {}).items()},
                     "scaler": scaler.state_dict() if scaler is not None and scaler.is_enabled() else {},
                     "rng": rngs, "extra": extra or {}}
            save_checkpoint(self.ckpt, state, config=self.cfg,
                            meta={"step": int(step), "world_size": self.env.world_size, "time": time.time()})
        self.saved_step = int(step)
        barrier(self.env)

    def resume(self, modules: dict[str, torch.nn.Module], optimizers: dict[str, Any] | None = None, scaler=None,
               generators: dict[str, torch.Generator] | None = None) -> ResumeState:
        """Load the checkpoint if there is one (checking the config matches) and return where to continue.
        `config.json` is written only once that check has passed."""
        if not self.ckpt.exists():
            self._truncate_log(0)   # records of an earlier attempt that never reached a checkpoint
            self._write_config()
            barrier(self.env)
            return ResumeState(0, {})
        saved_cfg, meta = read_checkpoint_meta(self.ckpt)
        now = self.cfg.to_dict()
        try: defaults = type(self.cfg)().to_dict()     # a field added since the run started counts as its default
        except Exception: defaults = {}
        diff = sorted(k for k in set(saved_cfg) | set(now)
                      if k not in RUN_CONTROL_KEYS and saved_cfg.get(k, defaults.get(k)) != now.get(k))
        if diff:
            raise UserError(f"{self.path} holds a run with a different config ({', '.join(diff)}); resume it with the "
                            "same settings, pick another run_dir, or pass overwrite (CLI: --overwrite).")
        state, _, _ = load_checkpoint(self.ckpt, map_location="cpu")
        step = int(meta["step"])
        if step > getattr(self.cfg, "max_steps", step):
            raise UserError(f"{self.path} is already at step {step}, past max_steps={self.cfg.max_steps}.")
        for k, m in modules.items():
            unwrap(m).load_state_dict(state["modules"][k])
        for k, o in (optimizers or {}).items():
            o.load_state_dict(state["optimizers"][k])
            if isinstance(o, torch.optim.Optimizer): _match_layouts(o)
        if scaler is not None and state.get("scaler"): scaler.load_state_dict(state["scaler"])
        rngs = state["rng"]
        if len(rngs) == self.env.world_size:
            set_rng_state(rngs[self.env.rank], generators)
        else:
            warnings.warn(f"resuming a {len(rngs)}-process run with {self.env.world_size} processes: random streams "
                          "are reseeded, so the continuation is not bit-identical.")
            seed_for_rank(int(getattr(self.cfg, "seed", 0)) + step, self.env.rank)
        self._truncate_log(step)
        self._write_config()
        self.saved_step = step
        barrier(self.env)
        return ResumeState(step, state.get("extra") or {})

    def _write_config(self) -> None:
        if self.env.is_main: self.cfg.to_json(self.path / "config.json")

    def check_finite(self, step: int, terms: dict) -> None:
        "Stop the run with one sentence when a loss term is NaN or infinite; the last good checkpoint stays."
        bad = sorted(k for k, v in terms.items() if not math.isfinite(float(v)))
        if not bad: return
        kept = (f"the last good checkpoint (step {self.saved_step}) is kept in {self.path}" if self.saved_step
                else f"no checkpoint had been written yet in {self.path}")
        raise NonFiniteLossError(f"the loss ({', '.join(bad)}) became non-finite at step {step}; training stopped and "
                                 f"{kept}. Lower the learning rate or check the data, then resume.")


# ----------------------------------------------------------------------------------------------------------
# Data order: a pure function of (seed, step)

class StepBatchSampler(torch.utils.data.Sampler):
    """Batches of dataset indices for steps `start_step, start_step + 1, …` (forever).

    Epoch e is a permutation drawn from `seed + e`; global step s takes the s-th slice of `global_batch`
    indices (incomplete tail batches are dropped) and rank r its `r`-th share. The order depends only on the
    seed and the step, so a resumed run sees exactly the batches an uninterrupted one would, and a run on
    W processes sees the same global batches as one process.
    """
    def __init__(self, n: int, global_batch: int, rank: int = 0, world_size: int = 1, seed: int = 0,
                 start_step: int = 0, shuffle: bool = True,
                 item_seeds: bool = False):  # yield (index, item_seed(seed, step, position)) pairs instead of indices
        if global_batch < 1: raise UserError(f"batch_size must be >= 1, got {global_batch}.")
        if global_batch % world_size:
            raise UserError(f"batch_size {global_batch} must be divisible by the number of processes ({world_size}).")
        if n < global_batch:
            raise UserError(f"the dataset has {n} items, fewer than one batch of {global_batch}.")
        self.n, self.gb, self.rank, self.world, self.seed = n, global_batch, rank, world_size, seed
        self.start_step, self.shuffle, self.item_seeds = start_step, shuffle, item_seeds
        self.per_epoch = n // global_batch
        self.local = global_batch // world_size

    def indices(self, step: int) -> list[int]:
        "This rank's dataset indices at global step `step`."
        epoch, b = divmod(step, self.per_epoch)
        if self.shuffle: perm = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed + epoch))
        else: perm = torch.arange(self.n)
        lo = b * self.gb + self.rank * self.local
        return perm[lo:lo + self.local].tolist()

    def __iter__(self) -> Iterator[list]:
        step = self.start_step
        while True:
            idx = self.indices(step)
            if self.item_seeds:
                first = self.rank * self.local
                idx = [(i, item_seed(self.seed, step, first + k)) for k, i in enumerate(idx)]
            yield idx
            step += 1

    def __len__(self) -> int: return 2**62


def _in_layout_of(p: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    "A copy of v (p's shape) in p's memory layout."
    return torch.empty_like(p).copy_(v)


def _match_layouts(opt: torch.optim.Optimizer) -> None:
    """Give each loaded optimizer state tensor its parameter's memory layout. A checkpoint stores tensors contiguous;
    a channels-last parameter's moments must be channels-last again, or a fused optimizer (which walks parameter and
    state as flat memory) would pair the wrong elements and the resumed run would not continue the same."""
    for p, st in opt.state.items():
        for k, v in st.items():
            if torch.is_tensor(v) and v.shape == p.shape and v.stride() != p.stride(): st[k] = _in_layout_of(p, v)


def step_batches(dataset, global_batch: int, env: DistEnv, seed: int, start_step: int = 0, num_workers: int = 0,
                 collate_fn: Callable | None = None) -> Iterator:
    """An endless iterator of this rank's batches for steps `start_step, …` (see `StepBatchSampler`).

    A dataset with `accepts_item_seeds = True` (such as `AVClipDataset`) is indexed with `(index, seed)` pairs and
    draws its augmentation (random start, crop) from that seed, so what a batch holds depends only on (seed, step,
    position). The loader gets its own generator, so creating it draws nothing from the global RNG, which a resumed
    run has just restored."""
    sampler = StepBatchSampler(len(dataset), global_batch, env.rank, env.world_size, seed, start_step,
                               item_seeds=bool(getattr(dataset, "accepts_item_seeds", False)))
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler, num_workers=num_workers,
                                         collate_fn=collate_fn, pin_memory=env.device.type == "cuda",
                                         persistent_workers=False,
                                         generator=torch.Generator().manual_seed(item_seed(seed, start_step, env.rank)),
                                         worker_init_fn=_seed_worker if num_workers else None)
    return iter(loader)


def item_seed(seed: int, step: int, position: int) -> int:
    "The seed of the item at global `position` of the batch of `step`: independent of processes and of resumes."
    return ((int(seed) * 1_000_003 + int(step)) * 65_537 + int(position)) % 2**62


def item_generators(seed: int, step: int, first: int, n: int) -> list[torch.Generator]:
    """One generator per item of a batch, seeded by (seed, step, global position in the batch): augmentations
    drawn from them do not depend on the number of processes or on where a run was resumed."""
    return [torch.Generator().manual_seed(item_seed(seed, step, first + i)) for i in range(n)]


def _seed_worker(worker_id: int) -> None:
    s = torch.initial_seed() % 2**32
    np.random.seed(s); random.seed(s)


# ----------------------------------------------------------------------------------------------------------
# Collectives for contrastive losses

class _GatherWithGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        out = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(out, x.contiguous())
        return torch.cat(out)

    @staticmethod
    def backward(ctx, grad):
        grad = grad.contiguous()
        dist.all_reduce(grad)  # every rank's loss depends on every slice: sum their gradients
        n = grad.shape[0] // dist.get_world_size()
        r = dist.get_rank()
        return grad[r * n:(r + 1) * n]


def all_gather_with_grad(x: torch.Tensor, env: DistEnv) -> torch.Tensor:
    """Concatenate `x` (same shape on every rank) over ranks, in rank order, keeping gradients.

    Each rank computes the loss of the whole global batch; the backward pass sums every rank's gradient for this
    rank's slice, and DDP's gradient averaging then yields exactly the single-process gradient of the global batch.
    """
    return _GatherWithGrad.apply(x) if env.distributed else x


@torch.no_grad()
def all_gather_nograd(x: torch.Tensor, env: DistEnv) -> torch.Tensor:
    "Concatenate `x` over ranks (no gradient)."
    if not env.distributed: return x
    out = [torch.empty_like(x) for _ in range(env.world_size)]
    dist.all_gather(out, x.contiguous())
    return torch.cat(out)


def average_gradients(params: list[torch.Tensor], env: DistEnv) -> None:
    """Average the gradients of `params` over processes (one all-reduce): the multi-process convention of every stage.

    A parameter without a gradient on every process keeps none, exactly as in one process (so an optimizer skips it
    there too, weight decay included); one with a gradient on some processes gets zeros from the others."""
    if not env.distributed: return
    has = torch.tensor([p.grad is not None for p in params], dtype=torch.float32, device=env.device)
    dist.all_reduce(has)
    live = [p for p, h in zip(params, has.tolist()) if h > 0]
    if not live: return
    flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in live])
    dist.all_reduce(flat)
    flat /= env.world_size
    i = 0
    for p in live:
        p.grad = _in_layout_of(p, flat[i:i + p.numel()].view(p.shape))   # a fused optimizer needs p's layout
        i += p.numel()


def same_start(modules: list[torch.nn.Module], env: DistEnv) -> None:
    "Broadcast rank 0's parameters and buffers, so every process starts from identical weights."
    if not env.distributed: return
    for m in modules:
        for t in list(m.parameters()) + list(m.buffers()): dist.broadcast(t.data, 0)


def sync_batchnorm(module: torch.nn.Module, env: DistEnv) -> torch.nn.Module:
    "BatchNorm layers synchronised over processes on GPUs; on CPU (no synchronised BatchNorm) a warning."
    if not env.distributed or not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in module.modules()):
        return module
    if env.device.type == "cuda": return torch.nn.SyncBatchNorm.convert_sync_batchnorm(module)
    warnings.warn("batch norm statistics are computed per process on CPU (there is no synchronised batch norm there); "
                  "use norm='group' to match single-process training exactly.")
    return module


def all_reduce_mean(x: float | torch.Tensor, env: DistEnv) -> float:
    "Mean of a scalar over ranks."
    t = torch.as_tensor(float(x), dtype=torch.float64)
    if env.distributed:
        dist.all_reduce(t)
        t /= env.world_size
    return float(t)


# ----------------------------------------------------------------------------------------------------------
# Precision, schedule, progress

def amp_dtype(env: DistEnv, enabled: bool) -> torch.dtype | None:
    "The mixed-precision type: bfloat16 on GPUs that support it, else float16; None on CPU or when disabled."
    if not enabled or env.device.type != "cuda": return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def autocast(env: DistEnv, enabled: bool):
    "Autocast to `amp_dtype` on CUDA when `enabled`; a no-op context on CPU."
    dtype = amp_dtype(env, enabled)
    return torch.autocast("cuda", dtype=dtype or torch.float16, enabled=dtype is not None)


def make_scaler(env: DistEnv, enabled: bool):
    "A GradScaler, active only for float16 (bfloat16 keeps float32's range and needs none)."
    return torch.amp.GradScaler("cuda", enabled=amp_dtype(env, enabled) == torch.float16)


def lr_at(step: int, lr: float, warmup_steps: int = 0, decay_steps: int = 0, min_ratio: float = 0.0) -> float:
    "Linear warm-up for `warmup_steps`, then cosine decay to `min_ratio·lr` at `decay_steps` (0: constant)."
    if warmup_steps and step < warmup_steps: return lr * (step + 1) / warmup_steps
    if decay_steps <= warmup_steps: return lr
    t = min(1.0, (step - warmup_steps) / max(1, decay_steps - warmup_steps))
    return lr * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * t)))


def progress(steps: range, env: DistEnv, desc: str = "train", enabled: bool = True):
    "A tqdm bar over `steps` on rank 0 (plain iteration elsewhere or when disabled)."
    if not (env.is_main and enabled): return steps
    from tqdm.auto import tqdm
    return tqdm(steps, desc=desc, initial=steps.start, total=steps.stop, dynamic_ncols=True, leave=False)


# ----------------------------------------------------------------------------------------------------------
# Data held in memory

class MemoryDataset(torch.utils.data.Dataset):
    """Every item of `dataset` read once and kept in memory: image tensors in [-1, 1] (keys in `uint8_keys`) are
    stored as uint8 (4× smaller, exact to 1/127.5), other tensors as they are. Decoding videos once instead of
    every step is what makes CPU training on a few hundred clips fast."""
    def __init__(self, dataset, uint8_keys: tuple[str, ...] = ("frames", "frame"), progress: bool = True,
                 drop_keys: tuple[str, ...] = ()):
        from tqdm.auto import tqdm
        self.uint8_keys = set(uint8_keys)
        self.items = []
        for i in tqdm(range(len(dataset)), desc="caching", disable=not progress, leave=False):
            it = dict(dataset[i])
            for k in drop_keys: it.pop(k, None)
            for k in self.uint8_keys & set(it):
                if isinstance(it[k], torch.Tensor) and it[k].is_floating_point():
                    it[k] = ((it[k].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
            self.items.append(it)
        for attr in ("classes", "class_names"):
            if hasattr(dataset, attr): setattr(self, attr, getattr(dataset, attr))

    def __len__(self) -> int: return len(self.items)

    def __getitem__(self, i: int) -> dict:
        it = dict(self.items[i])
        for k in self.uint8_keys & set(it):
            if isinstance(it[k], torch.Tensor) and it[k].dtype == torch.uint8: it[k] = it[k].float() / 127.5 - 1
        return it
