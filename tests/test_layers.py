"""qtool's imports point down: a module imports only from its own layer or lower ones, at the top of the file.

Layers, lowest first. A shared contract lives below every user of it; an import inside a function is never
needed to dodge a cycle (the command-line layer is the top, so nothing imports it).
"""

import ast
from pathlib import Path

from conftest import REPO

LAYERS = [
    {"errors", "paths", "fingerprint", "machine", "outputs", "capture", "reporting"},
    {"models", "runtime"},                       # architectures and checkpoints; torch-free consumers
    {"profiles", "calibration", "kernels", "fastest"},
    {"infer", "quantization", "export"},
    {"artifacts"},                               # the registry of artifact kinds
    {"eval", "bench", "serve"},
    {"ask", "release"},
    {"cli", "__main__"},
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def _imports(path: Path):
    """(top-level?, imported qtool package or module name) for every qtool import in ``path``."""
    tree = ast.parse(path.read_text())
    nested = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
              for n in ast.walk(f)}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "qtool":
            parts = node.module.split(".")
            targets = [parts[1]] if len(parts) > 1 else [a.name for a in node.names]
            for target in targets:
                yield id(node) not in nested, target


def _package(path: Path) -> str:
    return path.relative_to(REPO / "qtool").parts[0].removesuffix(".py")


def test_every_package_has_a_layer():
    names = {_package(p) for p in (REPO / "qtool").rglob("*.py")} - {"__init__"}
    assert names <= set(RANK), names - set(RANK)


def test_imports_point_down_and_sit_at_the_top():
    wrong = []
    for path in sorted((REPO / "qtool").rglob("*.py")):
        if "smoke" in path.parts or path.name == "__init__.py" and path.parent.name == "qtool":
            continue
        own = _package(path)
        for top_level, target in _imports(path):
            if target == "__version__":
                continue
            if RANK[target] > RANK[own]:
                wrong.append(f"{path.relative_to(REPO)} imports upward: {target}")
            if not top_level:
                wrong.append(f"{path.relative_to(REPO)} imports {target} inside a function")
    assert not wrong, "\n".join(wrong)


def test_the_layer_check_sees_an_upward_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from qtool.eval import dataset\n\ndef f():\n    from qtool import bench\n")
    found = list(_imports(bad))
    assert found == [(True, "eval"), (False, "bench")]
