"""One validation for every option, checked over the whole command tree (no list of
commands here: a new command or a new searcher is covered without a line).

Every case runs ``nasbench.cli.main`` in-process in an empty folder and asserts exit
status 2, exactly one non-empty line on stderr naming the culprit, no traceback, and
nothing new on disk:

* every float option of every command (and of every searcher's ``search``) rejects
  ``nan`` and ``inf``;
* every option that lists names rejects a name given twice;
* every ``NASBENCH_*`` variable (:data:`nasbench.options.ENV`) rejects garbage, before
  any command runs.
"""

from __future__ import annotations

import os
import typing
from pathlib import Path

import pytest

from nasbench.cli import command
from nasbench.cli.search import SearchCommand
from nasbench.cli.validation import NAME_LISTS
from nasbench.options import ENV, declared, flag_of
from nasbench.registry import SEARCHERS, searcher_config

# --------------------------------------------------------------------------------------
# the harness
# --------------------------------------------------------------------------------------


def _tree(cmd, path: tuple[str, ...] = ()):
    """Yields (command path, leaf command) for every command under ``cmd``."""
    subs = getattr(cmd, "commands", None)
    if subs:
        for name, sub in subs.items():
            yield from _tree(sub, (*path, name))
    else:
        yield path, cmd


def _is_float(p) -> bool:
    """Whether a click (or typer) parameter takes a float."""
    t = getattr(p, "type", None)
    if t is not None:
        return any(k.__name__ == "FloatParamType" for k in type(t).__mro__)
    desc = getattr(p, "type_descriptor", None)          # typer's own parameters
    if desc is None:
        return False
    a = desc.annotation
    return float in ([x for x in typing.get_args(a) if x is not type(None)] or [a])


def _search_floats(method: str) -> list[str]:
    """Returns the float options ``search --method METHOD --help`` shows: the click
    floats and the settings declared as floats (some parse text, e.g. 4ms)."""
    cmd = SearchCommand("search")
    cmd._build(method)
    flags = [p.opts[0] for p in cmd.params if _is_float(p) and not p.hidden]
    flags += [flag_of(f, o) for f, o, typ in declared(searcher_config(method))
              if typ is float]
    return list(dict.fromkeys(flags))


def _leaves() -> dict[tuple[str, ...], object]:
    return {path: cmd for path, cmd in _tree(command()) if path != ("search",)}


#: harmless values for required parameters that the command checks before the float
#: (default: a path that does not exist)
REQUIRED = {("data", "fetch", "name"): "nb201"}


def extra_args(path: tuple[str, ...], tmp: Path, but: str | None = None) -> list[str]:
    """Returns what makes a command fail fast, and late (after its options are
    checked), should an option slip through: nothing is profiled, fetched or searched
    (``but``: an option the case gives itself)."""
    if path[0] == "search":
        guard = {"--out": tmp / "runs", "--lut": tmp / "missing-lut.json",
                 "--dataset": "synthetic", "--references": "none"}
        return [str(x) for k, v in guard.items() if k != but for x in (k, v)]
    if path == ("profile",):
        return ["--device", "no-such-device"]
    if path == ("data", "fetch"):
        return ["--to", str(tmp / "fetched"), "--from", str(tmp / "missing-download")]
    return []


def required_args(path: tuple[str, ...], tmp: Path) -> list[str]:
    """Returns the command's required arguments and options, filled with harmless
    values (see :data:`REQUIRED`)."""
    if path[0] == "search":
        return []
    out: list[str] = []
    for p in _leaves()[path].params:
        if not p.required:
            continue
        value = REQUIRED.get((*path, p.name), str(tmp / "missing"))
        out += [value] if p.param_type_name == "argument" else [p.opts[0], value]
    return out


# --------------------------------------------------------------------------------------
# a. floats: nan and inf
# --------------------------------------------------------------------------------------

#: options that take a number as text (parsed by the command: 10%, 4ms...)
TEXT_FLOATS = [(("lut", "diff"), "--threshold"), (("bench",), "--latency-target")]

#: what makes an option meaningful (so that the value itself is judged)
CONTEXT = {(("bench",), "--energy-target"): ["--objective", "acc+energy"]}

#: known gaps: (command path, option, value or None for both) -> the reason
XFAIL: dict = {}


def _float_cases():
    cases = []
    for path, cmd in _leaves().items():
        for p in cmd.params:
            if _is_float(p):
                cases.append((path, p.opts[0]))
    cases += TEXT_FLOATS
    for method in SEARCHERS.names():
        cases += [(("search", "--method", method), flag) for flag in _search_floats(method)]
    out = []
    for path, flag in dict.fromkeys(cases):
        for value in ("nan", "inf"):
            reason = XFAIL.get((path, flag, value)) or XFAIL.get((path, flag, None))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            out.append(pytest.param(path, flag, value, marks=marks,
                                    id=f"{' '.join(path)} {flag} {value}"))
    return out


FLOAT_CASES = _float_cases()


def test_the_walk_finds_the_float_options():
    ids = {c.id for c in FLOAT_CASES}
    for expected in ("profile --time-cap nan", "bench --cost-weight inf",
                     "lut diff --threshold nan", "search --method darts --cost-weight nan",
                     "search --method darts --latency-target nan"):
        assert expected in ids, expected
    assert all(f"search --method {m} --latency-target nan" in ids for m in SEARCHERS.names())


