"""``nasbench data``: the benchmark data sets (NAS-Bench-201 / HW-NAS-Bench tables) on
this machine: ``list``, ``fetch NAME``, ``verify [DIR]``, ``where NAME`` (see
:mod:`nasbench.benchmarks.fetch`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from nasbench.cli.app import JsonOut, Quiet
from nasbench.errors import UserError

data_app = typer.Typer(no_args_is_help=True, add_completion=False,
                       help="Benchmark data: list the data sets, fetch them from their "
                            "public sources (checksummed, into the user cache), verify a "
                            "folder, say where one is.")


def _size(n: int | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def _print_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, indent=1, default=str) + "\n")


@data_app.command("list")
def list_cmd(json_out: JsonOut = False):
    """Every data set the tool can use: what it holds, its size and licence, its public
    source, and whether it is here (and where)."""
    from nasbench.benchmarks.catalog import CATALOG, data_root
    from nasbench.benchmarks.fetch import dataset_status
    rows = [dataset_status(d) for d in CATALOG.values()]
    if json_out:
        _print_json({"data_root": str(data_root()), "datasets": rows})
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table
    t = Table(title=f"Benchmark data (data root {escape(str(data_root()))})",
              show_lines=True)
    t.add_column("name", no_wrap=True)
    t.add_column("what", ratio=2)
    t.add_column("download", justify="right", no_wrap=True)
    t.add_column("licence; public source", ratio=2, overflow="fold")
    t.add_column("here", ratio=2, overflow="fold")
    for r in rows:
        repos = dict.fromkeys(f"{s['repo']}@{s['commit'][:7]}" for s in r["sources"]
                              if not s["licence"])
        src = ", ".join(repos) if repos else "not fetched by nasbench"
        if not r["fetchable"]:
            here = f"[dim]{escape(r['how'] or '')}[/]"
        elif r["present"]:
            here = f"[green]yes[/] {escape(r['folder'])}" + (
                "" if r["fetched"] else " [dim](not fetched: no manifest)[/]")
        else:
            here = f"[red]no[/] (nasbench data fetch {escape(r['name'])})"
        t.add_row(f"[bold]{escape(r['name'])}[/]", escape(r["title"]),
                  _size(r["download_bytes"]) if r["fetchable"] else "-",
                  escape(f"{r['licence']}; {src}"), here)
    Console().print(t)


@data_app.command()
def fetch(
    name: str = typer.Argument(..., help="The data set (see `nasbench data list`)."),
    to: Path | None = typer.Option(None, "--to", help="Folder to put it in (default: its "
                                   "folder in $NASBENCH_DATA_DIR or the user cache)."),
    from_: list[Path] | None = typer.Option(None, "--from", help="A file (or a folder of "
                                            "files) copied by hand from the public "
                                            "source, for a machine without internet "
                                            "access; repeatable. Checked against the same "
                                            "checksums; nothing is downloaded."),
    force: bool = typer.Option(False, "--force", help="Fetch again even when the folder "
                               "already holds it, verified."),
    timeout: float = typer.Option(30.0, "--timeout", help="Seconds to wait for the "
                                  "server."),
    quiet: Quiet = False,
    json_out: JsonOut = False,
):
    """Download a data set from its public source (pinned to a commit), check its
    SHA-256, convert it to the tables nasbench reads and put it in place (atomic;
    an interrupted fetch resumes)."""
    from nasbench.benchmarks.fetch import fetch_dataset

    def warn(line: str) -> None:
        print(f"warning: {line}", file=sys.stderr)

    r = fetch_dataset(name, to, from_ or (), force=force, quiet=quiet or json_out,
                      timeout=timeout, warn=warn)
    if json_out:
        _print_json(r)
        return
    if not quiet:
        if r["already"]:
            print(f"{r['name']} is already in {r['folder']} (verified against its "
                  f"manifest; --force fetches it again)")
        else:
            print(f"fetched {r['name']} into {r['folder']}: {len(r['files'])} files, "
                  f"SHA-256 checked")


@data_app.command()
def verify(
    folder: Path | None = typer.Argument(None, metavar="[DIR]", help="A data folder "
                                         "(default: every data set fetched into the data "
                                         "root)."),
    json_out: JsonOut = False,
    quiet: Quiet = False,
):
    """Check a folder: every file's SHA-256 (against its manifest when fetched, else
    against the pinned conversion), and the tables' shape (columns, 15,625 cells in
    NAS-Bench-201 index order, cell strings, finite numbers). Exit 2 with one line
    naming the first bad file."""
    from nasbench.benchmarks.fetch import verify_folder
    recs = verify_folder(folder)
    bad = [r for r in recs if not r["ok"]]
    if json_out:
        _print_json({"ok": not bad, "files": recs})
    elif not quiet:
        from rich.console import Console
        from rich.table import Table
        t = Table(show_lines=False)
        for c in ("data set", "file", "rows", "SHA-256", "checksum", "ok"):
            t.add_column(c, no_wrap=c != "file", overflow="fold" if c == "file" else None)
        for r in recs:
            t.add_row(r["dataset"], r["file"], "" if r["rows"] is None else f"{r['rows']:,}",
                      (r["sha256"] or "")[:16], r["checksum"] or "",
                      "[green]ok[/]" if r["ok"] else "[red]bad[/]")
        Console().print(t)
    if bad:
        more = f" (and {len(bad) - 1} more bad file(s))" if len(bad) > 1 else ""
        raise UserError(f"{bad[0]['error']}{more}")
    if not json_out and not quiet:
        print(f"verified {len(recs)} files: ok")


@data_app.command()
def where(
    name: str = typer.Argument(..., help="The data set."),
    json_out: JsonOut = False,
):
    """Print the folder a data set is read from and fetched to (whether it is there
    or not)."""
    from nasbench.benchmarks.catalog import get_dataset
    from nasbench.benchmarks.fetch import dataset_status
    ds = get_dataset(name)
    st = dataset_status(ds)
    if json_out:
        _print_json({k: st[k] for k in ("name", "folder", "present", "fetched",
                                        "fetchable", "how")})
        return
    if not ds.fetchable:
        raise UserError(f"{name} is not kept by nasbench: {ds.how}")
    print(st["folder"])
    if not st["present"]:
        print(f"(not there yet: nasbench data fetch {name})", file=sys.stderr)
