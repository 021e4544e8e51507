"""One benchmark report: synthesis beside NVlabs' reference code, the stage-0 and stage-3 training steps, `generate`
end to end and the peak RSS of a one-hour sound, written to benchmarks/results/<machine>.json and .md.

    python benchmarks/report.py                         # ours only
    python benchmarks/report.py --nvlabs PATH           # with a checkout of NVlabs/stylegan3 (kept outside this repo)
    make bench [NVLABS=PATH]

Synthesis: each architecture and size in its own process, our generator (seed 0) and NVlabs' `Generator` holding the
same weights (`load_state_dict(strict=True)`), timed alternately `--repeat` times (default 3), medians reported with
every run and the largest difference between the two images. The other figures come from the single-purpose
scripts beside this one (bench_train_generator.py, bench_train_ssvg.py, bench_generate.py), run in subprocesses.
Figures are per machine: compare ratios, or runs on the same machine.
"""
from __future__ import annotations
import argparse, json, os, platform, re, statistics, subprocess, sys, time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SYNTHESIS = [   # (label, named config, overrides, batch)
    ("StyleGAN3-T 64²", "stylegan3-t-64", {}, 8), ("StyleGAN3-T 256²", "stylegan3-t-paper", {}, 1),
    ("StyleGAN3-R 64²", "stylegan3-r-64", {}, 8), ("StyleGAN3-R 256²", "stylegan3-r-64", {"img_resolution": 256}, 1),
    ("StyleGAN2 64²", "stylegan2-64", {}, 8), ("StyleGAN2 256²", "stylegan2-64", {"img_resolution": 256}, 1),
]


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"): return line.split(":", 1)[1].strip()
    except OSError: pass
    return platform.processor() or platform.machine()


def machine_slug() -> str:
    return re.sub(r"[^a-z0-9]+", "-", cpu_name().lower()).strip("-") + f"-{os.cpu_count()}core"


def synthesis_one(config: str, overrides: dict, batch: int, repeat: int, threads: int, nvlabs: str | None) -> dict:
    "Our synthesis and (with `nvlabs`) theirs on the same weights and ws, alternating; medians of `repeat`."
    import torch
    from sound_video_gen.generators.factory import create_generator
    torch.set_num_threads(threads)
    G = create_generator(config, seed=0, **overrides).eval().requires_grad_(False)
    ws = G.mapping(torch.randn(batch, G.z_dim, generator=torch.Generator().manual_seed(1)), None)
    sides = {"ours": lambda: G.synthesis(ws, noise_mode="const")}
    if nvlabs:
        sys.path.insert(0, str(ROOT / "tools"))
        from nvlabs_parity import import_nvlabs, nvlabs_generator
        nv2, nv3 = import_nvlabs(nvlabs)
        N = nvlabs_generator(G.cfg, nv2, nv3).eval().requires_grad_(False)
        N.load_state_dict(G.state_dict(), strict=True)
        sides["nvlabs"] = lambda: N.synthesis(ws, noise_mode="const", force_fp32=True)
    runs = {k: [] for k in sides}
    load0 = os.getloadavg()[0]
    with torch.inference_mode():
        outs = {k: f() for k, f in sides.items()}          # warm-up (filters, allocator) and the images compared
        for _ in range(repeat):
            for k, f in sides.items():
                t = time.perf_counter(); f(); runs[k].append(time.perf_counter() - t)
    rec = {"config": config, "overrides": overrides, "resolution": G.img_resolution, "batch": batch, "threads": threads,
           "ours_s": round(statistics.median(runs["ours"]), 4), "ours_runs_s": [round(r, 4) for r in runs["ours"]],
           "load_avg_1min": [round(load0, 2), round(os.getloadavg()[0], 2)]}   # before and after: other jobs on the machine
    if nvlabs:
        nv = statistics.median(runs["nvlabs"])
        rec.update(nvlabs_s=round(nv, 4), nvlabs_runs_s=[round(r, 4) for r in runs["nvlabs"]],
                   speedup=round(nv / rec["ours_s"], 2), max_abs_diff=float((outs["ours"] - outs["nvlabs"]).abs().max()))
    return rec


def _lines(cmd: list[str], timeout: int = 1800) -> list[dict]:
    "The JSON lines a benchmark script prints."
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                         env={**os.environ, "HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg", "CUDA_VISIBLE_DEVICES": ""})
    out = [json.loads(l) for l in res.stdout.splitlines() if l.startswith("{")]
    if res.returncode or not out: out.append({"error": (res.stderr.strip().splitlines() or ["no output"])[-1], "command": cmd})
    return out


