"""The lookup table (LUT) file: versioned JSON of measured per-op costs with provenance.

Layout::

    {"schema": 1,
     "provenance": {"device": {...}, "backend": "torch-cpu", "deploy": {...},
                    "batches": [1], "dtype": "float32", "versions": {...},
                    "threads": 2, "host": "...", "created": "ISO time",
                    "settings": {...latency meter settings...}},
     "entries": {"<op key>/b<batch>/<dtype>": {"op": ..., "latency_ms": {...}, ...}}}

Units: latency in milliseconds, memory in bytes, energy in joules per call.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

# the project's one atomic write, re-exported: code above this layer imports it from here
from kernels.files import atomic_write_bytes as atomic_write_bytes
from kernels.files import atomic_write_text as atomic_write_text

SCHEMA_VERSION = 1

#: metric name -> (entry field, unit) ; the value read is the entry's point estimate
METRICS = {
    "latency": ("latency_ms", "ms"),
    "energy": ("energy_j", "J"),
    "memory": ("memory_bytes", "B"),
}


class LUTError(ValueError):
    """A LUT cannot be read, does not match what was asked, or lacks entries.

    The message is one line, fit to print to a user."""


def full_key(op_key: str, batch: int, dtype: str = "float32") -> str:
    """Returns the entry key of an op instance key at a batch size and dtype."""
    return f"{op_key}/b{int(batch)}/{dtype}"


def json_safe(obj):
    """Returns ``obj`` with every non-finite float (NaN, +-inf) replaced by None, so it
    can be written with ``allow_nan=False`` (strict JSON: NaN is not JSON; None means
    "no value")."""
    import math
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


@dataclass
class LUT:
    """A loaded lookup table: provenance plus entries keyed by :func:`full_key`."""

    provenance: dict = field(default_factory=dict)
    entries: dict[str, dict] = field(default_factory=dict)
    path: Path | None = None

    # ---- file ---------------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | os.PathLike) -> LUT:
        """Returns the LUT stored at ``path``; raises LUTError (one line) when the file is
        missing, not JSON, of another schema version, or malformed."""
        p = Path(path)
        if not p.is_file():
            raise LUTError(f"{p} is a folder, not a LUT file (give the .json file)"
                           if p.is_dir() else f"LUT file not found: {p}")
        try:
            data = json.loads(p.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise LUTError(f"LUT file {p} is not valid JSON ({e.__class__.__name__})") from None
        if not isinstance(data, dict) or "entries" not in data or "schema" not in data:
            raise LUTError(f"{p} is not a nasbench LUT (no schema/entries)")
        if data["schema"] != SCHEMA_VERSION:
            raise LUTError(f"{p} has LUT schema {data['schema']!r}; this nasbench reads "
                           f"schema {SCHEMA_VERSION}")
        entries = data["entries"]
        if not isinstance(entries, dict) or not all(
                isinstance(v, dict) and "latency_ms" in v for v in entries.values()):
            raise LUTError(f"{p} has malformed entries")
        return cls(provenance=data.get("provenance", {}), entries=entries, path=p)

    def to_json(self) -> str:
        """Returns the file text of this LUT."""
        # strict JSON: a non-finite value is written as null (no value), never NaN
        return json.dumps(json_safe({"schema": SCHEMA_VERSION, "provenance": self.provenance,
                                     "entries": self.entries}),
                          indent=1, sort_keys=False, allow_nan=False)

    def save(self, path: str | os.PathLike) -> Path:
        """Writes the LUT atomically to ``path``; returns the path."""
        p = Path(path)
        atomic_write_text(p, self.to_json())
        self.path = p
        return p

    def sha256(self) -> str:
        """Returns the SHA-256 of the file this LUT was loaded from or saved to (hex)."""
        if self.path is None:
            return hashlib.sha256(self.to_json().encode()).hexdigest()
        return hashlib.sha256(Path(self.path).read_bytes()).hexdigest()

    # ---- queries ------------------------------------------------------------------------

    def incomplete(self) -> int:
        """Returns how many entries still have profiling rounds pending (a profile killed
        mid-way through its rounds: all entries may be there, not all measured)."""
        return sum(1 for e in self.entries.values() if e.get("rounds_pending"))

    def entry(self, op_key: str, batch: int, dtype: str = "float32") -> dict | None:
        """Returns the entry of an op instance, or None."""
        return self.entries.get(full_key(op_key, batch, dtype))

    def value(self, op_key: str, batch: int, metric: str = "latency",
              dtype: str = "float32") -> float | None:
        """Returns the point estimate of ``metric`` for an op instance: latency median in
        ms, energy in J per call, peak memory in bytes; None when absent or unmeasured."""
        e = self.entry(op_key, batch, dtype)
        if e is None:
            return None
        field_name = METRICS[metric][0]
        v = e.get(field_name)
        if isinstance(v, dict):
            v = v.get("median")
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return None
        return float(v)

    def missing(self, op_keys, batch: int, metric: str = "latency",
                dtype: str = "float32") -> list[str]:
        """Returns the full keys of ``op_keys`` that have no value for ``metric``."""
        out = []
        for k in dict.fromkeys(op_keys):
            if self.value(k, batch, metric, dtype) is None:
                out.append(full_key(k, batch, dtype))
        return out

    @property
    def batches(self) -> list[int]:
        """Returns the batch sizes the LUT holds."""
        return sorted({int(e["batch"]) for e in self.entries.values() if "batch" in e})

    @property
    def device_name(self) -> str:
        """Returns the measured device's name as recorded in the provenance."""
        dev = self.provenance.get("device", {})
        return str(dev.get("name", "unknown device"))

    def check_matches(self, *, device: dict | None = None, deploy: dict | None = None) -> None:
        """Raises LUTError when the LUT was recorded for another device or deploy network.

        ``device`` is compared by its ``id`` field (e.g. "cpu:Intel Xeon..."), ``deploy``
        field by field (space, channels, layers, input size...)."""
        where = f"LUT {self.path}" if self.path else "LUT"
        if device is not None:
            mine = self.provenance.get("device", {}).get("id")
            if mine != device.get("id"):
                raise LUTError(f"{where} was measured on {mine!r}, not on {device.get('id')!r}")
        if deploy is not None:
            mine = self.provenance.get("deploy", {})
            diffs = [f"{k}={mine.get(k)!r} (asked {v!r})" for k, v in deploy.items()
                     if mine.get(k) != v]
            if diffs:
                raise LUTError(f"{where} describes another network: " + ", ".join(diffs))


