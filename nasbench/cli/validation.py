"""One validation for every command's options (:mod:`nasbench.options` does the checks):
every float option rejects NaN and infinities, every option that lists names rejects a
name given twice (and unknown ones, where the names come from a registry). Applied to
the whole click tree by :func:`harden`, so a new command gets it without a line."""

from __future__ import annotations

import click

from nasbench.options import base_type, check_names, check_number
from nasbench.registry import SEARCHERS

#: (command path, option) -> the names it may list (None: any); a comma-separated list
#: of names is declared here once and checked for duplicates and unknown names
NAME_LISTS = {
    ("bench", "--method"): lambda: SEARCHERS.names(),
    ("bench", "--device"): None,
    ("profile", "--batch"): None,
}


def _names_callback(flag: str, allowed, previous):
    def check(ctx, param, value):
        if previous is not None:
            value = previous(ctx, param, value)
        if isinstance(value, str) and value.strip():
            check_names(flag, value, allowed() if callable(allowed) else allowed)
        return value
    return check


def _finite_callback(flag: str, previous):
    def check(ctx, param, value):
        if previous is not None:
            value = previous(ctx, param, value)
        for v in (value if isinstance(value, (list, tuple)) else (value,)):
            if isinstance(v, float):
                check_number(flag, v)
        return value
    return check


def _is_float(p) -> bool:
    """Returns whether option ``p`` takes a float (click's type, or typer's annotation:
    typer may bundle its own click, whose options describe their type elsewhere)."""
    if isinstance(getattr(p, "type", None), click.types.FloatParamType):
        return True
    td = getattr(p, "type_descriptor", None)
    return td is not None and base_type(td.annotation) is float


def harden(group: click.Command, path: tuple[str, ...] = ()) -> None:
    """Walks the command tree under ``group`` and puts the one validation on every
    option: floats must be finite, lists of names must not repeat a name."""
    for p in group.params:
        flag = p.opts[0] if getattr(p, "opts", None) else p.name
        if _is_float(p) and not getattr(p, "_finite_checked", False):
            p.callback = _finite_callback(flag, p.callback)
            p._finite_checked = True
        key = (" ".join(path), p.opts[0] if p.opts else "")
        if key in NAME_LISTS and not getattr(p, "_names_checked", False):
            p.callback = _names_callback(key[1], NAME_LISTS[key], p.callback)
            p._names_checked = True
    for name, sub in getattr(group, "commands", {}).items():
        harden(sub, (*path, name))