def markdown(rep: dict) -> str:
    m = rep["machine"]
    rerun = lambda r: f" (rerun {r['rerun']})" if "rerun" in r else ""   # rows rerun with --merge
    rows = [f"# Benchmarks on {m['cpu']} ({m['cores']} cores), torch {m['torch']}", "",
            f"{rep['date']}, commit {rep['git_commit'] or 'unknown'}; `python benchmarks/report.py"
            + (" --nvlabs PATH`" if rep["nvlabs"] else "`") + f", medians of {rep['repeat']}.", "",
            "| synthesis | batch | ours (s) | NVlabs (s) | ours vs NVlabs | max abs diff | load avg (1 min) |", "|---|---|---|---|---|---|---|"]
    for r in rep["synthesis"]:
        if "error" in r: rows.append(f"| {r['label']} | — | error: {r['error']} | | | | |"); continue
        load = "–".join(f"{v:.1f}" for v in r["load_avg_1min"]) if "load_avg_1min" in r else "—"
        load += rerun(r)
        rows.append(f"| {r['label']} | {r['batch']} | {r['ours_s']:.3f} | " + (f"{r['nvlabs_s']:.3f} | {r['speedup']:.2f}× | "
                    f"{r['max_abs_diff']:.1e} |" if "nvlabs_s" in r else "— | — | — |") + f" {load} |")
    rows += ["", "| figure | value |", "|---|---|"]
    for r in rep["stage0"]:
        rows.append(f"| stage 0 step, {r.get('config', '?')} (batch {r.get('batch_size', '?')}){rerun(r)} | "
                    + (f"{r['sec_per_step']:.3f} s" if "sec_per_step" in r else f"error: {r.get('error')}") + " |")
    for r in rep["stage3"]:
        rows.append(f"| stage 3 step, bench_train_ssvg {r.get('config', '?')} (batch {r.get('batch', '?')} × {r.get('frames', '?')} frames){rerun(r)} | "
                    + (f"{r['s_per_step']:.3f} s" if "s_per_step" in r else f"error: {r.get('error')}") + " |")
    for r in rep["generate"]:
        if "error" in r: rows.append(f"| generate | error: {r['error']} |"); continue
        what = f"generate, {r['config']} bundle, {r['sound_s']:g} s of sound at {r['fps']:g} fps"
        load = f", load avg {r['load_avg_1min']:.1f}" if "load_avg_1min" in r else ""
        rows.append(f"| {what} (end to end{load}){rerun(r)} | {r['end_to_end_s']:.2f} s |")
        rows.append(f"| {what} (peak RSS){rerun(r)} | {r['peak_rss_mb']:.0f} MB |")
    return "\n".join(rows) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nvlabs", help="a checkout of NVlabs/stylegan3: time their synthesis on the same weights")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--only", nargs="*", choices=["synthesis", "stage0", "stage3", "generate"], help="sections to run (default all)")
    p.add_argument("--rows", nargs="*", help="synthesis rows whose label contains one of these strings (default all), e.g. 'StyleGAN2'")
    p.add_argument("--merge", action="store_true", help="rerun rows into the existing <machine>.json: replace the rows and "
                   "sections run now (marked `rerun` with their date and commit), keep the rest")
    p.add_argument("--out", default=str(HERE / "results"), help="folder for <machine>.json and .md")
    p.add_argument("--one", help=argparse.SUPPRESS)     # internal: one synthesis figure in this process
    a = p.parse_args(argv)
    if a.one:
        config, overrides, batch = json.loads(a.one)
        print(json.dumps(synthesis_one(config, overrides, batch, a.repeat, a.threads, a.nvlabs)), flush=True)
        return 0
    import torch
    sections = a.only or ["synthesis", "stage0", "stage3", "generate"]
    try: commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip() or None
    except OSError: commit = None
    rep = {"machine": {"cpu": cpu_name(), "cores": os.cpu_count(), "torch": torch.__version__, "python": platform.python_version()},
           "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"), "git_commit": commit, "nvlabs": bool(a.nvlabs),
           "repeat": a.repeat, "threads": a.threads, "synthesis": [], "stage0": [], "stage3": [], "generate": []}
    py = sys.executable
    if "synthesis" in sections:
        for label, config, over, batch in SYNTHESIS:
            if a.rows and not any(k in label for k in a.rows): continue
            cmd = [py, __file__, "--one", json.dumps([config, over, batch]), "--repeat", str(a.repeat), "--threads", str(a.threads)]
            if a.nvlabs: cmd += ["--nvlabs", a.nvlabs]
            r = _lines(cmd)[-1]
            rep["synthesis"].append({"label": label, **r}); print(json.dumps(rep["synthesis"][-1]), flush=True)
    if "stage0" in sections:
        rep["stage0"] = _lines([py, str(HERE / "bench_train_generator.py"), "--configs", "train-generator-demo", "--steps", "4",
                                "--warmup", "1", "--threads", str(a.threads), "--repeat", str(a.repeat)])
        print(json.dumps(rep["stage0"]), flush=True)
    if "stage3" in sections:
        rep["stage3"] = _lines([py, str(HERE / "bench_train_ssvg.py"), "--configs", "demo", "--steps", "6", "--threads", str(a.threads)])
        print(json.dumps(rep["stage3"]), flush=True)
    if "generate" in sections:
        rep["generate"] = _lines([py, str(HERE / "bench_generate.py"), "--configs", "shipped", "--threads", str(a.threads)], timeout=3600)
        print(json.dumps(rep["generate"]), flush=True)
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    stem = out / machine_slug()
    if a.merge and stem.with_suffix(".json").is_file():   # a row that looked off (e.g. another job took a core), rerun
        old = json.loads(stem.with_suffix(".json").read_text())
        mark = {"rerun": f"{rep['date']} {(commit or 'unknown')[:7]}"}
        new = {r["label"]: {**r, **mark} for r in rep["synthesis"]}
        rep["synthesis"] = [new.pop(r["label"], r) for r in old.get("synthesis", [])] + list(new.values())
        for k in ("stage0", "stage3", "generate"):
            rep[k] = [{**r, **mark} for r in rep[k]] if k in sections else old.get(k, [])
        rep = {**old, **{k: rep[k] for k in ("synthesis", "stage0", "stage3", "generate")}}
    stem.with_suffix(".json").write_text(json.dumps(rep, indent=2) + "\n")
    stem.with_suffix(".md").write_text(markdown(rep))
    print(f"wrote {stem}.json and {stem}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
