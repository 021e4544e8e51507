"""The paper-figure notebooks run under papermill with their quick profile, and parameters really reach them."""
import json, subprocess, sys
from pathlib import Path

import pytest

PF = Path(__file__).resolve().parent.parent / "paper_figures"


def test_parameters_cell_is_tagged():
    for nb in PF.glob("*.ipynb"):
        cells = json.loads(nb.read_text())["cells"]
        assert any("parameters" in c.get("metadata", {}).get("tags", []) for c in cells), nb.name


def test_unknown_notebook_is_refused():
    res = subprocess.run([sys.executable, str(PF / "run_all.py"), "--only", "no_such_table"], capture_output=True, text=True)
    assert res.returncode == 2 and "no notebook named no_such_table" in res.stderr


@pytest.mark.slow
def test_quick_profile_runs(tmp_path):
    import papermill as pm
    out = tmp_path / "t1.ipynb"
    pm.execute_notebook(str(PF / "table1_datasets.ipynb"), str(out), cwd=str(PF), progress_bar=False,
                        parameters={"profile": "test", "synthscapes_clips": 1, "results_dir": str(tmp_path / "res"),
                                    "work_dir": str(tmp_path / "work")})
    rows = json.loads((tmp_path / "res" / "table1_test.json").read_text())["rows"]
    assert rows[0]["videos"] == 9 and rows[0]["classes"] == 9  # one clip per class: the parameter was used