@dataclass(frozen=True)
class DiffRow:
    """One entry of a LUT comparison; ``ratio`` = new / old latency median."""

    key: str
    old_ms: float | None
    new_ms: float | None
    ratio: float | None
    status: str  # "regressed" | "improved" | "same" | "added" | "removed"


def diff_luts(old: LUT, new: LUT, threshold: float = 0.10,
              metric: str = "latency") -> list[DiffRow]:
    """Returns per-entry comparisons of ``metric``, the worst regressions first.

    An entry regressed when new/old - 1 > threshold, improved when < -threshold."""
    field_name = METRICS[metric][0]

    def val(e):
        if e is None:
            return None
        v = e.get(field_name)
        return v.get("median") if isinstance(v, dict) else v

    rows = []
    for key in dict.fromkeys(list(old.entries) + list(new.entries)):
        a, b = val(old.entries.get(key)), val(new.entries.get(key))
        if a is None and b is None:
            continue
        if a is None:
            rows.append(DiffRow(key, None, b, None, "added"))
        elif b is None:
            rows.append(DiffRow(key, a, None, None, "removed"))
        else:
            r = b / a if a > 0 else math.inf
            status = ("regressed" if r - 1 > threshold else
                      "improved" if r - 1 < -threshold else "same")
            rows.append(DiffRow(key, a, b, r, status))
    order = {"regressed": 0, "same": 1, "improved": 1, "added": 2, "removed": 2}
    rows.sort(key=lambda r: (order[r.status], -(r.ratio if r.ratio is not None else 0)))
    return rows
