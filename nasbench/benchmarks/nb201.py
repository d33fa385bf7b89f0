"""NAS-Bench-201 accuracies and HW-NAS-Bench device costs as tables (pandas).

The tables live in one folder: ``--benchmark-dir``, else where ``nasbench data fetch
nb201`` puts them (``$NASBENCH_DATA_DIR/nb201`` or the user cache, see
:mod:`.catalog`). It holds ``nb201-12epoch-accuracy.csv`` (12-epoch
validation and test accuracy in %, CIFAR-10, CIFAR-100, ImageNet16-120),
``nb201-cifar10-valid-200epoch.csv`` (200-epoch CIFAR-10 validation accuracy, 9,445
cells) and ``hw-nas-bench-{cifar10,cifar100,ImageNet16-120}.csv`` (latency in ms on
edgegpu, raspi4, edgetpu, pixel3, eyeriss, fpga; energy in mJ on edgegpu, eyeriss, fpga;
-1 = not measured), or instead of those three HW-NAS-Bench's official
``HW-NAS-Bench-v1_0.pickle``. Nothing is shipped with the package or downloaded here
(``nasbench data fetch`` does that). Every table is checked when it is loaded
(:mod:`.checks`: columns, one row per cell in index order, cell strings, finite numbers,
and that the folder's tables describe the same cells); the tables present in the folder
are loaded and checked when a :class:`NB201Bench` is made, so a damaged one stops a
command before it writes anything. A missing, malformed or damaged file is a one-line
:class:`~nasbench.errors.UserError` naming it and what to do.

Rows are keyed by NAS-Bench-201's architecture index; :meth:`NB201Bench.index` and
:meth:`NB201Bench.arch` map strings and indices both ways.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from ..errors import UserError
from . import checks
from .catalog import NB201 as _NB201_DATA
from .catalog import dataset_dir

if TYPE_CHECKING:     # the spaces import torch: loaded when a cell is parsed, so that
    from ..spaces.nb201_cells import NB201Arch  # `nasbench data` starts without it

DATASETS = ("cifar10", "cifar100", "ImageNet16-120")
#: classes of each data set (chance accuracy = 100 / classes %)
CLASSES = {"cifar10": 10, "cifar100": 100, "ImageNet16-120": 120}
DEVICES = ("edgegpu", "raspi4", "edgetpu", "pixel3", "eyeriss", "fpga")
#: device -> the metrics HW-NAS-Bench measured there (latency ms, energy mJ)
DEVICE_METRICS = {"edgegpu": ("latency", "energy"), "raspi4": ("latency",),
                  "edgetpu": ("latency",), "pixel3": ("latency",),
                  "eyeriss": ("latency", "energy"), "fpga": ("latency", "energy")}
ACCURACY_FILE = "nb201-12epoch-accuracy.csv"
ACCURACY_200_FILE = "nb201-cifar10-valid-200epoch.csv"
#: HW-NAS-Bench's official file (read when the folder has no hw-nas-bench-*.csv)
HW_PICKLE = "HW-NAS-Bench-v1_0.pickle"
WHERE = ("the NAS-Bench-201 / HW-NAS-Bench CSV files, which `nasbench data fetch nb201` "
         "downloads")
#: (path, size, mtime_ns) of the tables already checked in this process
_CHECKED: set[tuple[str, int, int]] = set()


def default_benchmark_dir() -> Path:
    """Returns the folder of the tables when no ``--benchmark-dir`` is given:
    ``$NASBENCH_DATA_DIR/nb201`` (or ``$NASBENCH_DATA_DIR`` itself when it holds the
    tables), else the user cache's ``data/nb201`` (where ``nasbench data fetch nb201``
    puts them)."""
    return dataset_dir(_NB201_DATA)


def resolve_benchmark_dir(given: str | Path | None) -> Path:
    """Returns the folder of the tables: ``given`` (``--benchmark-dir``), else
    :func:`default_benchmark_dir`; raises UserError (one line, the command that fetches
    them and the folder looked in) when no ``given`` and the tables are not there."""
    if given is not None and str(given) != "":
        return Path(given).expanduser()
    d = default_benchmark_dir()
    if not (d / ACCURACY_FILE).is_file():
        raise UserError(f"no NAS-Bench-201 tables in {d} (no --benchmark-dir given): run "
                        f"`nasbench data fetch nb201` once, or give --benchmark-dir DIR "
                        f"(or set $NASBENCH_DATA_DIR)")
    return d


def _signature(path: Path) -> tuple[str, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (str(path.resolve()), st.st_size, st.st_mtime_ns)


def check_dataset(dataset: str) -> None:
    """Raises UserError (one line) for a data set the tables do not hold."""
    if dataset not in DATASETS:
        raise UserError(f"unknown NAS-Bench-201 data set {dataset!r} (use "
                        f"{', '.join(DATASETS)})")


def _read(path: Path, kind: str) -> pd.DataFrame:
    """Returns the table at ``path`` indexed by ``index``, checked (:mod:`.checks`);
    raises UserError for a missing, unreadable or damaged file."""
    df = checks.read_csv(path, kind, f"needs {WHERE}, or give --benchmark-dir DIR")
    return df.set_index("index")


class NB201Bench:
    """The NAS-Bench-201 tables of one folder (``folder``; None: the default one, see
    :func:`resolve_benchmark_dir`). The CSV tables the folder holds are read and checked
    when it is made (``check``); a NATS-Bench archive and HW-NAS-Bench's pickle on first
    use."""

    def __init__(self, folder: str | Path | None = None, nats: str | Path | None = None,
                 check: bool = True):
        self.folder = resolve_benchmark_dir(folder)
        self.nats = nats                  # a NATS-Bench topology archive (200 epochs)
        self._nats: pd.DataFrame | None = None
        if not self.folder.is_dir():
            raise UserError(f"--benchmark-dir {self.folder}: not a folder (it must hold "
                            f"{WHERE})")
        self._acc: pd.DataFrame | None = None
        self._acc200: pd.DataFrame | None = None
        self._hw: dict[str, pd.DataFrame] = {}
        self._by_arch: dict[str, int] | None = None
        self._archs: dict[int, str] | None = None
        self._pickle: dict | None = None
        self._nb201_order: bool | None = None
        if check:
            self.check()

    def check(self) -> None:
        """Loads and checks every CSV table the folder holds (once per file version in
        this process); raises UserError (one line) for the first damaged one. A
        missing file is not an error here: it is when a command needs it."""
        files = {ACCURACY_FILE: lambda: self.accuracy,
                 ACCURACY_200_FILE: lambda: self.accuracy_200,
                 **{f"hw-nas-bench-{d}.csv": (lambda d=d: self.hardware(d))
                    for d in DATASETS}}
        for name, load in files.items():
            sig = _signature(self.folder / name)
            if sig is not None and sig not in _CHECKED:
                load()

    def _checked(self, path: Path) -> None:
        sig = _signature(path)
        if sig is not None:
            _CHECKED.add(sig)

    @property
    def is_nb201(self) -> bool:
        """Returns whether the accuracy table is NAS-Bench-201's own (its cells in
        NAS-Bench-201's index order), not a synthetic table of the same shape."""
        if self._nb201_order is None:
            self._nb201_order = checks.is_nb201_order(self.accuracy["arch"].tolist())
        return self._nb201_order

    def _same_cells(self, df: pd.DataFrame, path: Path) -> None:
        """Raises UserError unless ``df`` (indexed by ``index``) describes the accuracy
        table's cells (when the folder has that table)."""
        if (self.folder / ACCURACY_FILE).is_file():
            checks.check_same_cells(df.reset_index(), self.accuracy["arch"], path,
                                    self.folder / ACCURACY_FILE)

    # ---- tables --------------------------------------------------------------------------

    @property
    def accuracy(self) -> pd.DataFrame:
        """Returns the 12-epoch accuracy table (%; columns ``<dataset>-val|test``)."""
        if self._acc is None:
            path = self.folder / ACCURACY_FILE
            self._acc = _read(path, "accuracy")
            self._checked(path)
        return self._acc

    @property
    def accuracy_200(self) -> pd.DataFrame:
        """Returns the 200-epoch CIFAR-10 validation accuracy table (%; 9,445 cells)."""
        if self._acc200 is None:
            path = self.folder / ACCURACY_200_FILE
            df = _read(path, "accuracy200")
            if (self.folder / ACCURACY_FILE).is_file():
                self._same_cells(df, path)
                if self.is_nb201:        # the real benchmark: exactly its 9,445 cells
                    checks.check_nb201_companion(df.reset_index(), path, "accuracy200")
            self._acc200 = df
            self._checked(path)
        return self._acc200

    @property
    def accuracy_nats(self) -> pd.DataFrame | None:
        """Returns NATS-Bench's 200-epoch table (columns as :attr:`accuracy`'s), None
        without an archive."""
        if self.nats is not None and self._nats is None:
            from .nats import nats_table
            df = nats_table(self.nats)
            checks.check_table(df.reset_index(), f"(NATS-Bench's, read from {self.nats})",
                               "nats", fix="check the archive, and remove nasbench's cached "
                               "copy of the table (the nats/ folder of the user cache)")
            self._nats = df
        return self._nats

    @property
    def test_epochs(self) -> int:
        """Returns the best fidelity with a test split the loaded tables hold (200 with
        a NATS-Bench archive, else 12)."""
        return 200 if self.nats is not None else 12

    def test_accuracy(self, dataset: str) -> pd.Series:
        """Returns every cell's test accuracy (%) at :attr:`test_epochs`."""
        check_dataset(dataset)
        t = self.accuracy_nats if self.nats is not None else self.accuracy
        return t[f"{dataset}-test"].reindex(self.accuracy.index)

    def val_accuracy(self, dataset: str, epochs: int = 12) -> pd.Series:
        """Returns every cell's validation accuracy (%) after ``epochs`` (12, or 200:
        NATS-Bench's when loaded, else the 200-epoch CIFAR-10 file's); NaN where the
        tables lack a cell."""
        check_dataset(dataset)
        if epochs == 12:
            return self.accuracy[f"{dataset}-val"]
        if epochs != 200:
            raise UserError(f"validation accuracy exists after 12 or 200 epochs, not "
                            f"{epochs}")
        if self.nats is not None:
            return self.accuracy_nats[f"{dataset}-val"].reindex(self.accuracy.index)
        if dataset != "cifar10":
            raise UserError("200-epoch accuracies exist for cifar10 only without a "
                            "NATS-Bench archive (--nats)")
        return self.accuracy_200["cifar10-valid-200ep"].reindex(self.accuracy.index)

    def hardware(self, dataset: str = "cifar10") -> pd.DataFrame:
        """Returns HW-NAS-Bench's table for ``dataset`` (columns ``<device>_latency``
        ms, ``<device>_energy`` mJ; NaN where not measured)."""
        check_dataset(dataset)
        if dataset not in self._hw:
            cols = tuple(f"{d}_{m}" for d, ms in DEVICE_METRICS.items() for m in ms)
            csv = self.folder / f"hw-nas-bench-{dataset}.csv"
            if not csv.is_file() and (self.folder / HW_PICKLE).is_file():
                df = self._from_pickle(dataset, cols)
                checks.check_table(df.reset_index(), self.folder / HW_PICKLE, "hardware",
                                   fix="get a good copy with `nasbench data fetch "
                                   "hw-nas-bench`")
            else:
                df = _read(csv, "hardware")
                self._same_cells(df, csv)
                self._checked(csv)
            num = df[list(cols)].apply(pd.to_numeric, errors="coerce")
            df[list(cols)] = num.mask(num < 0)        # -1: not measured
            self._hw[dataset] = df
        return self._hw[dataset]

    def _from_pickle(self, dataset: str, cols: tuple[str, ...]) -> pd.DataFrame:
        """Returns HW-NAS-Bench's table of ``dataset`` read from its official pickle
        (``d["nasbench201"][dataset][metric][index]``), the cells' strings from the
        accuracy table. (A pickle runs code when loaded: read only files you trust.)"""
        import pickle
        path = self.folder / HW_PICKLE
        if self._pickle is None:
            try:
                with open(path, "rb") as f:
                    self._pickle = pickle.load(f)
            except (OSError, pickle.UnpicklingError, EOFError, AttributeError,
                    ValueError) as e:
                raise UserError(f"benchmark file {path} is not a readable HW-NAS-Bench "
                                f"pickle: {e}") from None
        try:
            part = self._pickle["nasbench201"][dataset]
            n = len(self.accuracy)
            data = {c: [float(part[c][i]) for i in range(n)] for c in cols}
        except (KeyError, IndexError, TypeError, ValueError) as e:
            raise UserError(f"benchmark file {path} lacks HW-NAS-Bench's nasbench201/"
                            f"{dataset} entry {e}") from None
        return pd.DataFrame({"arch": self.accuracy["arch"], **data},
                            index=self.accuracy.index)

    # ---- architectures -------------------------------------------------------------------

    def index(self, arch: NB201Arch | str) -> int:
        """Returns NAS-Bench-201's index of a cell (string or NB201Arch); raises
        UserError for a string that is not a cell of the space."""
        from ..spaces.nb201_cells import NB201Arch
        if self._by_arch is None:
            self._by_arch = {a: int(i) for i, a in self.accuracy["arch"].items()}
        try:
            s = arch.to_str() if isinstance(arch, NB201Arch) else \
                NB201Arch.from_str(arch).to_str()
        except ValueError as e:
            raise UserError(str(e)) from None
        return self._by_arch[s]

    def arch(self, key: int | str) -> NB201Arch:
        """Returns the cell of an index (int or digits) or of a string."""
        from ..spaces.nb201_cells import NB201Arch
        if isinstance(key, int) or str(key).strip().isdigit():
            i = int(key)
            if self._archs is None:            # a pandas lookup per call is ~0.1 ms,
                # parsing a string ~0.05 ms: the (immutable) cells are made once
                self._archs = {int(j): NB201Arch.from_str(a)
                               for j, a in self.accuracy["arch"].items()}
            if i not in self._archs:
                raise UserError(f"no NAS-Bench-201 cell with index {i} (0-15624)")
            return self._archs[i]
        try:
            return NB201Arch.from_str(str(key))
        except ValueError as e:
            raise UserError(str(e)) from None

    def lookup(self, arch: NB201Arch | str | int, dataset: str = "cifar10") -> dict:
        """Returns everything the tables hold for a cell on ``dataset``: ``index``,
        ``arch``, ``val_acc``/``test_acc`` (12-epoch, %), ``val_acc_200`` (CIFAR-10,
        % or None), and ``<device>_latency_ms`` / ``<device>_energy_mj`` (None where
        not measured)."""
        from ..spaces.nb201_cells import NB201Arch
        check_dataset(dataset)
        a = self.arch(arch) if not isinstance(arch, NB201Arch) else arch
        i = self.index(a)
        row = self.accuracy.loc[i]
        out = {"index": i, "arch": a.to_str(), "dataset": dataset,
               "val_acc": float(row[f"{dataset}-val"]),
               "test_acc": float(row[f"{dataset}-test"]), "epochs": 12}
        if self.nats is not None:
            n = self.accuracy_nats
            out["val_acc_200"] = float(n.at[i, f"{dataset}-val"])
            out["test_acc_200"] = float(n.at[i, f"{dataset}-test"])
        elif dataset == "cifar10" and (self.folder / ACCURACY_200_FILE).is_file():
            t = self.accuracy_200
            out["val_acc_200"] = float(t.at[i, "cifar10-valid-200ep"]) if i in t.index \
                else None
        hw = self.hardware(dataset).loc[i]
        for dev, metrics in DEVICE_METRICS.items():
            for m in metrics:
                v = hw[f"{dev}_{m}"]
                unit = "ms" if m == "latency" else "mj"
                out[f"{dev}_{m}_{unit}"] = None if pd.isna(v) else float(v)
        return out
