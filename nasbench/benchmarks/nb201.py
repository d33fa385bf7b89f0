"""NAS-Bench-201 accuracies and HW-NAS-Bench device costs as tables (pandas).

The user points at a folder (``--benchmark-dir``) holding the CSV files of
``../shared/data/nb201/`` (see its README): ``nb201-12epoch-accuracy.csv`` (12-epoch
validation and test accuracy in %, CIFAR-10, CIFAR-100, ImageNet16-120),
``nb201-cifar10-valid-200epoch.csv`` (200-epoch CIFAR-10 validation accuracy, 9,445
cells) and ``hw-nas-bench-{cifar10,cifar100,ImageNet16-120}.csv`` (latency in ms on
edgegpu, raspi4, edgetpu, pixel3, eyeriss, fpga; energy in mJ on edgegpu, eyeriss, fpga;
-1 = not measured), or instead of those three HW-NAS-Bench's official
``HW-NAS-Bench-v1_0.pickle``. Nothing is shipped with the package or downloaded here; a
missing or malformed file is a one-line :class:`~nasbench.errors.UserError` naming it.

Rows are keyed by NAS-Bench-201's architecture index; :meth:`NB201Bench.index` and
:meth:`NB201Bench.arch` map strings and indices both ways.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..errors import UserError
from ..spaces.nb201_cells import NB201Arch

DATASETS = ("cifar10", "cifar100", "ImageNet16-120")
DEVICES = ("edgegpu", "raspi4", "edgetpu", "pixel3", "eyeriss", "fpga")
#: device -> the metrics HW-NAS-Bench measured there (latency ms, energy mJ)
DEVICE_METRICS = {"edgegpu": ("latency", "energy"), "raspi4": ("latency",),
                  "edgetpu": ("latency",), "pixel3": ("latency",),
                  "eyeriss": ("latency", "energy"), "fpga": ("latency", "energy")}
ACCURACY_FILE = "nb201-12epoch-accuracy.csv"
ACCURACY_200_FILE = "nb201-cifar10-valid-200epoch.csv"
#: HW-NAS-Bench's official file (read when the folder has no hw-nas-bench-*.csv)
HW_PICKLE = "HW-NAS-Bench-v1_0.pickle"
WHERE = ("the NAS-Bench-201 / HW-NAS-Bench CSV files (e.g. ../shared/data/nb201/ of this "
         "project; HW-NAS-Bench: github.com/GATECH-EIC/HW-NAS-Bench)")


def check_dataset(dataset: str) -> None:
    """Raises UserError (one line) for a data set the tables do not hold."""
    if dataset not in DATASETS:
        raise UserError(f"unknown NAS-Bench-201 data set {dataset!r} (use "
                        f"{', '.join(DATASETS)})")


def _read(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    """Returns the CSV indexed by ``index``; raises UserError for a missing file, an
    unreadable one or one without ``columns``."""
    if not path.is_file():
        raise UserError(f"benchmark file not found: {path} (needs {WHERE})")
    try:
        df = pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError) as e:
        raise UserError(f"benchmark file {path} is not a readable CSV: {e}") from None
    missing = [c for c in ("index", "arch", *columns) if c not in df.columns]
    if missing:
        raise UserError(f"benchmark file {path} lacks column(s) {', '.join(missing)}")
    return df.set_index("index")


class NB201Bench:
    """The NAS-Bench-201 tables of one folder (see the module doc); files are read on
    first use."""

    def __init__(self, folder: str | Path, nats: str | Path | None = None):
        self.folder = Path(folder).expanduser()
        self.nats = nats                  # a NATS-Bench topology archive (200 epochs)
        self._nats: pd.DataFrame | None = None
        if not self.folder.is_dir():
            raise UserError(f"--benchmark-dir {self.folder}: not a folder (it must hold "
                            f"{WHERE})")
        self._acc: pd.DataFrame | None = None
        self._acc200: pd.DataFrame | None = None
        self._hw: dict[str, pd.DataFrame] = {}
        self._by_arch: dict[str, int] | None = None
        self._pickle: dict | None = None

    # ---- tables --------------------------------------------------------------------------

    @property
    def accuracy(self) -> pd.DataFrame:
        """Returns the 12-epoch accuracy table (%; columns ``<dataset>-val|test``)."""
        if self._acc is None:
            cols = tuple(f"{d}-{s}" for d in DATASETS for s in ("val", "test"))
            self._acc = _read(self.folder / ACCURACY_FILE, cols)
            if len(self._acc) != 15_625 or not self._acc.index.is_unique:
                raise UserError(f"benchmark file {self.folder / ACCURACY_FILE} must hold "
                                f"the 15,625 cells once each, has {len(self._acc)} rows")
        return self._acc

    @property
    def accuracy_200(self) -> pd.DataFrame:
        """Returns the 200-epoch CIFAR-10 validation accuracy table (%; 9,445 cells)."""
        if self._acc200 is None:
            self._acc200 = _read(self.folder / ACCURACY_200_FILE, ("cifar10-valid-200ep",))
        return self._acc200

    @property
    def accuracy_nats(self) -> pd.DataFrame | None:
        """Returns NATS-Bench's 200-epoch table (columns as :attr:`accuracy`'s), None
        without an archive."""
        if self.nats is not None and self._nats is None:
            from .nats import nats_table
            self._nats = nats_table(self.nats)
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
            else:
                df = _read(csv, cols)
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
        if isinstance(key, int) or str(key).strip().isdigit():
            i = int(key)
            if i not in self.accuracy.index:
                raise UserError(f"no NAS-Bench-201 cell with index {i} (0-15624)")
            return NB201Arch.from_str(self.accuracy.at[i, "arch"])
        try:
            return NB201Arch.from_str(str(key))
        except ValueError as e:
            raise UserError(str(e)) from None

    def lookup(self, arch: NB201Arch | str | int, dataset: str = "cifar10") -> dict:
        """Returns everything the tables hold for a cell on ``dataset``: ``index``,
        ``arch``, ``val_acc``/``test_acc`` (12-epoch, %), ``val_acc_200`` (CIFAR-10,
        % or None), and ``<device>_latency_ms`` / ``<device>_energy_mj`` (None where
        not measured)."""
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
