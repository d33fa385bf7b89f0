"""Registries: the one place a space, a searcher or an evaluator is found by name.

A registry holds *entries* (a name, the object or where to import it, and metadata such
as a searcher's kind and options). Things register themselves with a decorator
(timm-style) when their module is imported; which modules to import is read from entry
points (``importlib.metadata``), the way pytest and timm find plugins. nasbench declares
its own built-ins through the same entry-point groups in its ``pyproject.toml``, so a
built-in and a plugin from another package are found the same way::

    [project.entry-points."nasbench.searchers"]
    toy = "toy_plugin"            # importing toy_plugin registers the method "toy"

An entry point's *name* is the registered name, so listing the names (``--help``) reads
package metadata only and imports nothing; a name's module is imported on first use.
A declaration module that is light (no torch, no optuna) keeps ``--help`` fast: nasbench's
searchers declare their options in ``*_config.py`` modules and point at the heavy
implementation with a ``"module:attr"`` string.
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

    def __init__(self, what: str, group: str, option: str):
        self.what, self.group, self.option = what, group, option
        self._entries: dict[str, Entry] = {}
        self._points: dict[str, Any] | None = None
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

    def names(self) -> list[str]:
        """Returns every name: registered ones and those entry points declare (in the
        order they were registered, then the declared ones sorted). Imports nothing."""
        return list(dict.fromkeys([*self._entries, *sorted(self._entry_points())]))

    def _discover(self, name: str) -> None:
        ep = self._entry_points().get(name)
        if ep is None or name in self._entries or name in self._loading:
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
        return name in self._entries or name in self._entry_points()

    def load_all(self) -> dict[str, Any]:
        """Returns {name: object} for every name (imports everything)."""
        return {n: self.get(n) for n in self.names()}


SPACES = Registry("search space", "nasbench.spaces", "--space")
SEARCHERS = Registry("searcher", "nasbench.searchers", "--method")
EVALUATORS = Registry("evaluator", "nasbench.evaluators", "--evaluate")


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
