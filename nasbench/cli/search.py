"""``nasbench search``, built from the registries: the options every run shares are
:class:`~nasbench.config.RunConfig`'s declared settings, a method's own are its config's
(``nasbench search --method X --help`` lists them). Nothing here names a method: a
searcher added in one file, or by a plugin package, gets its options and help for free.
"""

from __future__ import annotations

import json
import sys

import click

from nasbench.cli.app import JSON_HELP, QUIET_HELP
from nasbench.errors import UserError
from nasbench.options import declared, flag_of
from nasbench.progress import console
from nasbench.registry import SEARCHERS, searcher_config

DEFAULT_METHOD = "darts"
HELP = "Search an architecture for accuracy and device cost, retrain it, measure it."


def _method_in(args: list[str]) -> str:
    """Returns the --method named in ``args`` (the default when none)."""
    for i, a in enumerate(args):
        if a == "--method" and i + 1 < len(args):
            return args[i + 1]
        if a.startswith("--method="):
            return a.split("=", 1)[1]
    return DEFAULT_METHOD


def _click_option(f, o, typ, hidden: bool = False) -> click.Option:
    """Returns the click option of a declared setting (its type, help and default)."""
    flags = [flag_of(f, o)] + ([o.short] if getattr(o, "short", None) else [])
    extra = f" [{o.group}]" if o.group else ""
    default = f.default if f.default is not None and not callable(f.default) else None
    shown = "" if default in (None, "") or typ is bool else f" (default {default})"
    if typ is bool:
        return click.Option([*flags, f.name], is_flag=True, default=False, hidden=hidden,
                            show_default=False, help=o.help + extra)
    # a float's range and finiteness are the config's to judge (one message per setting)
    ctype = click.STRING if o.parse else {int: click.INT, float: click.FLOAT,
                                          str: click.STRING}[typ]
    choices = o.choice_list() if o.choices is not None and not callable(o.choices) \
        else None
    meta = "|".join(choices) if choices else typ.__name__.upper()
    return click.Option([*flags, f.name], type=ctype, default=None, hidden=hidden,
                        show_default=False, metavar=meta, help=o.help + shown + extra)


class SearchCommand(click.Command):
    """``nasbench search``: its options are assembled from the chosen method's declared
    settings when the command line is parsed (see the module doc)."""

    def __init__(self, name: str):
        super().__init__(name, help=HELP, callback=None)
        self._method = DEFAULT_METHOD
        self._build(DEFAULT_METHOD)

    def _build(self, method: str) -> None:
        own = searcher_config(method) if method in SEARCHERS else None
        self.params = [
            click.Option(["--method"], default=DEFAULT_METHOD, show_default=True,
                         metavar="NAME", help="The searcher: " + ", ".join(SEARCHERS.names())
                         + " (--method NAME --help: its own options)."),
            click.Option(["--resume"], default=None, metavar="RUN",
                         help="Continue the run directory RUN from its last checkpoint."),
            click.Option(["--quiet", "-q"], is_flag=True, help=QUIET_HELP),
            click.Option(["--json", "json_out"], is_flag=True, help=JSON_HELP),
        ]
        seen = {"method"}
        if own is not None:
            for f, o, typ in declared(own):
                self.params.append(_click_option(f, o, typ))
                seen.add(f.name)
        # the other methods' options: accepted by the parser (hidden), so that giving
        # one to the wrong method says which methods it applies to
        for name in SEARCHERS.names():
            if name == method:
                continue
            try:
                cls = searcher_config(name)
            except UserError:
                continue
            for f, o, typ in declared(cls):
                if f.name not in seen:
                    seen.add(f.name)
                    self.params.append(_click_option(f, o, typ, hidden=True))
        self._method = method

    def parse_args(self, ctx, args):
        self._build(_method_in(args))
        return super().parse_args(ctx, args)

    def format_epilog(self, ctx, formatter):
        rows = []
        for name in SEARCHERS.names():
            try:
                meta = SEARCHERS.meta(name)
            except UserError as e:
                rows.append((name, str(e)))
                continue
            rows.append((name, f"[{meta.get('kind', 'one-shot')}] {meta.get('summary', '')}"))
        with formatter.section("Methods"):
            formatter.write_dl(rows)

    def invoke(self, ctx):
        return search(ctx)