@pytest.mark.parametrize("path,flag,value", FLOAT_CASES)
def test_float_option_rejects_non_finite(refuse, tmp_path, path, flag, value):
    argv = [*path, flag, value, *CONTEXT.get((path, flag), []),
            *required_args(path, tmp_path), *extra_args(path, tmp_path)]
    line = refuse(argv)
    assert flag in line or "finite" in line, line


# --------------------------------------------------------------------------------------
# b. lists of names: no duplicates
# --------------------------------------------------------------------------------------


def test_bench_methods_given_twice(refuse, tmp_path):
    line = refuse(["bench", "--method", "random,random", "--benchmark-dir",
                   tmp_path / "X"])
    assert "--method" in line and "'random' twice" in line


#: a name each list may hold (default: the first allowed one, else "x")
NAME_SAMPLE = {("profile", "--batch"): "1"}


@pytest.mark.parametrize("key", list(NAME_LISTS), ids=" ".join)
def test_name_list_option_rejects_duplicates(refuse, tmp_path, key):
    path, flag = tuple(key[0].split()), key[1]
    allowed = NAME_LISTS[key]
    allowed = allowed() if callable(allowed) else allowed
    name = NAME_SAMPLE.get(key) or (allowed[0] if allowed else "x")
    line = refuse([*path, flag, f"{name},{name}", *required_args(path, tmp_path),
                   *extra_args(path, tmp_path)])
    assert flag in line and f"'{name}' twice" in line, line


def _search_name_lists():
    out = []
    for method in SEARCHERS.names():
        for f, o, _ in declared(searcher_config(method)):
            if o.names:
                out.append(pytest.param(method, flag_of(f, o), o.choice_list(),
                                        id=f"search --method {method} {flag_of(f, o)}"))
    return out


def test_search_references_given_twice(refuse, tmp_path):
    line = refuse(["search", "--references", "resnet20,resnet20",
                   *extra_args(("search",), tmp_path, but="--references")])
    assert "--references" in line and "'resnet20' twice" in line, line


@pytest.mark.parametrize("method,flag,allowed", _search_name_lists())
def test_search_name_list_rejects_duplicates(refuse, tmp_path, method, flag, allowed):
    name = {"--references": "resnet20"}.get(flag) or (allowed[0] if allowed else "x")
    line = refuse(["search", "--method", method, flag, f"{name},{name}",
                   *extra_args(("search",), tmp_path, but=flag)])
    assert flag in line and f"'{name}' twice" in line, line


# --------------------------------------------------------------------------------------
# c. NASBENCH_* variables
# --------------------------------------------------------------------------------------


def _garbage(kind: str, tmp: Path) -> list[tuple[str, str]]:
    """Returns (case id, value) of malformed or unusable values of a variable kind."""
    if kind == "seconds":
        return [("abc", "abc"), ("nan", "nan"), ("negative", "-1"), ("inf", "inf")]
    if kind == "dir":
        f = tmp / "a-file"
        f.write_text("not a folder")
        out = [("a-file", str(f)), ("under-a-file", str(f / "sub"))]
        if os.geteuid() != 0:                  # root writes into read-only folders
            ro = tmp / "read-only"
            ro.mkdir()
            ro.chmod(0o555)
            out.append(("read-only", str(ro / "sub")))
        return out
    if kind == "folder":
        f = tmp / "a-file"
        f.write_text("not a folder")
        return [("a-file", str(f)), ("under-a-file", str(f / "sub"))]
    if kind == "url":
        return [("ftp", "ftp://example.org/x"), ("not-a-url", "not a url")]
    raise AssertionError(f"no garbage values for NASBENCH_* kind {kind!r}: add them")


ENV_KINDS = {"seconds": ["abc", "nan", "negative", "inf"],
             "dir": ["a-file", "under-a-file", "read-only"],
             "folder": ["a-file", "under-a-file"], "url": ["ftp", "not-a-url"]}


def test_every_variable_kind_has_garbage():
    assert {v.kind for v in ENV.values()} <= set(ENV_KINDS)


def _env_cases():
    out = []
    for name, var in ENV.items():
        for case in ENV_KINDS.get(var.kind, ["?"]):
            for cmd in ("search", "devices"):
                marks = []
                if case == "read-only" and os.geteuid() == 0:
                    marks = [pytest.mark.skip(reason="root writes into read-only folders")]
                out.append(pytest.param(name, case, cmd, marks=marks,
                                        id=f"{name}={case} {cmd}"))
    return out


@pytest.mark.parametrize("name,case,cmd", _env_cases())
def test_environment_variable_rejects_garbage(refuse, tmp_path, monkeypatch, name, case,
                                              cmd):
    values = dict(_garbage(ENV[name].kind, tmp_path))
    monkeypatch.setenv(name, values[case])
    argv = ["search", "--out", tmp_path / "runs"] if cmd == "search" else ["devices"]
    line = refuse(argv)
    assert name in line, line
    assert not (tmp_path / "runs").exists()
