"""Shape checks of the NAS-Bench-201 / HW-NAS-Bench tables, run when a table is loaded
(:mod:`.nb201`) and by ``nasbench data verify``.

A table passes when it has its columns; one row per cell (15,625, or the 200-epoch
file's 9,445 of them), ``index`` running 0..15,624 in order (the 200-epoch file: a
strictly increasing subset); every ``arch`` a NAS-Bench-201 cell string, each cell once;
every number finite, accuracies in [0, 100] %, costs >= 0 and ``-1`` ("not measured")
only where HW-NAS-Bench's format has it (``edgetpu_latency``). A table that fails raises
:class:`~nasbench.errors.UserError`: one line naming the file, what is wrong, and what
to do.

Whether a table is NAS-Bench-201 itself (its cells in NAS-Bench-201's index order, not a
synthetic table of the same shape) is known from a fingerprint of its ``arch`` column
(:data:`NB201_ORDER_SHA256`); the real benchmark's 200-epoch file must then hold exactly
its 9,445 cells (:data:`ACC200_INDEX_SHA256`).
"""

from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import UserError

CELLS = 15_625
ACC200_ROWS = 9_445
OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
_OP = "(?:" + "|".join(OPS) + ")"
#: a NAS-Bench-201 cell string: node j's incoming edges ``op~i`` for i < j
ARCH_RE = re.compile(rf"\|{_OP}~0\|\+\|{_OP}~0\|{_OP}~1\|\+\|{_OP}~0\|{_OP}~1\|{_OP}~2\|")
#: SHA-256 of NAS-Bench-201's cell strings in index order, joined by newlines
NB201_ORDER_SHA256 = "83abc799e45cf34e9d2163654668ab998b9a54d01c39e72ca1f71f2cdf356d84"
#: SHA-256 of the 200-epoch file's indices, joined by commas
ACC200_INDEX_SHA256 = "c80892d994d7f7b5d7429efcb7b9eef06bba65e2021da1b8fd70367865a40c31"

DATASETS = ("cifar10", "cifar100", "ImageNet16-120")
ACCURACY_COLUMNS = tuple(f"{d}-{s}" for d in DATASETS for s in ("test", "val"))
ACC200_COLUMNS = ("cifar10-valid-200ep",)
HW_COLUMNS = ("edgegpu_latency", "edgegpu_energy", "raspi4_latency", "edgetpu_latency",
              "pixel3_latency", "eyeriss_latency", "eyeriss_energy", "fpga_latency",
              "fpga_energy")
#: columns where HW-NAS-Bench writes -1 for "not measured"
NOT_MEASURED = ("edgetpu_latency",)
#: columns that are ratios, not costs (checked finite and >= 0 like the costs)
EXTRA_HW_COLUMNS = ("eyeriss_arithmetic_intensity",)

#: the kinds of table: (value columns, rows (None: a subset), value range, -1 allowed in)
KINDS = {
    "accuracy": (ACCURACY_COLUMNS, CELLS, (0.0, 100.0), ()),
    "accuracy200": (ACC200_COLUMNS, None, (0.0, 100.0), ()),
    "hardware": (HW_COLUMNS, CELLS, (0.0, math.inf), NOT_MEASURED),
    "nats": (ACCURACY_COLUMNS, CELLS, (0.0, 100.0), ()),
}
#: file name -> kind
FILE_KINDS = {"nb201-12epoch-accuracy.csv": "accuracy",
              "nb201-cifar10-valid-200epoch.csv": "accuracy200",
              **{f"hw-nas-bench-{d}.csv": "hardware" for d in DATASETS}}


def remedy(path: Path | str) -> str:
    """Returns what to do about a damaged table (the end of the one-line error)."""
    return (f"get a good copy with `nasbench data fetch nb201` (`nasbench data verify "
            f"{Path(path).parent}` checks the folder)")


def _fail(path, what: str, fix: str | None = None) -> UserError:
    return UserError(f"benchmark table {path} is damaged: {what}; {fix or remedy(path)}")


def fingerprint(values) -> str:
    """Returns the SHA-256 of ``values`` (strings) joined by newlines."""
    return hashlib.sha256("\n".join(map(str, values)).encode()).hexdigest()


def index_fingerprint(index) -> str:
    """Returns the SHA-256 of integer indices joined by commas."""
    return hashlib.sha256(",".join(str(int(i)) for i in index).encode()).hexdigest()


