"The package layout: imports flow one way between the concerns, and only `cli/` parses arguments."
import ast
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "sound_video_gen"

# core ← audio, generators, multimodal ← model ← data ← metrics ← train, apps ← cli
LAYER = {"core": 0, "audio": 1, "generators": 1, "multimodal": 1, "model": 2, "data": 3, "metrics": 4,
         "train": 5, "apps": 5, "cli": 6}
# Same-layer packages that may use each other (the arrow's tail is the importer).
ALLOWED_SIDEWAYS: set = set()


def concern(module: str) -> str | None:
    "'sound_video_gen.model.ssvg' -> 'model'; None for the package root and generated files."
    parts = module.split(".")
    if parts[0] != "sound_video_gen" or len(parts) < 2 or parts[1] in ("_modidx",): return None
    return parts[1]


def modules():
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG.parent).with_suffix("")
        name = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        yield name, path, path.name == "__init__.py"


def imports(name: str, path: Path, is_pkg: bool):
    "Every sound_video_gen module imported by this file (module level and inside functions)."
    package = name if is_pkg else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for a in node.names: yield a.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not node.module or node.level:  # `from . import x` / `from .pkg import x`: x may be a module
                for a in node.names: yield f"{target}.{a.name}", node.lineno
            yield target, node.lineno


def test_every_concern_is_a_known_package():
    found = {concern(n) for n, _, _ in modules()} - {None}
    assert found == set(LAYER), found ^ set(LAYER)


def test_imports_flow_one_way():
    bad = []
    for name, path, is_pkg in modules():
        src = concern(name)
        if src is None: continue
        for target, line in imports(name, path, is_pkg):
            dst = concern(target)
            if dst is None or dst == src or dst not in LAYER: continue
            if LAYER[dst] < LAYER[src] or (src, dst) in ALLOWED_SIDEWAYS: continue
            bad.append(f"{path.relative_to(PKG.parent)}:{line} ({src}) imports {target} ({dst})")
    assert not bad, "imports against the layering:\n" + "\n".join(bad)


def test_the_checker_sees_an_upward_import(tmp_path):
    "The test above can fail: an upward import in a module is reported."
    f = tmp_path / "ssvg.py"
    f.write_text("from ..metrics.bench import benchmark\ndef f():\n    from sound_video_gen.cli import main\n")
    found = [t for t, _ in imports("sound_video_gen.model.ssvg", f, False)]
    assert "sound_video_gen.metrics.bench" in found and "sound_video_gen.cli" in found


def test_only_cli_parses_arguments():
    offenders = []
    for name, path, is_pkg in modules():
        if concern(name) == "cli": continue
        for target, line in imports(name, path, is_pkg):
            if target.split(".")[0] in ("argparse", "optparse", "click"): offenders.append(f"{name}:{line}")
    assert not offenders, offenders


def test_top_level_names_are_lazy_and_resolve():
    code = ("import sys, sound_video_gen as s; assert 'torch' not in sys.modules, 'import pulled in torch'; "
            "assert s.get_config('mel-tiny').n_mels > 0; assert callable(s.load_generator) and callable(s.train_ssvg); "
            "print(len(s.__all__))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    import sound_video_gen as s
    for n in s.__all__:
        assert getattr(s, n) is not None
    with pytest.raises(AttributeError): s.no_such_name
