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


def _run_all():
    import importlib.util
    spec = importlib.util.spec_from_file_location("run_all", PF / "run_all.py")
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod


def test_committed_quick_results_match_the_code():
    """A committed quick result is stale when its config hash no longer matches its notebook, parameters and bundle,
    or when a package file it was made with has changed since."""
    from sound_video_gen.apps.figures import result_config
    from sound_video_gen.provenance import config_hash, stale_code
    ra = _run_all()
    checked = 0
    for path in sorted((PF / "results").glob("*_quick.json")):
        rec = json.loads(path.read_text())
        for key in ("seed", "config_hash", "protocol", "detector_sha256", "package_version", "git_commit", "code"):
            assert key in rec, (path.name, key)
        name = rec["config"]["notebook"]
        params = ra.effective_params(name, "quick")
        want = config_hash(result_config(name, params, params.get("model")))
        rerun = f"rerun `make figures` (or run_all.py --only {name})"
        assert rec["config_hash"] == want, f"{path.name} is stale: {rerun}"
        assert len(rec["code"]) >= 5 and "core.py" in rec["code"], path.name
        changed = stale_code(rec["code"])
        assert not changed, f"{path.name} is stale: {', '.join(changed)} changed since it was made; {rerun}"
        checked += 1
    assert checked >= 1


def test_the_stale_check_sees_a_changed_package_file(tmp_path):
    import shutil
    import sound_video_gen
    from sound_video_gen.provenance import code_checksums, stale_code
    from sound_video_gen.model import ssvg
    code = code_checksums([sound_video_gen, ssvg])
    assert set(code) == {"__init__.py", "model/ssvg.py"}
    copy = tmp_path / "pkg"
    for rel in code: (copy / rel).parent.mkdir(parents=True, exist_ok=True); shutil.copy(Path(sound_video_gen.__file__).parent / rel, copy / rel)
    assert stale_code(code, copy) == []
    (copy / "model" / "ssvg.py").write_text((copy / "model" / "ssvg.py").read_text().replace("def ", "def  ", 1))
    assert stale_code(code, copy) == ["model/ssvg.py"]
    (copy / "__init__.py").unlink()
    assert stale_code(code, copy) == ["__init__.py", "model/ssvg.py"]


def test_the_config_hash_sees_a_changed_parameter():
    from sound_video_gen.apps.figures import result_config
    from sound_video_gen.provenance import config_hash
    ra = _run_all()
    params = ra.effective_params("table2_generation", "quick")
    base = config_hash(result_config("table2_generation", params, params["model"]))
    assert config_hash(result_config("table2_generation", {**params, "per_class": 21}, params["model"])) != base
    assert config_hash(result_config("table2_generation", {**params, "results_dir": "x"}, params["model"])) == base


def test_full_dry_run_names_what_is_missing(tmp_path):
    res = subprocess.run([sys.executable, str(PF / "run_all.py"), "--profile", "full", "--dry-run"], capture_output=True,
                         text=True, cwd=PF)
    assert res.returncode == 1, res.stderr
    assert "missing i3d: /weights/i3d_torchscript.pt" in res.stdout and "missing datasets.Landscape" in res.stdout
    assert "missing test_data: /data/lhq-test" in res.stdout and "missing lpips: /weights/lpips" in res.stdout
    assert "missing config" not in res.stdout          # inverter-paper is a named config that ships
    res = subprocess.run([sys.executable, str(PF / "run_all.py"), "--profile", "quick", "--dry-run"], capture_output=True,
                         text=True, cwd=PF)
    assert res.returncode == 0 and "everything is in place" in res.stdout


def test_every_profile_lists_existing_notebooks():
    ra = _run_all()
    for profile in ra.PROFILES:
        for name in ra.profile_params(profile):
            assert (PF / f"{name}.ipynb").exists(), (profile, name)
            assert set(ra.profile_params(profile)[name]) <= set(ra.notebook_defaults(name)), (profile, name)


def test_dry_run_names_an_unknown_config():
    ra = _run_all()
    params = ra.effective_params("inversion_ablation", "quick")
    assert ra.missing_paths(params) == []
    miss = ra.missing_paths({**params, "config": "no-such-config"})
    assert len(miss) == 1 and miss[0].startswith("config: no-such-config (no config named")
