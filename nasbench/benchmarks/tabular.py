"""A HW-NAS-Bench device as a run's target: ``--device hw-nas-bench:DEV``.

Nothing runs on such a device: a cell's latency (ms) and energy (mJ in the table, J in
nasbench's units) are read from HW-NAS-Bench's table, exactly, and the per-op LUT the
differentiable searchers need is the one fitted to that table
(:func:`~nasbench.benchmarks.hwnas.fitted_lut`, its provenance says fitted, not
measured). The fitted LUT is cached in the user cache beside the profiled ones, keyed
by device, data set and the table file's size and mtime, so a changed table refits.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from nasbench.benchmarks.hwnas import DEVICE_NAMES, INPUT, parse_tabular_device, tabular_space
from nasbench.benchmarks.nb201 import DEVICE_METRICS, NB201Bench, check_dataset
from nasbench.errors import UserError
from profilers.lut import LUT, LUTError

PREFIX = "hw-nas-bench"


def is_tabular(spec: str | None) -> bool:
    """Returns whether a ``--device`` names a HW-NAS-Bench device."""
    return str(spec or "").split(":", 1)[0] == PREFIX


class TabularDevice:
    """HW-NAS-Bench's ``device`` on ``dataset``'s network (see the module doc)."""

    def __init__(self, spec: str, benchmark_dir: str | Path | None,
                 dataset: str = "cifar10"):
        self.spec = spec
        self.name = parse_tabular_device(spec)
        check_dataset(dataset)
        # no --benchmark-dir: the tables `nasbench data fetch nb201` put in the cache
        self.bench = NB201Bench(benchmark_dir)
        self.dataset = dataset
        self.metrics = DEVICE_METRICS[self.name]
        self.long_name = DEVICE_NAMES[self.name]

    def check_deploy(self, deploy) -> None:
        """Raises UserError unless ``deploy`` is the network HW-NAS-Bench measured."""
        want = tabular_space(self.dataset).deploy.describe()
        got = deploy.describe()
        if got != want:
            size, classes = INPUT[self.dataset]
            raise UserError(f"--device {self.spec} knows only the NAS-Bench-201 network "
                            f"HW-NAS-Bench measured ({self.dataset}: C=16, 5 cells per "
                            f"stage, {size}x{size}, {classes} classes), not {got}")

    def lut_path(self) -> Path:
        """Returns where the fitted LUT is cached."""
        from nasbench.benchmarks.nb201 import HW_PICKLE
        from nasbench.luts import cache_dir
        f = self.bench.folder / f"hw-nas-bench-{self.dataset}.csv"
        if not f.is_file() and (self.bench.folder / HW_PICKLE).is_file():
            f = self.bench.folder / HW_PICKLE
        try:
            st = f.stat()
        except OSError:
            raise UserError(f"benchmark file not found: {f}") from None
        h = hashlib.sha256(f"{f.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode())
        return (cache_dir() / "luts" /
                f"hw-nas-bench-{self.name}-{self.dataset}-{h.hexdigest()[:12]}.json")

    def lut(self):
        """Returns (the LUT fitted to this device's table, its path), fitting and caching
        it first when needed."""
        from nasbench.benchmarks.hwnas import fitted_lut
        path = self.lut_path()
        if path.is_file():
            try:
                return LUT.load(path), path
            except LUTError:
                pass                              # refit a damaged cache entry
        lut = fitted_lut(self.bench, self.name, self.dataset)
        path.parent.mkdir(parents=True, exist_ok=True)
        lut.save(path)
        return lut, path

    def cost(self, arch) -> dict:
        """Returns the table's ``{"latency": ms, "energy": J}`` of a cell (None where
        HW-NAS-Bench did not measure it)."""
        table = self.__dict__.get("_costs")
        if table is None:                # once: a row lookup per cell costs ~ms (pandas)
            hw = self.bench.hardware(self.dataset)
            cols = [hw.get(f"{self.name}_{m}") for m in ("latency", "energy")]
            cols = [c if c is not None else [float("nan")] * len(hw) for c in cols]
            table = self._costs = {
                a: (None if lat != lat else float(lat), None if en != en else float(en))
                for a, lat, en in zip(hw["arch"], cols[0], cols[1], strict=True)}
        lat, en = table.get(arch.to_str(), (None, None))
        return {"latency": lat, "energy": None if en is None else en * 1e-3}

    def latency_of(self):
        """Returns a function: cell -> the table's latency (ms; None where unmeasured),
        built once from the table (fast: a dict lookup per cell)."""
        hw = self.bench.hardware(self.dataset)
        col = hw[f"{self.name}_latency"]
        table = {a: (None if v != v else float(v)) for a, v in zip(hw["arch"], col,
                                                                    strict=True)}
        return lambda arch: table.get(arch.to_str())

    def measure(self, arch) -> dict:
        """Returns the cell's "measurement": the table's values, in the shape of the
        runner's device measurement (``latency_ms`` stats with one value, ``energy_j``,
        no memory), labelled as read from HW-NAS-Bench."""
        c = self.cost(arch)
        lat = c["latency"]
        stats = None if lat is None else {"median": lat, "mean": lat, "p5": lat, "p95": lat,
                                          "cv": 0.0, "repeats": 0}
        return {"latency_ms": stats, "wall_ms": stats, "memory_bytes": None,
                "memory_method": None, "energy_j": c["energy"],
                "energy_reason": None if c["energy"] is not None else
                f"HW-NAS-Bench has no energy for {self.name}",
                "device": {"spec": self.spec, "name": self.long_name},
                "source": f"HW-NAS-Bench v1.0 table ({self.dataset}), not measured here"}
