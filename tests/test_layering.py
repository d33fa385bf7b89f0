"""Enforces the layering of the packages (docs/architecture.md) by an AST scan.

Every ``import`` / ``from ... import`` statement of every module of ``nasbench``,
``profilers``, ``kernels`` and ``reports`` counts, those inside functions and methods
included; only imports under ``if TYPE_CHECKING:`` are left out. Each is resolved to
the deepest internal module it names; imports of external packages are ignored.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("nasbench", "profilers", "kernels", "reports")
MAX_LINES = 600

# Top to bottom; a module belongs to the layer of its longest matching prefix.
LAYERS = [
    ["nasbench.cli", "nasbench.__main__", "nasbench.api", "nasbench"],
    ["nasbench.run", "nasbench.diagnostics"],
    ["nasbench.searchers"],
    ["nasbench.oneshot"],
    ["nasbench.benchmarks", "nasbench.validate", "nasbench.device_report"],
    ["nasbench.luts", "nasbench.candidates", "nasbench.train", "nasbench.proxies"],
    ["nasbench.predict", "nasbench.config", "nasbench.distributed"],
    ["nasbench.zoo", "nasbench.spaces"],
    ["nasbench.data", "nasbench.genotypes", "nasbench.ops", "nasbench.seeding", "nasbench.files"],
    ["nasbench.registry", "nasbench.options", "nasbench.errors", "nasbench.progress",
     "nasbench.stats"],
    ["reports"],
    ["profilers"],
    ["kernels"],
]
# Prefixes that match only the module of that exact name (the package's __init__),
# not its submodules: "nasbench" would otherwise swallow every module of the package.
EXACT_ONLY = {"nasbench"}
# Packages that must import no other package of ours.
ISOLATED = {"reports", "kernels"}
CLI = "nasbench.cli"
MAY_IMPORT_CLI = {"nasbench.__main__"}  # besides nasbench.cli and its submodules


# --------------------------------------------------------------------------- graph


def find_modules(root: Path = ROOT) -> dict[str, Path]:
    """Returns {dotted module name: file} for every .py file of PACKAGES under root."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def _deepest_module(name: str, modules: dict[str, Path]) -> str | None:
    """Returns the longest dotted prefix of name that is one of ours, else None."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


class _ImportCollector(ast.NodeVisitor):
    """Collects (imported dotted name, line) of a module, at any depth."""

    def __init__(self, module: str, is_package: bool, modules: dict[str, Path]):
        self.modules = modules
        self.package = module.split(".") if is_package else module.split(".")[:-1]
        self.found: list[tuple[str, int]] = []

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            for child in node.orelse:  # the else branch runs
                self.visit(child)
        else:
            self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        self.found.extend((alias.name, node.lineno) for alias in node.names)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            if node.level > len(self.package):
                return  # beyond the top-level package: Python refuses it too
            base = self.package[:len(self.package) - (node.level - 1)]
            source = ".".join(base + ([node.module] if node.module else []))
        else:
            source = node.module or ""
        for alias in node.names:
            candidate = f"{source}.{alias.name}"
            self.found.append((candidate if candidate in self.modules else source, node.lineno))


def module_imports(module: str, modules: dict[str, Path]) -> dict[str, int]:
    """Returns {internal module imported by module: line of its first import}."""
    path = modules[module]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    collector = _ImportCollector(module, path.name == "__init__.py", modules)
    collector.visit(tree)
    targets: dict[str, int] = {}
    for name, line in collector.found:
        target = _deepest_module(name, modules)
        if target is not None and target != module:
            targets.setdefault(target, line)
    return targets


def import_graph(root: Path = ROOT) -> tuple[dict[str, dict[str, int]], dict[str, Path]]:
    """Returns ({module: {imported module: line}}, {module: file}) of the packages."""
    modules = find_modules(root)
    return {module: module_imports(module, modules) for module in modules}, modules


def strongly_connected_components(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; returns every component, each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        work = [(start, iter(sorted(graph[start])))]
        while work:
            node, successors = work[-1]
            for succ in successors:
                if succ not in index:
                    index[succ] = low[succ] = len(index)
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(sorted(graph.get(succ, ())))))
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    components.append(sorted(component))
    return components


def _example_cycle(graph: dict[str, dict[str, int]], members: list[str]) -> list[str]:
    """Returns a shortest cycle through members[0] inside the component."""
    inside = set(members)
    start = members[0]
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for succ in sorted(graph[node]):
                if succ == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return path[::-1] + [start]
                if succ in inside and succ not in previous:
                    previous[succ] = node
                    following.append(succ)
        frontier = following
    return members + [start]


def layer_of(module: str) -> int | None:
    """Returns the index in LAYERS of module's longest matching prefix, else None."""
    best: tuple[int, int] | None = None
    for layer, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            matches = module == prefix or (
                prefix not in EXACT_ONLY and module.startswith(prefix + "."))
            if matches and (best is None or len(prefix) > best[0]):
                best = (len(prefix), layer)
    return None if best is None else best[1]


def _in_package(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def layering_violations(graph: dict[str, dict[str, int]],
                        modules: dict[str, Path], root: Path = ROOT) -> list[str]:
    """Returns one line per broken rule: upward imports, imports out of an isolated
    package, imports of the CLI, and modules outside every layer."""
    problems = []
    for module in sorted(graph):
        if layer_of(module) is None:
            problems.append(f"{module}: in no layer (add it to LAYERS)")
    for source in sorted(graph):
        for target, line in sorted(graph[source].items()):
            where = f"({modules[source].relative_to(root)}:{line})"
            source_layer, target_layer = layer_of(source), layer_of(target)
            top = source.split(".")[0]
            if (source_layer is not None and target_layer is not None
                    and target_layer < source_layer):
                problems.append(f"{source} -> {target}  upward, layer {source_layer} -> "
                                f"{target_layer} {where}")
            elif top in ISOLATED and not _in_package(target, top):
                problems.append(f"{source} -> {target}  {top} imports nothing of ours {where}")
            elif (_in_package(target, CLI) and not _in_package(source, CLI)
                    and source not in MAY_IMPORT_CLI):
                problems.append(f"{source} -> {target}  only the CLI imports the CLI {where}")
    return problems


# --------------------------------------------------------------------------- tests


@pytest.fixture(scope="module")
def graph_and_modules():
    return import_graph(ROOT)


def test_graph_sees_the_packages(graph_and_modules):
    graph, modules = graph_and_modules
    assert set(PACKAGES) <= set(modules), "the scan found no package file"
    assert any(graph.values()), "the scan found no internal import"


def test_no_import_cycles(graph_and_modules):
    graph, _ = graph_and_modules
    cycles = [c for c in strongly_connected_components(graph) if len(c) > 1]
    message = "\n".join(
        f"cycle of {len(c)}: {', '.join(c)}\n    e.g. {' -> '.join(_example_cycle(graph, c))}"
        for c in cycles)
    assert not cycles, f"import cycles (imports inside functions count):\n{message}"


def test_imports_go_downward_only(graph_and_modules):
    graph, modules = graph_and_modules
    problems = layering_violations(graph, modules)
    assert not problems, "layering broken (docs/architecture.md):\n" + "\n".join(problems)


def test_modules_are_small(graph_and_modules):
    _, modules = graph_and_modules
    sizes = {path.relative_to(ROOT): len(path.read_text(encoding="utf-8").splitlines())
             for path in modules.values()}
    large = {path: n for path, n in sorted(sizes.items()) if n >= MAX_LINES}
    assert not large, f"modules of {MAX_LINES} lines or more:\n" + "\n".join(
        f"{path}: {n} lines" for path, n in large.items())
