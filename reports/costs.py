"""Figures of the cost model: LUT-predicted vs measured costs, and the LUT itself.

Units: latency ms, energy mJ, peak memory MiB (as :data:`reports.loader.METRICS`);
shares are fractions 0..1.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .format import esc, fmt_value
from .points import left_out
from .style import RUN_COLORS, TEMPLATE

__all__ = ["UPPER_BOUNDS", "within_share", "pred_vs_measured_figure", "lut_frame", "lut_figure"]


def within_share(pred, meas, tol: float = 0.10) -> float:
    """Return the fraction (0..1) of pairs with ``|pred - meas| <= tol * meas``; NaN if none."""
    p, m = np.asarray(pred, dtype=float), np.asarray(meas, dtype=float)
    ok = np.isfinite(p) & np.isfinite(m) & (m > 0)
    if not ok.any():
        return math.nan
    return float(np.mean(np.abs(p[ok] - m[ok]) <= tol * m[ok]))


_PAIRS = (
    ("latency_ms", "latency_pred_ms", "Latency", "ms"),
    ("energy_mj", "energy_pred_mj", "Energy", "mJ"),
    ("memory_mib", "memory_pred_mib", "Peak memory", "MiB"),
)
#: Predictions that are upper bounds, not estimates: the LUT's memory is the sum of each
#: op's own peak, while the network's peak is that of the ops alive at one time.
UPPER_BOUNDS = {"memory_pred_mib"}


def pred_vs_measured_figure(
    df: pd.DataFrame, colors: dict[str, str], validation: dict[str, Any] | None = None
) -> tuple[go.Figure | None, list[dict[str, Any]]]:
    """Predicted (y) vs measured (x) cost with the y = x line and a ±10% band.

    One subplot per cost with pairs (latency, energy, memory). Architecture points are
    coloured by run; LUT validation points (``validation["points"]``, in ms) are grey.
    Peak memory's prediction is an upper bound (:data:`UPPER_BOUNDS`), not comparable with
    a measured peak: its panel has no ±10% band and it gets no within-10% share, only the
    share of points where the bound holds (predicted ≥ measured).
    Returns (figure or None, list of ``{"cost", "unit", "n", "within_10pct", "upper_bound",
    "bound_holds", "left_out"}`` summaries; shares 0..1, ``within_10pct`` NaN for an upper
    bound; ``left_out``: :func:`left_out` items measured but not predicted).
    """
    panels = []
    for mk, pk, label, unit in _PAIRS:
        d = df[df[mk].notna() & df[pk].notna()]
        vpts = []
        if mk == "latency_ms" and validation:
            for p in validation.get("points", []):
                try:
                    # the calibrated predictor where `lut calibrate` fitted one
                    pred = p.get("calibrated_ms", p["predicted_ms"])
                    vpts.append((float(p["measured_ms"]), float(pred)))
                except (KeyError, TypeError, ValueError):
                    continue
        if not d.empty or vpts:
            panels.append((mk, pk, label, unit, d, vpts))
    summaries: list[dict[str, Any]] = []
    if not panels:
        return None, summaries
    titles = []
    for mk, pk, label, unit, d, vpts in panels:
        meas = list(d[mk]) + [v[0] for v in vpts]
        pred = list(d[pk]) + [v[1] for v in vpts]
        bound = pk in UPPER_BOUNDS
        m_, p_ = np.asarray(meas, dtype=float), np.asarray(pred, dtype=float)
        holds = float(np.mean(p_ >= m_)) if len(m_) else math.nan
        share = math.nan if bound else within_share(pred, meas)
        missing = left_out(df, pk, need=mk)
        summaries.append({"cost": label, "unit": unit, "n": len(meas), "within_10pct": share,
                          "upper_bound": bound, "bound_holds": holds if bound else None,
                          "left_out": missing})
        if bound:
            titles.append(f"{label}: LUT upper bound ≥ measured for "
                          f"{int(round(holds * len(meas)))} of {len(meas)}")
        else:
            titles.append(f"{label}: {fmt_value(100 * share, '%', 3)} of {len(meas)} "
                          "within ±10%")
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=titles, horizontal_spacing=0.09)
    for i, (mk, pk, label, unit, d, vpts) in enumerate(panels, start=1):
        bound = pk in UPPER_BOUNDS
        allv = np.array(list(d[mk]) + list(d[pk]) + [x for v in vpts for x in v], dtype=float)
        allv = allv[np.isfinite(allv) & (allv > 0)]
        lo, hi = (allv.min() * 0.8, allv.max() * 1.2) if allv.size else (0.1, 1.0)
        log = hi / lo > 30
        xs = np.geomspace(lo, hi, 40) if log else np.linspace(0, hi, 40)
        if not bound:  # a ±10% band would suggest the upper bound estimates the peak
            fig.add_trace(go.Scatter(x=np.r_[xs, xs[::-1]], y=np.r_[xs * 1.1, xs[::-1] * 0.9],
                                     fill="toself", fillcolor="rgba(58,154,91,0.12)",
                                     line=dict(width=0), hoverinfo="skip", showlegend=i == 1,
                                     name="±10% band", legendgroup="band"), row=1, col=i)
        fig.add_trace(go.Scatter(x=xs[[0, -1]], y=xs[[0, -1]], mode="lines",
                                 line=dict(color="#3a9a5b", width=1.5, dash="dash"),
                                 name="y = x", showlegend=i == 1, legendgroup="yx",
                                 hoverinfo="skip"), row=1, col=i)
        if vpts:
            v = np.array(vpts)
            fig.add_trace(go.Scatter(x=v[:, 0], y=v[:, 1], mode="markers",
                                     marker=dict(color="rgba(107,119,133,0.55)", size=6),
                                     name=("LUT validation (calibrated)" if any(
                                         "calibrated_ms" in p for p in validation["points"])
                                         else "LUT validation"),
                                     legendgroup="val", showlegend=True,
                                     hovertemplate="validation<br>measured %{x:.4g} ms<br>"
                                     "predicted %{y:.4g} ms<extra></extra>"), row=1, col=i)
        what = "predicted upper bound" if bound else "predicted"
        if not d.empty:  # all runs in one trace (per-point colours) to keep drawing fast
            fig.add_trace(go.Scatter(
                x=d[mk], y=d[pk], mode="markers", name="architectures", showlegend=False,
                marker=dict(color=[colors.get(r, RUN_COLORS[0]) for r in d["run"]], size=7,
                            opacity=0.8, line=dict(width=0.5, color="white")),
                text=[f"<b>{esc(n)}</b> ({esc(r)})"
                      for n, r in zip(d["name"], d["run"], strict=True)],
                hovertemplate=f"%{{text}}<br>measured %{{x:.4g}} {unit}<br>"
                f"{what} %{{y:.4g}} {unit}<extra></extra>"), row=1, col=i)  # fmt: skip
        axis = dict(type="log" if log else "linear")
        if not log:
            axis["range"] = [0, hi]
        fig.update_xaxes(title_text=f"measured {label.lower()} ({unit})", row=1, col=i, **axis)
        ytitle = (f"{label.lower()}, LUT upper bound ({unit})" if bound
                  else f"predicted {label.lower()} ({unit})")
        fig.update_yaxes(title_text=ytitle, row=1, col=i, **axis)
    fig.update_layout(template=TEMPLATE, height=400,
                      legend=dict(orientation="h", yanchor="top", y=-0.2, x=0))
    return fig, summaries


def lut_frame(lut: dict[str, Any]) -> pd.DataFrame:
    """Flatten LUT entries into a table: op, shape, latency stats (ms), CV, memory, energy.

    Columns: key, op, shape, c_in, c_out, h, w, stride, batch, dtype, median_ms, mean_ms,
    p5_ms, p95_ms, cv (fraction), repeats, noisy, memory_mib, energy_mj, energy_reason.
    """
    rows = []
    for key, e in (lut.get("entries") or {}).items():
        if not isinstance(e, dict):
            continue
        lat = e.get("latency_ms") if isinstance(e.get("latency_ms"), dict) else {}

        def num(v):
            try:
                f = float(v)
                return f if math.isfinite(f) else math.nan
            except (TypeError, ValueError):
                return math.nan

        shape = (
            f"{e.get('c_in', '?')}→{e.get('c_out', '?')} · {e.get('h', '?')}×{e.get('w', '?')}"
            f" · s{e.get('stride', '?')}"
        )
        rows.append({
            "key": key, "op": str(e.get("op") or key.split("/")[0]), "shape": shape,
            "c_in": e.get("c_in"), "c_out": e.get("c_out"), "h": e.get("h"), "w": e.get("w"),
            "stride": e.get("stride"), "batch": e.get("batch"), "dtype": e.get("dtype"),
            "median_ms": num(lat.get("median")), "mean_ms": num(lat.get("mean")),
            "p5_ms": num(lat.get("p5")), "p95_ms": num(lat.get("p95")),
            "cv": num(lat.get("cv")), "repeats": num(lat.get("repeats")),
            "noisy": bool(e.get("noisy")),
            "memory_mib": num(e.get("memory_bytes")) / 2**20,
            "energy_mj": num(e.get("energy_j")) * 1e3,
            "energy_reason": str(e.get("energy_reason") or ""),
        })  # fmt: skip
    return pd.DataFrame(rows)


def lut_figure(table: pd.DataFrame, title: str = "") -> go.Figure | None:
    """Heat maps of the LUT: median latency (log colour, ms) and its CV (%), op x shape.

    When several batch sizes / dtypes are present, the first batch and dtype are shown.
    Returns None for an empty table.
    """
    if table is None or table.empty or table["median_ms"].notna().sum() == 0:
        return None
    t = table
    for col in ("batch", "dtype"):
        vals = t[col].dropna().unique()
        if len(vals) > 1:
            t = t[t[col] == sorted(vals, key=str)[0]]
    t = t.sort_values(["c_in", "h", "stride"], key=lambda s: pd.to_numeric(s, errors="coerce"))
    shapes = list(dict.fromkeys(t["shape"]))
    ops = sorted(t["op"].unique())
    med = t.pivot_table(index="op", columns="shape", values="median_ms", aggfunc="first")
    cv = t.pivot_table(index="op", columns="shape", values="cv", aggfunc="first")
    med = med.reindex(index=ops, columns=shapes)
    cv = cv.reindex(index=ops, columns=shapes)
    zlog = np.log10(med.to_numpy(dtype=float).clip(min=1e-6))
    fig = make_subplots(rows=1, cols=2, subplot_titles=["Median latency (ms)", "CV (%)"],
                        horizontal_spacing=0.14)
    finite = zlog[np.isfinite(zlog)]
    lo, hi = (math.floor(finite.min()), math.ceil(finite.max())) if finite.size else (0, 1)
    ticks = list(range(lo, hi + 1))
    fig.add_trace(go.Heatmap(
        z=zlog, x=shapes, y=ops, customdata=med.to_numpy(), colorscale="Viridis",
        zmin=lo, zmax=hi, hoverongaps=False,
        colorbar=dict(title=dict(text="ms"), tickvals=ticks,
                      ticktext=[fmt_value(10.0**v) for v in ticks], x=0.43, thickness=10),
        hovertemplate="%{y} @ %{x}<br>median %{customdata:.4g} ms<extra></extra>",
    ), row=1, col=1)  # fmt: skip
    fig.add_trace(go.Heatmap(
        z=(100 * cv.to_numpy(dtype=float)).round(2), x=shapes, y=ops, colorscale="OrRd",
        zmin=0, hoverongaps=False, colorbar=dict(title=dict(text="%"), thickness=10),
        hovertemplate="%{y} @ %{x}<br>CV %{z:.2f}%<extra></extra>",
    ), row=1, col=2)  # fmt: skip
    fig.update_xaxes(tickangle=-40, tickfont=dict(size=9), showgrid=False)
    fig.update_yaxes(tickfont=dict(size=10), showgrid=False)
    fig.update_yaxes(showticklabels=False, row=1, col=2)
    fig.update_layout(template=TEMPLATE, height=max(300, 140 + 26 * len(ops)),
                      title=dict(text=title), margin=dict(l=110, r=20, t=84, b=110))
    return fig