def search(ctx: click.Context):
    """Runs ``nasbench search`` for the parsed command line ``ctx``; returns the result."""
    from nasbench.run.runner import run_search
    p = ctx.params
    quiet, json_out = p.pop("quiet"), p.pop("json_out")
    method, resume = p.pop("method"), p.pop("resume")
    given = {k for k in p if ctx.get_parameter_source(k) ==
             click.core.ParameterSource.COMMANDLINE}
    if resume is not None:
        from types import SimpleNamespace
        extra = sorted(given - {"out"})
        if extra:
            raise UserError(f"--resume continues a run with its own settings; drop "
                            f"{', '.join('--' + k.replace('_', '-') for k in extra)}")
        result = run_search(SimpleNamespace(out=p.get("out") or "runs"), resume=resume,
                            quiet=quiet or json_out)
        return _finish(result, json_out, quiet)
    cls = searcher_config(method)
    mine = {f.name: (f, o) for f, o, _ in declared(cls)}
    foreign = sorted(given - set(mine))
    if foreign:
        raise UserError(_foreign_message(method, cls, foreign))
    overrides = {}
    for k in given:
        f, o = mine[k]
        v = p[k]
        if o.parse is not None:
            v = o.parse(v)
        overrides[k] = (not v) if o.invert else v
    if "dataset" not in overrides and overrides.get("data_dir"):
        overrides["dataset"] = "cifar10"
    steps = overrides.pop("steps_per_epoch", None)
    cfg = cls.from_preset(overrides.pop("preset", "quick"), method, **overrides)
    if steps is not None:
        cfg = cfg.replace(steps_per_epoch=steps or None)
    return _finish(run_search(cfg, quiet=quiet or json_out), json_out, quiet)


def _foreign_message(method: str, cls, foreign: list[str]) -> str:
    """Returns the one line for options ``foreign`` that ``method`` does not take: the
    methods that take them (by family when they are a whole family), and the config's
    own hint where it declares one (``FOREIGN_HINTS``)."""
    flags = ", ".join(_flag(k) for k in foreign)
    users = [m for m in SEARCHERS.names() if all(
        k in {f.name for f, _, _ in declared(searcher_config(m))} for k in foreign)]
    kinds = {SEARCHERS.meta(m).get("kind") for m in users}
    family = [m for m in SEARCHERS.names() if SEARCHERS.meta(m).get("kind") in kinds]
    if users and len(kinds) == 1 and users == family:
        where = f"the {kinds.pop()} methods ({', '.join(users)})"
    elif users:
        where = f"--method {', '.join(users)} only"
    else:
        where = "other methods"
    hints = dict.fromkeys(h for k in foreign
                          if (h := getattr(cls, "FOREIGN_HINTS", {}).get(k)))
    return f"{flags} apply to {where}, not to --method {method}" + \
        "".join(f"; {h}" for h in hints)


def _flag(name: str) -> str:
    for m in SEARCHERS.names():
        for f, o, _ in declared(searcher_config(m)):
            if f.name == name:
                return flag_of(f, o)
    return "--" + name.replace("_", "-")


def _finish(result, json_out: bool, quiet: bool):
    """Prints the result (JSON or the summary); exits 130 when interrupted. A torchrun
    rank other than 0 (status "worker") prints nothing: rank 0 reports the run."""
    from nasbench.run.result import summary_lines
    if result.status == "worker":
        return result
    if json_out:
        sys.stdout.write(json.dumps(result.to_dict(), default=str, indent=1) + "\n")
    elif not quiet:
        console.rule("nasbench search")
        for line in summary_lines(result):
            console.print(line, highlight=False, markup=False)
    if result.status == "interrupted":
        raise click.exceptions.Exit(130)
    return result
