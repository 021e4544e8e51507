"""The package layout: imports flow one way between the concerns, no two modules import each other, and only `cli/`
parses arguments."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "sound_video_gen"

# core ← provenance; both ← audio, generators, multimodal ← model ← data ← metrics ← train, apps ← cli
LAYER = {"core": 0, "provenance": 0, "audio": 1, "generators": 1, "multimodal": 1, "model": 2, "data": 3, "metrics": 4,
         "train": 5, "apps": 5, "cli": 6}
# Same-layer concerns where one may use the other (the importer first); the other way round stays refused.
ALLOWED_SIDEWAYS: set = {("provenance", "core")}


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


def _module_level(tree):
    "The nodes of `tree` that run when the module is imported: all but the bodies of functions (and lambdas)."
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        todo.extend(c for c in ast.iter_child_nodes(node)
                    if not isinstance(c, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))


def imports(name: str, path: Path, is_pkg: bool, module_level: bool = False):
    """Every sound_video_gen module imported by this file (module level and inside functions; with `module_level`,
    module level only)."""
    package = name if is_pkg else name.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    for node in (_module_level(tree) if module_level else ast.walk(tree)):
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


def import_graph(mods) -> dict:
    """Module -> {package module it imports at module level: line}, for `mods` ((name, path, is_pkg) triples). Imports
    inside functions run only when called (often on purpose, to keep an import light), so they make no edge."""
    names = {n for n, _, _ in mods}
    graph = {}
    for name, path, is_pkg in mods:
        edges = graph.setdefault(name, {})
        for target, line in imports(name, path, is_pkg, module_level=True):
            if target in names and target != name: edges.setdefault(target, line)
    return graph


def import_circles(graph: dict) -> list[list[str]]:
    "Circles of `graph` (a depth-first search's back edges), each as its modules with the first repeated at the end."
    found, state, path = [], {}, []
    def visit(m):
        state[m] = "open"; path.append(m)
        for t in sorted(graph.get(m, ())):
            if state.get(t) == "open": found.append(path[path.index(t):] + [t])
            elif t not in state: visit(t)
        path.pop(); state[m] = "done"
    for m in sorted(graph):
        if m not in state: visit(m)
    return found


def _describe(circle, graph, where) -> str:
    "'a.py:1 imports m.b, b.py:2 imports m.a': each step of a circle with its line (`where`: module -> file name shown)."
    return ", ".join(f"{where[a]}:{graph[a][b]} imports {b}" for a, b in zip(circle, circle[1:]))


def test_no_import_circles():
    "No module imports, at module level and through any chain, a module that imports it back (within a concern too)."
    mods = list(modules())
    graph, where = import_graph(mods), {n: p.relative_to(PKG.parent) for n, p, _ in mods}
    circles = import_circles(graph)
    assert not circles, "import circles:\n" + "\n".join(_describe(c, graph, where) for c in circles)


def test_the_checker_sees_an_import_circle(tmp_path):
    "The test above can fail: two modules importing each other are reported; an import inside a function is not an edge."
    (tmp_path / "a.py").write_text("from .b import g\ndef f():\n    from . import c\n")
    (tmp_path / "b.py").write_text("import torch\nfrom sound_video_gen.model.a import f\ndef g(): pass\n")
    (tmp_path / "c.py").write_text("from .a import f\n")
    mods = [(f"sound_video_gen.model.{n}", tmp_path / f"{n}.py", False) for n in "abc"]
    graph = import_graph(mods)
    a, b, c = (f"sound_video_gen.model.{n}" for n in "abc")
    assert graph == {a: {b: 1}, b: {a: 2}, c: {a: 1}}
    assert import_circles(graph) == [[a, b, a]]
    assert _describe(import_circles(graph)[0], graph, {n: p.name for n, p, _ in mods}) == \
        "a.py:1 imports sound_video_gen.model.b, b.py:2 imports sound_video_gen.model.a"


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
