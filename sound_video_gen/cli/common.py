"""What every command shares: a parser whose errors are one sentence, one `--set KEY=VALUE` syntax with dotted keys
for nested configs, and the flags of the training stages, each with one name and one meaning.

| flag | meaning |
|---|---|
| `DATA` (positional) | the dataset folder |
| `--run-dir` | the run folder (config.json, log.jsonl, checkpoints, exported weights) |
| `--config` | a JSON file with the stage's config; the flags below override it |
| `--set KEY=VALUE` | any other config field; dotted keys reach nested configs (`--set model.sound=first`) |
| `--frames` | frames per training clip |
| `--workers` | DataLoader worker processes (or, for `synthscapes`, generator processes) |
| `--threads` | torch CPU threads |
| `--overwrite` | replace what is there (a run folder is started again, an output file is replaced) |
"""
from __future__ import annotations
import argparse
import os
import json
import math
import re
from pathlib import Path

import torch

from sound_video_gen.core import Config, UserError, get_config

__all__ = ["ArgParser", "ranged", "SEED", "FRAMES", "SIZE", "WORKERS", "THREADS", "SECONDS", "FPS", "STEPS", "BATCH", "LR",
           "PSI", "SAMPLE_RATE", "parse_sets", "merge", "add_stage_args", "stage_config", "set_threads", "check_out"]


class ArgParser(argparse.ArgumentParser):
    """An argparse parser whose errors are `UserError`s (one sentence, exit code 2), and that reads `-1e30`, `-inf`
    and `-1,1,1` as values (argparse's own test for a negative number knows only `-1` and `-1.5`)."""
    _NEGATIVE = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?(,.*)?$|^-(inf|infinity|nan)$", re.I)

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self._negative_number_matcher = self._NEGATIVE

    def error(self, message):
        raise UserError(f"{message} (see '{self.prog} --help').")


def ranged(kind: type, lo: float | None = None, hi: float | None = None, open_lo: bool = False):
    "An argparse `type`: an int or a finite float in [lo, hi] (or (lo, hi] with `open_lo`), else one sentence."
    noun = "an integer" if kind is int else "a number"
    span = f"{'(' if open_lo else '['}{lo}, {hi}]"
    def parse(text: str):
        try: v = kind(text)
        except ValueError: raise argparse.ArgumentTypeError(f"expected {noun}, got {text!r}") from None
        if kind is float and not math.isfinite(v): raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
        if (lo is not None and (v < lo or (open_lo and v == lo))) or (hi is not None and v > hi):
            raise argparse.ArgumentTypeError(f"must be in {span}, got {text}")
        return v
    parse.__name__ = kind.__name__
    return parse


# The numeric options, with the bounds that keep memory and time finite.
SEED = ranged(int, 0, 2**32 - 1)
FRAMES = ranged(int, 1, 4096)
SIZE = ranged(int, 8, 4096)
WORKERS = ranged(int, 0, 64)
THREADS = ranged(int, 1, 256)
SECONDS = ranged(float, 0, 86_400, open_lo=True)
FPS = ranged(float, 0, 240, open_lo=True)
STEPS = ranged(int, 0, 10**9)
BATCH = ranged(int, 1, 65_536)
LR = ranged(float, 0, 10, open_lo=True)
PSI = ranged(float, -2, 2)
SAMPLE_RATE = ranged(int, 4000, 192_000)


def parse_sets(pairs: list[str]) -> dict:
    "`['a.b=1', 'c=x']` -> `{'a': {'b': 1}, 'c': 'x'}`: values are JSON when they parse, else strings."
    out: dict = {}
    for pair in pairs:
        key, eq, text = pair.partition("=")
        if not eq or not key: raise UserError(f"--set takes KEY=VALUE, got {pair!r}.")
        try: value = json.loads(text)
        except json.JSONDecodeError: value = text
        *parents, leaf = key.split(".")
        node = out
        for p in parents:
            node = node.setdefault(p, {})
            if not isinstance(node, dict): raise UserError(f"--set {key}: {p} is given both a value and sub-keys.")
        node[leaf] = merge(node[leaf], value) if isinstance(node.get(leaf), dict) and isinstance(value, dict) else value
    return out


