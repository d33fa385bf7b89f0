"""Registries: the one place a space, a searcher or an evaluator is found by name.

A registry holds *entries* (a name, the object or where to import it, and metadata such
as a searcher's kind and options). Things register themselves with a decorator
(timm-style: ``@register_searcher("darts")``) when their module is imported. Which module
registers a name is found without importing anything:

* built-ins: the modules of nasbench's own package for that kind (``nasbench.searchers``,
  ``nasbench.spaces``) are read as source (``ast``) for their registration calls, so a
  new searcher or space is one file, with nothing else to edit;
* plugins from other packages: entry points (``importlib.metadata``), the way pytest and
  timm find plugins::

      [project.entry-points."nasbench.searchers"]
      toy = "toy_plugin"          # importing toy_plugin registers the method "toy"

So listing the names (``--help``) imports nothing, and a name's module is imported on
first use. A declaration that is light (no torch, no optuna) keeps ``--help`` fast:
nasbench's searchers declare their options in ``*_config.py`` modules
(:func:`declare_searcher`) and point at the heavy implementation with a
``"module:attr"`` string; a module that declares a name is preferred to one that only
decorates its implementation.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nasbench.errors import UserError


@dataclass
class Entry:
    """One registered name: ``target`` is the object or ``"module:attr"``; ``meta`` the
    declaration (a searcher's ``kind``, ``config``, ``summary``...)."""

    name: str
    target: Any
    meta: dict = field(default_factory=dict)

    def load(self) -> Any:
        """Returns the registered object, importing it when it was declared by path."""
        if isinstance(self.target, str):
            module, _, attr = self.target.partition(":")
            obj = importlib.import_module(module)
            for part in filter(None, attr.split(".")):
                obj = getattr(obj, part)
            self.target = obj
        return self.target


class Registry:
    """Name -> :class:`Entry` for one kind of thing (``what``: "search space"...),
    discovered through the entry-point ``group``; ``option`` is the CLI option that
    names one (for error messages)."""

    def __init__(self, what: str, group: str, option: str, package: str,
                 calls: tuple[str, ...]):
        self.what, self.group, self.option = what, group, option
        self.package, self.calls = package, calls
        self._entries: dict[str, Entry] = {}
        self._points: dict[str, Any] | None = None
        self._builtins: dict[str, str] | None = None
        self._loading: set[str] = set()

    # ---- registration -------------------------------------------------------------------

    def add(self, names: tuple[str, ...], target: Any, **meta) -> None:
        """Registers ``target`` (an object or ``"module:attr"``) under each of ``names``;
        raises ValueError when a name is taken by another object. Registering the object
        a declaration pointed at completes that declaration (its meta is kept)."""
        for name in names:
            old = self._entries.get(name)
            if old is not None and old.target is not target:
                declared = isinstance(old.target, str) and not isinstance(target, str) \
                    and f"{target.__module__}:{target.__qualname__}" == old.target
                if declared:
                    old.target = target
                    old.meta = {**meta, **old.meta}
                    continue
                if isinstance(target, str) and not isinstance(old.target, str) and \
                        f"{old.target.__module__}:{old.target.__qualname__}" == target:
                    old.meta = {**old.meta, **meta}
                    continue
                raise ValueError(f"{self.what} {name!r} is already registered")
            self._entries[name] = Entry(name, target, dict(meta))

    def register(self, *names: str, **meta) -> Callable:
        """Decorator: registers the decorated object under ``names``; returns it."""
        def decorate(obj):
            self.add(names, obj, **meta)
            return obj
        return decorate

    # ---- lookup -------------------------------------------------------------------------

    def _entry_points(self) -> dict[str, Any]:
        if self._points is None:
            from importlib.metadata import entry_points
            self._points = {ep.name: ep for ep in entry_points(group=self.group)}
        return self._points

    def _builtin_modules(self) -> dict[str, str]:
        """Returns {name: module} of the built-ins: the registration calls
        (``self.calls``, e.g. ``register_searcher("darts")``) in the source of the
        package's modules, read with ``ast`` (nothing is imported). A declaration
        (``declare_*``) wins over a decorator of the same name."""
        if self._builtins is None:
            import ast
            from importlib.util import find_spec
            from pathlib import Path
            found: dict[str, tuple[int, str]] = {}
            spec = find_spec(self.package)
            for folder in (spec.submodule_search_locations or []) if spec else []:
                for f in sorted(Path(folder).glob("*.py")):
                    module = f"{self.package}.{f.stem}"
                    for node in ast.walk(ast.parse(f.read_text())):
                        if not isinstance(node, ast.Call) or getattr(
                                node.func, "id", getattr(node.func, "attr", None)) \
                                not in self.calls:
                            continue
                        call = getattr(node.func, "id", getattr(node.func, "attr", ""))
                        rank = 0 if call.startswith("declare") else 1
                        for a in node.args:
                            if isinstance(a, ast.Constant) and isinstance(a.value, str):
                                if a.value not in found or rank < found[a.value][0]:
                                    found[a.value] = (rank, module)
            self._builtins = {n: m for n, (_, m) in found.items()}
        return self._builtins

    def names(self) -> list[str]:
        """Returns every name: registered ones, the built-ins found in the package's
        source and those entry points declare. Imports nothing."""
        return list(dict.fromkeys([*self._entries, *self._builtin_modules(),
                                   *sorted(self._entry_points())]))

    def _discover(self, name: str) -> None:
        if name in self._entries or name in self._loading:
            return
        module = self._builtin_modules().get(name)
        if module is not None:
            self._loading.add(name)
            try:
                importlib.import_module(module)
            finally:
                self._loading.discard(name)
            if name in self._entries:
                return
        ep = self._entry_points().get(name)
        if ep is None:
            return
        self._loading.add(name)
        try:
            obj = ep.load()
        except Exception as e:  # noqa: BLE001 - a broken plugin: one line naming it
            raise UserError(f"{self.what} {name!r} (entry point {ep.value!r} of "
                            f"{self.group}) failed to load: {e.__class__.__name__}: "
                            f"{e}") from None
        finally:
            self._loading.discard(name)
        if name not in self._entries and not isinstance(obj, type(importlib)):
            self.add((name,), obj)          # an entry point naming the object itself

    def entry(self, name: str) -> Entry:
        """Returns the entry of ``name`` (importing its declaration module on first
        use); raises UserError naming the known names."""
        if name not in self._entries:
            self._discover(name)
        try:
            return self._entries[name]
        except KeyError:
            raise UserError(f"{self.option} must be one of {', '.join(self.names())}, "
                            f"got {name!r}") from None

    def meta(self, name: str) -> dict:
        """Returns the declaration of ``name`` (imports its light declaration only)."""
        return self.entry(name).meta

    def get(self, name: str) -> Any:
        """Returns the object registered as ``name``, importing it on first use."""
        return self.entry(name).load()

    def __getitem__(self, name: str) -> Any:
        if name not in self:
            raise KeyError(name)
        return self.get(name)

    def pop(self, name: str, default: Any = None) -> Any:
        """Removes a registered name (tests, plugins that unload); returns its entry."""
        return self._entries.pop(name, default)

    def __contains__(self, name: str) -> bool:
        return name in self._entries or name in self._builtin_modules() or \
            name in self._entry_points()

    def load_all(self) -> dict[str, Any]:
        """Returns {name: object} for every name (imports everything)."""
        return {n: self.get(n) for n in self.names()}


SPACES = Registry("search space", "nasbench.spaces", "--space", "nasbench.spaces",
                  ("register_space",))
SEARCHERS = Registry("searcher", "nasbench.searchers", "--method", "nasbench.searchers",
                     ("declare_searcher", "register_searcher"))
EVALUATORS = Registry("evaluator", "nasbench.evaluators", "--evaluate", "nasbench.searchers",
                      ("register_evaluator",))
PROXIES = Registry("zero-cost proxy", "nasbench.proxies", "--proxy", "nasbench.proxies",
                   ("register_proxy",))


def declare_searcher(*names: str, config: type, impl: str, summary: str) -> None:
    """Declares searcher ``names`` from a light module: ``config`` its settings (a
    dataclass of :func:`nasbench.options.option` fields; its ``KIND`` is the family,
    "one-shot" or "multi-trial"), ``impl`` the ``"module:Class"`` that runs it (imported
    only when a search runs), ``summary`` one line for ``--help``."""
    SEARCHERS.add(names, impl, config=config, kind=config.KIND, summary=summary)


def searcher_config(method: str) -> type:
    """Returns the config class of ``method`` (its declaration; imports no heavy
    module when the method was declared light)."""
    meta = SEARCHERS.meta(method)
    return meta["config"] if "config" in meta else SEARCHERS.get(method).config_class


def searcher_kind(method: str) -> str:
    """Returns the family of ``method``: "one-shot" or "multi-trial"."""
    return getattr(searcher_config(method), "KIND", "one-shot")


def lazy_exports(package: str, public: dict[str, str]):
    """Returns a module ``__getattr__`` (PEP 562) for ``package`` that imports each name
    of ``public`` (name -> the module that defines it) on first use and keeps it, so a
    package can offer its API without importing torch or optuna when it is imported."""
    namespace = importlib.import_module(package).__dict__

    def __getattr__(name: str):
        if name in public:
            value = getattr(importlib.import_module(public[name]), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    return __getattr__
