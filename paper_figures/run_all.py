"""Re-run the paper-figure notebooks with papermill.

    python paper_figures/run_all.py --profile smoke|quick|full [--only NAME ...] [--dry-run]

Each notebook listed in params/<profile>.yaml runs with those parameters, from this folder, into
out/<notebook>__<profile>.ipynb (git-ignored); the executed copy is the run record (parameters, durations, any
error). Results (small JSON/CSV/Markdown/PNG) land in results/, each JSON with its provenance
(sound_video_gen.provenance: seed, config hash, protocol, detector checksum, package version, git commit, code
checksums). Stops with exit code 1 at the first failure.

Profiles: smoke (minutes on 2 CPU cores; CI runs it), quick (the shipped demo model, no retraining, about half an
hour on 2 CPU cores; its results are committed), full (real datasets and weights, on a GPU). --dry-run runs
nothing: it checks that every file and folder a profile names exists, and names what is missing.
"""
import argparse, ast, json, sys, time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
PROFILES = ("smoke", "quick", "full")
PATH_PARAMS = ("data", "test_data", "datasets", "classifier", "model", "config", "i3d", "lpips", "images", "videos")   # parameters naming files


def notebook_defaults(name: str) -> dict:
    "The values of a notebook's `parameters` cell (literal assignments only)."
    cells = json.loads((HERE / f"{name}.ipynb").read_text())["cells"]
    src = next("".join(c["source"]) for c in cells if "parameters" in c.get("metadata", {}).get("tags", []))
    out = {}
    for node in ast.parse(src).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            out[node.targets[0].id] = ast.literal_eval(node.value)
    return out


def profile_params(profile: str) -> dict:
    "notebook name -> its papermill parameters for `profile`."
    return yaml.safe_load((HERE / "params" / f"{profile}.yaml").read_text()) or {}


def effective_params(name: str, profile: str) -> dict:
    "What the notebook runs with under `profile`: its defaults, overridden by the profile's parameters."
    return {**notebook_defaults(name), **profile_params(profile).get(name, {})}


def _bundle_missing(name_or_path) -> str | None:
    "Why a model bundle cannot be found, or None when it can (a shipped name or a folder)."
    from sound_video_gen.model.bundle import find_bundle
    from sound_video_gen.core import UserError
    try:
        find_bundle(name_or_path)
    except UserError as e:
        return str(e)
    return None


def _config_missing(name) -> str | None:
    "Why a named config or config JSON cannot be loaded, or None when it can."
    from sound_video_gen.core import UserError, get_config
    try:
        get_config(str(name))
    except UserError as e:
        return str(e)
    return None


def missing_paths(params: dict) -> list[str]:
    "'param: path' for every file or folder a notebook's parameters name that does not exist."
    missing = []
    for key in PATH_PARAMS:
        value = params.get(key)
        if not value: continue
        if key in ("model", "config"):
            why = (_bundle_missing if key == "model" else _config_missing)(value)
            if why: missing.append(f"{key}: {value} ({why})")
            continue
        items = value.items() if isinstance(value, dict) else [(None, v) for v in (value if isinstance(value, list) else [value])]
        missing += [f"{key}{'.' + sub if sub else ''}: {v}" for sub, v in items if not Path(str(v)).exists()]
    return missing


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="quick", choices=PROFILES)
    p.add_argument("--only", nargs="*", help="notebook names to run (default: all in the profile)")
    p.add_argument("--dry-run", action="store_true", help="check the files each notebook needs; run nothing")
    a = p.parse_args(argv)
    params = profile_params(a.profile)
    names = a.only or list(params)
    unknown = [n for n in names if not (HERE / f"{n}.ipynb").exists()]
    if unknown:
        print(f"error: no notebook named {', '.join(unknown)} in {HERE}.", file=sys.stderr)
        return 2
    if a.dry_run:
        bad = 0
        for name in names:
            miss = missing_paths(effective_params(name, a.profile))
            bad += len(miss)
            print(f"{name}: {'ready' if not miss else 'missing ' + str(len(miss))}")
            for m in miss: print(f"    missing {m}")
        print(f"{a.profile}: {'everything is in place' if not bad else f'{bad} missing; see above'}")
        return 1 if bad else 0
    (HERE / "out").mkdir(exist_ok=True)
    import papermill as pm
    for name in names:
        t0 = time.time()
        out = HERE / "out" / f"{name}__{a.profile}.ipynb"
        try:
            pm.execute_notebook(str(HERE / f"{name}.ipynb"), str(out), parameters=params.get(name, {}), cwd=str(HERE),
                                kernel_name="python3", progress_bar=False)
        except pm.PapermillExecutionError as e:
            print(f"{name}: FAILED after {time.time() - t0:.0f} s ({e.ename}: {e.evalue}); see {out}", file=sys.stderr)
            return 1
        print(f"{name}: ok in {time.time() - t0:.0f} s -> {out.relative_to(HERE)}")
        if a.profile == "smoke":
            odd = result_shape_differences(name)
            if odd:
                print(f"{name}: its smoke results do not have the keys of the committed quick results: {'; '.join(odd)}",
                      file=sys.stderr)
                return 1
    return 0


def _shape(rec: dict) -> dict:
    "Top-level keys, and for each list of records the union of their keys."
    return {k: sorted(set().union(*v)) if isinstance(v, list) and v and all(isinstance(x, dict) for x in v) else None
            for k, v in rec.items()}


def result_shape_differences(name: str) -> list[str]:
    """For each committed quick result of notebook `name`, how the smoke run's result of the same name differs in its
    keys (so every committed result is one that the notebook's code writes, checked on every CI run)."""
    odd = []
    for quick in sorted((HERE / "results").glob("*_quick.json")):
        rec = json.loads(quick.read_text())
        if rec.get("config", {}).get("notebook") != name: continue
        smoke = quick.with_name(quick.name.replace("_quick.json", "_smoke.json"))
        if not smoke.is_file(): odd.append(f"{smoke.name} was not written"); continue
        a, b = _shape(rec), _shape(json.loads(smoke.read_text()))
        if a != b:
            diff = sorted(set(a) ^ set(b)) or sorted(k for k in a if a[k] != b.get(k))
            odd.append(f"{quick.name} vs {smoke.name}: {', '.join(diff)}")
    return odd


if __name__ == "__main__":
    sys.exit(main())