def is_nb201_order(archs) -> bool:
    """Returns whether ``archs`` (all 15,625 strings, in row order) is NAS-Bench-201's
    own index order."""
    return len(archs) == CELLS and fingerprint(archs) == NB201_ORDER_SHA256


def read_csv(path: Path | str, kind: str, what: str | None = None) -> pd.DataFrame:
    """Returns the table at ``path`` (columns as in the file, ``index`` a column) after
    :func:`check_table`; raises UserError for a missing, unreadable or damaged file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"benchmark file not found: {path} ({what or remedy(path)})")
    try:
        df = pd.read_csv(path)
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as e:
        first = (str(e).strip().splitlines() or [""])[0][:160]
        raise UserError(f"benchmark file {path} is not a readable CSV ({first}); "
                        f"{remedy(path)}") from None
    check_table(df, path, kind)
    return df


def check_table(df: pd.DataFrame, path: Path | str, kind: str,
                rows: int | None = None, fix: str | None = None) -> None:
    """Raises UserError (one line naming ``path``) unless ``df`` (``index`` a column) is
    a good table of ``kind`` (see the module doc); ``rows`` overrides the expected row
    count (the 200-epoch file of NAS-Bench-201 itself: :data:`ACC200_ROWS`); ``fix``
    replaces the advice that ends the message."""
    cols, want_rows, (lo, hi), minus_one = KINDS[kind]

    def fail(what: str) -> UserError:
        return _fail(path, what, fix)

    missing = [c for c in ("index", "arch", *cols) if c not in df.columns]
    if missing:
        raise UserError(f"benchmark file {path} lacks column(s) {', '.join(missing)}; "
                        f"{fix or remedy(path)}")
    want_rows = rows if rows is not None else want_rows
    n = len(df)
    if want_rows is not None and n != want_rows:
        cut = " (truncated?)" if n < want_rows else ""
        raise fail(f"{n:,} rows, expected {want_rows:,}{cut}")
    if n == 0 or n > CELLS:
        raise fail(f"{n:,} rows, expected 1 to {CELLS:,}")
    idx = pd.to_numeric(df["index"], errors="coerce")
    bad = idx.isna() | (idx != idx.round())
    if bad.any():
        r = int(bad.to_numpy().nonzero()[0][0])
        raise fail(f"row {r + 1}: index {df['index'].iloc[r]!r} is not an integer")
    idx = idx.astype("int64")
    if want_rows == CELLS:
        wrong = idx.to_numpy() != np.arange(CELLS)
        if wrong.any():
            r = int(wrong.nonzero()[0][0])
            raise fail(f"rows out of order: row {r + 1} has index {idx.iloc[r]}, "
                       f"expected {r} (index must run 0..{CELLS - 1} in order)")
    else:
        if (idx < 0).any() or (idx >= CELLS).any():
            i = int(idx[(idx < 0) | (idx >= CELLS)].iloc[0])
            raise fail(f"index {i} is outside 0..{CELLS - 1}")
        steps = idx.diff().iloc[1:]
        if (steps <= 0).any():
            r = int((steps <= 0).to_numpy().nonzero()[0][0]) + 1
            raise fail(f"rows out of order: index {idx.iloc[r]} at row {r + 1} "
                       f"follows {idx.iloc[r - 1]} (indices must increase)")
    arch = df["arch"]
    ok = arch.astype(str).str.fullmatch(ARCH_RE) & arch.notna()
    if not ok.all():
        r = int((~ok).to_numpy().nonzero()[0][0])
        raise fail(f"index {idx.iloc[r]}: arch {str(arch.iloc[r])[:80]!r} is not a "
                   f"NAS-Bench-201 cell string")
    dup = arch.duplicated()
    if dup.any():
        r = int(dup.to_numpy().nonzero()[0][0])
        raise fail(f"cell {arch.iloc[r]} appears twice (again at index "
                   f"{idx.iloc[r]})")
    extra = [c for c in EXTRA_HW_COLUMNS if c in df.columns] if kind == "hardware" else []
    for c in (*cols, *extra):
        check_numbers(df[c], idx, path, c, lo, hi, c in minus_one, fix)


def check_numbers(col: pd.Series, idx, path, name: str, lo: float, hi: float,
                  minus_one: bool, fix: str | None = None) -> None:
    """Raises UserError unless every value of ``col`` is a finite number in [lo, hi]
    (or exactly -1 where ``minus_one``: not measured)."""
    def fail(what: str) -> UserError:
        return _fail(path, what, fix)

    num = pd.to_numeric(col, errors="coerce")
    bad = num.isna()
    if bad.any():
        r = int(bad.to_numpy().nonzero()[0][0])
        v = col.iloc[r]
        what = "an empty value" if pd.isna(v) else f"{str(v)[:40]!r}, not a number"
        raise fail(f"column {name} at index {_at(idx, r)} holds {what}")
    fin = num.map(math.isfinite)
    if not fin.all():
        r = int((~fin).to_numpy().nonzero()[0][0])
        raise fail(f"column {name} at index {_at(idx, r)} is {num.iloc[r]} (not "
                   f"finite)")
    out = (num < lo) | (num > hi)
    if minus_one:
        out &= num != -1
    if out.any():
        r = int(out.to_numpy().nonzero()[0][0])
        rng = f">= {lo:g}" if hi == math.inf else f"in [{lo:g}, {hi:g}]"
        extra = " or -1 (not measured)" if minus_one else ""
        raise fail(f"column {name} at index {_at(idx, r)} is {num.iloc[r]:g}, "
                   f"expected {rng}{extra}")


def _at(idx, r: int):
    try:
        return int(idx.iloc[r])
    except (AttributeError, TypeError, ValueError):
        return r


def check_same_cells(df: pd.DataFrame, ref_arch: pd.Series, path, ref_path) -> None:
    """Raises UserError unless every row's ``arch`` is the cell ``ref_arch`` (indexed by
    NAS-Bench-201 index, from ``ref_path``) has at that index: tables of one folder
    describe the same cells."""
    want = ref_arch.reindex(df["index"].astype("int64")).to_numpy()
    got = df["arch"].to_numpy()
    wrong = want != got
    if wrong.any():
        r = int(wrong.nonzero()[0][0])
        raise _fail(path, f"index {int(df['index'].iloc[r])} is {got[r]} here but "
                          f"{want[r]} in {Path(ref_path).name} (rows reordered or from "
                          f"another table)")


def check_nb201_companion(df: pd.DataFrame, path, kind: str) -> None:
    """For a folder whose accuracy table is NAS-Bench-201's own (:func:`is_nb201_order`):
    raises UserError unless the 200-epoch file holds exactly its 9,445 cells."""
    if kind == "accuracy200":
        if len(df) != ACC200_ROWS:
            raise _fail(path, f"{len(df):,} rows, expected {ACC200_ROWS:,}"
                              f"{' (truncated?)' if len(df) < ACC200_ROWS else ''}")
        if index_fingerprint(df["index"]) != ACC200_INDEX_SHA256:
            raise _fail(path, "its cells are not the 9,445 NAS-Bench-201 cells with a "
                              "200-epoch validation accuracy")


def check_folder(folder: Path | str, require_nb201: bool = True) -> list[dict]:
    """Checks every table of an nb201 folder (``nasbench data verify``); returns one
    record per file (``file``, ``kind``, ``rows``, ``ok``, ``error``). With
    ``require_nb201``, a table must be NAS-Bench-201 itself (its index order), not only
    of its shape; the folder must hold the accuracy table."""
    folder = Path(folder)
    out: list[dict] = []
    acc_path = folder / "nb201-12epoch-accuracy.csv"
    ref = None
    for name, kind in FILE_KINDS.items():
        p = folder / name
        rec = {"file": str(p), "kind": kind, "rows": None, "ok": False, "error": None}
        out.append(rec)
        if not p.is_file():
            rec["error"] = f"benchmark file not found: {p}; {remedy(p)}"
            continue
        try:
            df = read_csv(p, kind)
            rec["rows"] = len(df)
            if kind == "accuracy":
                if require_nb201 and not is_nb201_order(df["arch"].tolist()):
                    raise _fail(p, "its cells are not in NAS-Bench-201's index order")
                ref = df.set_index("index")["arch"]
            elif ref is not None:
                check_same_cells(df, ref, p, acc_path)
                if require_nb201:
                    check_nb201_companion(df, p, kind)
            rec["ok"] = True
        except UserError as e:
            rec["error"] = str(e)
    return out