def merge(base: dict, over: dict) -> dict:
    "`base` with `over` applied; nested dicts (sub-configs) are merged key by key, not replaced."
    out = dict(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def add_stage_args(p: argparse.ArgumentParser, lr: bool = True) -> argparse.ArgumentParser:
    "The flags every training stage takes."
    p.add_argument("data", help="dataset folder (SynthScapes, Landscape, Sub-URMP or <class>/<clip> videos)")
    p.add_argument("--run-dir", required=True, help="run folder: config.json, log.jsonl, checkpoints, exported weights")
    p.add_argument("--config", help="a JSON file with the stage's config (the flags below override it)")
    p.add_argument("--max-steps", type=STEPS, help="stop after this many steps (a resumed run continues to it)")
    p.add_argument("--batch-size", type=BATCH, help="global batch size")
    if lr: p.add_argument("--lr", type=LR, help="peak learning rate")
    p.add_argument("--seed", type=SEED, help="seed of every random draw")
    p.add_argument("--device", help="cpu, cuda or auto")
    p.add_argument("--ckpt-every", type=STEPS, help="write the resumable checkpoint every N steps")
    p.add_argument("--workers", type=WORKERS, help="DataLoader worker processes")
    p.add_argument("--threads", type=THREADS, help="torch CPU threads (1 is fastest on a busy machine; default: torch's choice)")
    p.add_argument("--overwrite", action="store_true", help="discard an existing run in --run-dir and start again")
    p.add_argument("--set", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                   help="other config fields; dotted keys reach nested configs, e.g. --set model.sound=first w_reg=0.5")
    return p


def stage_config(cls: type[Config], a: argparse.Namespace, extra: dict | None = None) -> Config:
    "The stage config: defaults or `--config` (a JSON file or a named config), then the common flags, then `extra`, then `--set`."
    if not a.config: base = cls().to_dict()
    elif a.config.lower().endswith(".json"): base = cls.from_json(a.config).to_dict()
    else:
        named = get_config(a.config)
        if not isinstance(named, cls): raise UserError(f"--config {a.config} is a {type(named).__name__}, not a {cls.__name__}.")
        base = named.to_dict()
    flags = {"run_dir": a.run_dir, "max_steps": a.max_steps, "batch_size": a.batch_size, "lr": getattr(a, "lr", None),
             "seed": a.seed, "device": a.device, "ckpt_every": a.ckpt_every, "num_workers": a.workers}
    over = {k: v for k, v in flags.items() if v is not None}
    unknown = sorted(set(over) - set(base))
    if unknown: raise UserError(f"{cls.__name__} has no {', '.join(unknown)}: drop the flag.")
    return cls.from_dict(merge(merge(merge(base, over), extra or {}), parse_sets(a.set)))


def set_threads(a: argparse.Namespace) -> None:
    "Apply `--threads`."
    if a.threads is not None: torch.set_num_threads(a.threads)


def nothing_to_train(cfg) -> bool:
    "True (after saying so) when `max_steps` is 0: a stage asked to train nothing writes nothing, not untrained weights."
    if getattr(cfg, "max_steps", None) == 0:
        print("nothing to do: --max-steps 0 trains nothing, so no run folder or weights are written.")
        return True
    return False


def check_data_dir(path) -> Path:
    "A dataset folder that exists and is a folder (not a file, a FIFO or a device), or one sentence."
    p = Path(path)
    if p.is_dir(): return p
    if not p.exists(): raise UserError(f"dataset folder {p} does not exist.")
    raise UserError(f"the dataset {p} is a file, not a folder; give the folder that holds the clips (and synthscapes.json).")


def check_out(path: str | Path, overwrite: bool, suffixes: tuple[str, ...] | None = None, inputs=()) -> Path:
    """Refuse an output path whose folder is missing, whose suffix is wrong, that exists without `--overwrite`, or
    that is one of the command's `inputs` (the same file by resolved path or by inode: a link or a hard link too)."""
    out = Path(path)
    for i in inputs:
        if i is None or not out.exists(): continue
        try: same = os.path.samefile(out, i)
        except OSError: same = False
        if same: raise UserError(f"the output {out} is the input {i}; writing it would destroy the input, so pick another -o.")
    if suffixes and out.suffix.lower() not in suffixes:
        raise UserError(f"output must end in {', '.join(suffixes)}, got {out.name!r}.")
    if out.parent.exists() and not out.parent.is_dir(): raise UserError(f"{out.parent} is a file, not a folder.")
    if not out.parent.is_dir(): raise UserError(f"output folder {out.parent} does not exist.")
    if out.is_dir(): raise UserError(f"{out} is a folder; give a file name.")
    if out.exists() and not overwrite: raise UserError(f"{out} already exists; pass --overwrite to replace it.")
    return out
