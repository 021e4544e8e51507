"`sound-video-gen bench`: train the SynthScapes-Bench classifier, score a method, print a results table."
from __future__ import annotations
import json
from pathlib import Path

from sound_video_gen.cli.common import SEED, ArgParser, ranged
from sound_video_gen.core import UserError, check_regular_file


def _train(argv):
    from sound_video_gen.metrics.bench import SSClassifierConfig, train_classifier
    p = ArgParser(prog="sound-video-gen bench train", description="Train the benchmark's video classifier on the "
                  "train split of a SynthScapes folder; writes RUN_DIR/classifier.safetensors (+ .json), log.jsonl, "
                  "and a resumable ckpt.safetensors.")
    p.add_argument("data", help="SynthScapes dataset folder (metadata.csv + class folders)")
    p.add_argument("--run-dir", required=True, help="output folder (resumes if it holds a checkpoint)")
    p.add_argument("--config", help="SSClassifierConfig JSON file (default: built-in defaults)")
    p.add_argument("--max-steps", type=ranged(int, 1, 10**9), help="override max_steps")
    p.add_argument("--seed", type=SEED, help="override the seed")
    p.add_argument("--overwrite", action="store_true", help="discard an existing run in --run-dir and start again")
    a = p.parse_args(argv)
    cfg = SSClassifierConfig.from_json(a.config) if a.config else SSClassifierConfig()
    if a.max_steps is not None:
        cfg = cfg.replace(max_steps=a.max_steps)
    if a.seed is not None: cfg = cfg.replace(seed=a.seed)
    if not Path(a.data).is_dir(): raise UserError(f"dataset folder {a.data} does not exist.")
    out = train_classifier(a.data, a.run_dir, cfg, resume=not a.overwrite)
    from sound_video_gen.core import read_checkpoint_meta
    _, meta = read_checkpoint_meta(out)
    print(f"wrote {out} (train accuracy {meta['train_acc']:.3f} after {meta['steps']} steps)")
    return 0


def _run(argv):
    from sound_video_gen.metrics.bench import benchmark, results_table
    from sound_video_gen.metrics.baselines import METHODS
    p = ArgParser(prog="sound-video-gen bench run", description="Score one method on SynthScapes-Bench: FVD-SS, "
                  "IS-SS, class consistency and sync; appends a JSON line to --log.")
    p.add_argument("data", help="SynthScapes dataset folder")
    p.add_argument("--classifier", required=True, help="classifier.safetensors from 'bench train'")
    p.add_argument("--method", required=True, choices=sorted(METHODS), help="method to score")
    p.add_argument("--generator", help="generator for latent methods: a config name (random weights, e.g. stylegan2-64), "
                   "a .safetensors generator or an NVlabs .pkl")
    p.add_argument("--split", default="test", choices=["test", "val"], help="sounds that drive the method (default test)")
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--max-clips", type=ranged(int, 2, 10**6), help="only the first N segments (quick runs)")
    p.add_argument("--log", help="append the record to this .jsonl file")
    a = p.parse_args(argv)
    if a.log and not Path(a.log).parent.is_dir(): raise UserError(f"folder {Path(a.log).parent} does not exist.")
    rec = benchmark(a.method, a.split, a.data, a.classifier, a.generator, a.seed, a.max_clips, a.log, progress=True)
    print(results_table([rec]))
    if not rec["results"].get("num_sync"):
        print("note: sync is nan because no clip of this split has a motion driver (the <clip>.motion.npy files "
              "SynthScapes writes next to each video); sync needs them, the other scores do not.")
    return 0


def _table(argv):
    from sound_video_gen.metrics.bench import results_table
    p = ArgParser(prog="sound-video-gen bench table", description="Print the benchmark records of a .jsonl file as a markdown table.")
    p.add_argument("log", help="a .jsonl file written by 'bench run --log'")
    a = p.parse_args(argv)
    path = check_regular_file(a.log, "results file")
    try: text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError: raise UserError(f"{path} is not a UTF-8 text file (expected JSON lines from 'bench run --log').") from None
    recs = []
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip(): continue
        try: r = json.loads(line)
        except (json.JSONDecodeError, RecursionError): raise UserError(f"{path} line {i} is not JSON.") from None
        if not isinstance(r, dict): raise UserError(f"{path} line {i} is a JSON {type(r).__name__}, not an object (a record).")
        if str(r.get("benchmark", "")).startswith("synthscapes-bench"): recs.append(r)
    if not recs: raise UserError(f"{path} holds no SynthScapes-Bench records.")
    print(results_table(recs))
    return 0


SUB = {"train": _train, "run": _run, "table": _table}


def main(argv: list[str] | None = None) -> int:
    argv = list(argv or [])
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: sound-video-gen bench {train,run,table} ...\n\n"
              "  train  train the benchmark classifier on a SynthScapes folder\n"
              "  run    score a method (FVD-SS, IS-SS, consistency, sync)\n"
              "  table  print the records of a results .jsonl as a table")
        return 0
    if argv[0] not in SUB: raise UserError(f"unknown bench command {argv[0]!r}; choose train, run or table.")
    return SUB[argv[0]](argv[1:])
