"""Packaging: settings.ini is the single list of dependencies; environment.yml and constraints.txt agree with it."""
import configparser, re, shlex
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _settings():
    cfg = configparser.ConfigParser(delimiters=["="])
    cfg.read(ROOT / "settings.ini")
    return cfg["DEFAULT"]


def _name(req):
    return re.split(r"[<>=!~\[;\s]", req, maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_only_installs_the_package():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    conda = [d for d in deps if isinstance(d, str)]
    pips = [d for d in deps if isinstance(d, dict)]
    assert sorted(_name(d) for d in conda) == ["pip", "python"]
    python = next(d for d in conda if d.startswith("python"))
    assert python.split("=")[1] == _settings()["min_python"]
    assert len(pips) == 1 and pips[0]["pip"][-1] == "-e .[dev]"
    # nothing from settings.ini is listed a second time
    listed = {_name(r) for r in shlex.split(_settings()["requirements"]) + shlex.split(_settings()["dev_requirements"])}
    extra = [p for p in pips[0]["pip"] if not p.startswith("-")]
    assert not ({_name(p) for p in extra} & listed)


def test_constraints_only_pin_declared_or_transitive_packages():
    s = _settings()
    declared = {_name(r) for r in shlex.split(s["requirements"]) + shlex.split(s["dev_requirements"])}
    pins = [l.split("#")[0].strip() for l in (ROOT / "constraints.txt").read_text().splitlines()]
    pins = [p for p in pins if p]
    # every pinned package the project itself asks for must be declared in settings.ini
    direct = {"torch", "torchaudio", "torchvision", "open-clip-torch", "nbdev", "papermill", "numpy", "scipy",
              "av", "soundfile", "safetensors"}
    for p in pins:
        n = _name(p)
        if n in direct:
            assert n in declared, f"{n} is pinned in constraints.txt but not listed in settings.ini"
    # the nbdev pins from the install notes are the ones in force
    assert "nbdev==2.4.14" in pins and "execnb==0.1.18" in pins


def test_console_script_and_nbdev_settings():
    s = _settings()
    assert s["console_scripts"].startswith("sound-video-gen=sound_video_gen.cli:main")
    assert s["tst_flags"].split() == ["notest", "slow", "cuda", "weights"]
    assert s["allowed_cell_metadata_keys"].strip() == "tags"


def test_no_notebook_renders_the_readme():
    "README.md is hand-written: settings.ini's readme_nb names no notebook, so no nbdev command can overwrite it."
    readme_nb = _settings()["readme_nb"].strip()
    assert readme_nb and not (ROOT / "nbs" / readme_nb).exists(), f"nbs/{readme_nb} would be rendered over README.md"


def test_every_notebook_exports_an_existing_module():
    import json
    for nb in sorted((ROOT / "nbs").glob("[0-9]*.ipynb")):
        cells = json.loads(nb.read_text())["cells"]
        exp = [c for c in cells if c["cell_type"] == "code" and "".join(c["source"]).startswith("#| default_exp")]
        if not exp:
            continue
        mod = "".join(exp[0]["source"]).split()[-1]
        assert (ROOT / "sound_video_gen" / (mod.replace(".", "/") + ".py")).exists(), nb.name
