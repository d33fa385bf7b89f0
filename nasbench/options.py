"""Options declared once, validated by one mechanism.

A setting is a dataclass field declared with :func:`option` (its type from the
annotation, its default, its constraint and its help). From that declaration the CLI
builds ``--the-option`` (``nasbench search --method X --help`` lists X's own), and
:func:`check_value` validates what the user gave: non-finite and out-of-range numbers,
unknown names, duplicates in lists of names. The ``NASBENCH_*`` environment variables
the tool reads are declared here too (:data:`ENV`) and read through :func:`env`, so a
malformed or unusable value is one line and exit status 2 before anything is written.
"""

from __future__ import annotations

import dataclasses
import math
import os
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nasbench.errors import UserError, ensure_writable


@dataclass(frozen=True)
class Opt:
    """The declaration of one option: ``help``; numeric bounds ``min``/``max``
    (inclusive) and ``gt`` (exclusive lower bound); ``choices`` (names, or a callable
    returning them, e.g. a registry's names); ``names``: a comma-separated list of
    names (no duplicates; each in ``choices`` when given); ``flag``: the CLI name when
    it is not ``--field-name``; ``group``: where it applies, for help ("nsga2",
    "--evaluate supernet"); ``cli``: False for settings the CLI does not expose;
    ``parse``: turns the CLI's text into the value (e.g. "4ms" -> 4.0); ``invert``: a
    boolean flag that sets the field to False (``--soft-target`` -> hard_target)."""

    help: str
    min: float | None = None
    max: float | None = None
    gt: float | None = None
    choices: Sequence[str] | Callable[[], Sequence[str]] | None = None
    names: bool = False
    flag: str | None = None
    group: str | None = None
    cli: bool = True
    none_ok: bool = True
    parse: Callable[[str], Any] | None = None
    short: str | None = None
    invert: bool = False

    def choice_list(self) -> list[str] | None:
        """Returns the allowed names (None: any)."""
        if self.choices is None:
            return None
        return list(self.choices() if callable(self.choices) else self.choices)


def option(default: Any = dataclasses.MISSING, help: str = "", *,
           default_factory: Any = dataclasses.MISSING, **constraint) -> Any:
    """Returns a dataclass field declared as an option (see :class:`Opt` for the
    ``constraint`` keywords)."""
    meta = {"option": Opt(help=help, **constraint)}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def opt_of(cls, name: str) -> Opt | None:
    """Returns the declaration of field ``name`` of config class ``cls``: its own, or
    the nearest base class's when a subclass only changed the default."""
    for klass in getattr(cls, "__mro__", type(cls).__mro__):
        f = getattr(klass, "__dataclass_fields__", {}).get(name)
        if f is not None and "option" in f.metadata:
            return f.metadata["option"]
    return None


def flag_of(f: dataclasses.Field, o: Opt | None = None) -> str:
    """Returns the CLI flag of a declared field (``--field-name`` by default)."""
    o = o or f.metadata.get("option")
    return (o.flag if o and o.flag else "--" + f.name.replace("_", "-"))


