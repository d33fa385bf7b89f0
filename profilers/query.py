"""Tabular views of a LUT (pandas)."""

from __future__ import annotations

import pandas as pd

from .lut import LUT


def lut_frame(lut: LUT) -> pd.DataFrame:
    """Returns one row per entry: key, op, shapes, batch, latency median/p5/p95 (ms), CV,
    repeats, noisy flag, memory (bytes, NaN when unmeasured), energy (J/call, NaN when no
    sensor)."""
    rows = []
    for key, e in lut.entries.items():
        lat = e["latency_ms"]
        rows.append({
            "key": key, "op": e.get("op", key.split("/")[0]),
            "c_in": e.get("c_in"), "c_out": e.get("c_out"), "h": e.get("h"), "w": e.get("w"),
            "stride": e.get("stride"), "batch": e.get("batch"), "dtype": e.get("dtype"),
            "latency_ms": lat["median"], "mean_ms": lat.get("mean"), "p5_ms": lat.get("p5"),
            "p95_ms": lat.get("p95"), "cv": lat.get("cv"), "repeats": lat.get("repeats"),
            "noisy": bool(e.get("noisy", False)),
            "memory_bytes": e.get("memory_bytes"), "energy_j": e.get("energy_j"),
        })
    cols = ["key", "op", "c_in", "c_out", "h", "w", "stride", "batch", "dtype", "latency_ms",
            "mean_ms", "p5_ms", "p95_ms", "cv", "repeats", "noisy", "memory_bytes", "energy_j"]
    df = pd.DataFrame(rows, columns=cols)
    for c in ("memory_bytes", "energy_j"):
        df[c] = pd.to_numeric(df[c], errors="coerce")
    return df
