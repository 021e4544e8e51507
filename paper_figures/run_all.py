"""Re-run the paper-figure notebooks with papermill.

    python paper_figures/run_all.py --profile quick [--only table1_datasets]

Each notebook listed in params/<profile>.yaml runs with those parameters, from this folder, into
out/<notebook>__<profile>.ipynb (git-ignored); the executed copy is the run record (parameters, durations, any
error). Results (small JSON/CSV/Markdown) land in results/. Stops with exit code 1 at the first failure.
"""
import argparse, sys, time
from pathlib import Path

import papermill as pm
import yaml

HERE = Path(__file__).resolve().parent


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="quick", choices=["quick", "full"])
    p.add_argument("--only", nargs="*", help="notebook names to run (default: all in the profile)")
    a = p.parse_args(argv)
    params = yaml.safe_load((HERE / "params" / f"{a.profile}.yaml").read_text()) or {}
    names = a.only or list(params)
    unknown = [n for n in names if not (HERE / f"{n}.ipynb").exists()]
    if unknown:
        print(f"error: no notebook named {', '.join(unknown)} in {HERE}.", file=sys.stderr)
        return 2
    (HERE / "out").mkdir(exist_ok=True)
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
