"""Every third-party package the code imports at module level is installed by the plain
`pip install -e .` (the README's first command): declared in pyproject.toml's
dependencies, or required by one of them. A package a test extra happens to bring (click
through mkdocs, say) would otherwise pass here and fail on a user's fresh machine."""

from __future__ import annotations

import ast
import importlib.metadata as md
import re
import sys
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")   # Python 3.11+

ROOT = Path(__file__).resolve().parents[1]
OURS = {"nasbench", "profilers", "kernels", "reports", "tests"}


def _name(req: str) -> str:
    return re.split(r"[\s<>=!~;\[(]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _closure(names: set[str]) -> set[str]:
    """Returns ``names`` and every distribution they require (installed metadata)."""
    todo, seen = list(names), set()
    while todo:
        n = todo.pop()
        if n in seen:
            continue
        seen.add(n)
        try:
            reqs = md.requires(n) or []
        except md.PackageNotFoundError:
            continue
        todo += [_name(r) for r in reqs if "extra ==" not in r]
    return seen


def _module_level_imports(path: Path) -> set[str]:
    """Returns the top-level package names imported at module level (not inside a
    function or a try block: those are optional or delayed on purpose)."""
    out = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return out


def test_module_level_imports_are_installed_by_the_plain_install():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    allowed = _closure({_name(r) for r in project["dependencies"]})
    # kernels/ is the OpenCL executor: its modules are imported only when OpenCL is used
    # (the `opencl` extra), never by the plain install's commands
    opencl = _closure({_name(r) for r in project["optional-dependencies"]["opencl"]})
    dists = {k: {d.lower().replace("_", "-") for d in v}
             for k, v in md.packages_distributions().items()}
    missing = {}
    for pkg in OURS - {"tests"}:
        for f in (ROOT / pkg).rglob("*.py"):
            for mod in _module_level_imports(f):
                if mod in OURS or mod in sys.stdlib_module_names or mod == "__future__":
                    continue
                ok = allowed | (opencl if pkg == "kernels" else set())
                if not dists.get(mod, set()) & ok:
                    missing.setdefault(mod, []).append(str(f.relative_to(ROOT)))
    assert not missing, f"imported but not installed by `pip install -e .`: {missing}"