def declared(cls) -> list[tuple[dataclasses.Field, Opt, type]]:
    """Returns (field, declaration, value type) of every option a config class declares
    for the CLI, in field order; the value type is int, float, str or bool."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        o = opt_of(cls, f.name)
        if o is None or not o.cli:
            continue
        out.append((f, o, base_type(hints.get(f.name, str))))
    return out


def base_type(t) -> type:
    """Returns int, float, bool or str for an annotation such as ``int | None``."""
    args = [a for a in typing.get_args(t) if a is not type(None)] or [t]
    t = args[0]
    return t if t in (int, float, bool, str) else str


def check_value(name: str, value: Any, o: Opt) -> Any:
    """Returns ``value`` checked against declaration ``o`` (``name``: the flag, for the
    message); raises UserError (one line) when it is out of range, not finite, unknown
    or lists a name twice."""
    if value is None:
        if not o.none_ok:
            raise UserError(f"{name} needs a value")
        return value
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        check_number(name, value, min=o.min, max=o.max, gt=o.gt)
        return value
    if isinstance(value, str):
        if value == "":                          # unset (or "none"): nothing to check
            return value
        allowed = o.choice_list()
        if o.names:
            check_names(name, value, allowed)
        elif allowed is not None and value not in allowed:
            raise UserError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def setting(cls, text: str) -> tuple[str, Any] | None:
    """Returns (field name, checked value) of ``FLAG=VALUE`` (``target-form=absolute``,
    ``--warmup-epochs=1``) for config class ``cls``, None when ``cls`` declares no such
    option; raises UserError (one line) for malformed text or a bad value."""
    flag, sep, raw = str(text).partition("=")
    if not sep or not flag.strip("- "):
        raise UserError(f"--set {text!r}: write FLAG=VALUE, e.g. --set warmup-epochs=1")
    flag = "--" + flag.strip().lstrip("-")
    for f, o, t in declared(cls):
        if flag_of(f, o) != flag:
            continue
        raw = raw.strip()
        try:
            if o.parse is not None:
                value = o.parse(raw)
            elif t is bool:
                if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(raw)
                value = raw.lower() in ("true", "1", "yes")
            else:
                value = t(raw)
        except (ValueError, TypeError):
            raise UserError(f"--set {text!r}: {flag} takes a {t.__name__}, got {raw!r}"
                            ) from None
        if o.invert:
            value = not value
        return f.name, check_value(flag, value, o)
    return None


def check_number(name: str, value: float, *, min: float | None = None,
                 max: float | None = None, gt: float | None = None) -> float:
    """Returns ``value`` when it is finite and within the bounds; raises UserError."""
    if isinstance(value, float) and not math.isfinite(value):
        raise UserError(f"{name} must be a finite number, got {value}")
    if gt is not None and not value > gt:
        what = "positive" if gt == 0 else f"greater than {gt:g}"
        raise UserError(f"{name} must be {what}, got {value}")
    if min is not None and value < min:
        what = ("positive (at least 1)" if min == 1 and isinstance(value, int) else
                ">= 0" if min == 0 else f"at least {min:g}")
        raise UserError(f"{name} must be {what}, got {value}")
    if max is not None and value > max:
        raise UserError(f"{name} must be at most {max:g}, got {value}")
    return value


def split_names(text: str) -> list[str]:
    """Returns the names of a comma-separated list (blanks dropped)."""
    return [t.strip() for t in str(text).split(",") if t.strip()]


def check_names(name: str, text: str, allowed: Sequence[str] | None = None,
                extra: Sequence[str] = ()) -> list[str]:
    """Returns the names of comma-separated ``text``; raises UserError for a duplicate,
    an empty list, or a name outside ``allowed`` (+ ``extra``, e.g. "none")."""
    names = split_names(text)
    if not names:
        raise UserError(f"{name} needs at least one name, got {text!r}")
    seen = set()
    for n in names:
        if n in seen:
            raise UserError(f"{name} lists {n!r} twice: give each name once")
        seen.add(n)
    if allowed is not None:
        unknown = [n for n in names if n not in allowed and n not in extra]
        if unknown:
            raise UserError(f"{name}: unknown {', '.join(map(repr, unknown))}; known: "
                            f"{', '.join([*allowed, *extra])}")
    return names


def check_finite(cfg) -> None:
    """Raises UserError (one line) for the first float setting of ``cfg`` (a config
    dataclass) that is NaN or infinite."""
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        for x in (v if isinstance(v, (tuple, list)) else (v,)):
            if isinstance(x, float) and not math.isfinite(x):
                raise UserError(f"{flag_of(f, opt_of(type(cfg), f.name))} must be a "
                                f"finite number, got {x}")


def check_config(cfg) -> None:
    """Raises UserError (one line) for the first declared option of ``cfg`` (a config
    dataclass) whose value breaks its declaration (non-finite values: :func:`check_finite`,
    which :meth:`nasbench.config.RunConfig.validate` runs first)."""
    for f in dataclasses.fields(cfg):
        o = opt_of(type(cfg), f.name)
        if o is not None:
            check_value(flag_of(f, o), getattr(cfg, f.name), o)


# --------------------------------------------------------------------------------------
# environment variables
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EnvVar:
    """A ``NASBENCH_*`` variable the tool reads: ``kind`` "dir" (a folder that exists
    or can be created, writable), "folder" (a folder, or a path where one can be made;
    read-only is fine), "seconds" (a finite number >= 0) or "url" (http:// or
    https://)."""

    name: str
    kind: str
    help: str


ENV: dict[str, EnvVar] = {v.name: v for v in (
    EnvVar("NASBENCH_CACHE_DIR", "dir", "the per-user cache (LUTs, reference results, "
           "tuning); default: the platform's cache folder"),
    EnvVar("NASBENCH_DATA_DIR", "folder", "where benchmark tables are read from and "
           "`nasbench data fetch` puts them; default: the cache folder's data/"),
    EnvVar("NASBENCH_DATA_MIRROR", "url", "a mirror of the public sources of `nasbench "
           "data fetch` (default: raw.githubusercontent.com)"),
    EnvVar("NASBENCH_PROGRESS_S", "seconds", "off a terminal: seconds between plain "
           "progress lines (default 30; 0: every update)"),
)}


def env(name: str, default: Any = None) -> Any:
    """Returns the value of declared variable ``name`` parsed by its kind (a Path, a
    float), ``default`` when it is unset or empty; raises UserError (one line) when it
    is malformed or unusable."""
    var = ENV[name]
    raw = os.environ.get(name, "")
    if not raw.strip():
        return default
    if var.kind == "seconds":
        try:
            v = float(raw)
        except ValueError:
            raise UserError(f"{name}={raw!r} must be a number of seconds") from None
        if not math.isfinite(v) or v < 0:
            raise UserError(f"{name}={raw!r} must be a finite number of seconds >= 0")
        return v
    if var.kind == "dir":
        p = Path(raw).expanduser()
        ensure_writable(p, what=name, folder=True)
        return p
    if var.kind == "folder":
        p = Path(raw).expanduser()
        d = p
        while not d.exists() and d != d.parent:
            d = d.parent
        if not d.is_dir():
            raise UserError(f"{name}={raw!r}: {d} is a file, not a folder")
        return p
    if var.kind == "url" and not raw.strip().startswith(("http://", "https://")):
        raise UserError(f"{name}={raw!r} must be an http:// or https:// base URL")
    return raw.strip()


def check_environment() -> None:
    """Raises UserError (one line) for the first declared ``NASBENCH_*`` variable that
    is set to something malformed or unusable."""
    for name in ENV:
        env(name)
