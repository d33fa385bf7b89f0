"""The calibrated predictor of a LUT, for any search space.

A small, explainable linear model (scikit-learn ridge, scales shrunk toward 1) on the
plain LUT sum of a deploy network split by feature::

    latency = b + sum_f a_f * S_f + S_fixed

``S_f`` is the LUT latency of the network's ops of feature ``f``: one per candidate op
of the space (``features="op"``) or one per op family (``"group"``: the registry's
:attr:`~nasbench.ops.OpSpec.group` of the candidates), plus ``fused_add`` (the node sums
a fusing backend folds into a conv epilogue) and ``fixed`` (the parts every network of
the deploy configuration carries, kept at scale 1). ``a_f`` < 1 says the ops run faster
inside a network than alone (warm caches, overlapped launch overhead), ``b`` is the
per-network overhead (Python dispatch, cat, adds). Because it only rescales LUT values
and adds a constant, a search's expected cost stays a differentiable weighted sum when
it uses it (:class:`CalibratedLUT`).

DARTS: ``op`` features are :data:`OP_FEATURES`, ``group`` features :data:`GROUPS`;
ProxylessNAS: ``mb_k3_e3`` ... ``mb_k7_e6``, ``zero`` / ``mbconv``, ``skip``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nasbench.errors import UserError, read_state
from nasbench.ops import op_group  # noqa: F401 - the calibration's group of an op, re-exported
from profilers.lut import LUT

#: the DARTS space's group features (the order of the calibration files fitted so far)
GROUPS = ("sep_conv", "dil_conv", "pool", "skip", "fused_add", "fixed")
#: the DARTS space's per-op features: one per candidate op (the fixed parts stay one)
OP_FEATURES = ("sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5",
               "max_pool_3x3", "avg_pool_3x3", "skip_connect", "fused_add", "fixed")
#: features every space has besides its candidates': the fused node sums, the fixed parts
EXTRA_FEATURES = ("fused_add", "fixed")
#: feature orders kept as they were before features were derived from the space (the
#: same names as the derived ones, see :func:`feature_names`)
_KEPT_ORDER = {("darts", "group"): GROUPS, ("darts", "op"): OP_FEATURES}
FEATURE_KINDS = ("op", "group")
CALIBRATION_SCHEMA = 2


def op_feature(op: str) -> str:
    """Returns the per-op calibration feature of a DARTS op name."""
    return op if op in OP_FEATURES else "fixed"


#: the DARTS features (names, op -> feature); :func:`feature_names` for any space
FEATURES = {"group": (GROUPS, op_group), "op": (OP_FEATURES, op_feature)}


def feature_names(space: str = "darts", features: str = "op") -> tuple[str, ...]:
    """Returns the calibration features of a registered space: its candidate ops (no
    ``none``) for ``"op"``, their families for ``"group"``, then ``fused_add`` and
    ``fixed``; raises UserError for an unknown space or kind."""
    if features not in FEATURE_KINDS:
        raise UserError(f"features must be op or group, got {features!r}")
    if (space, features) in _KEPT_ORDER:
        return _KEPT_ORDER[space, features]
    from nasbench.spaces import get_space
    cands = [op for op in get_space(space).candidate_ops if op != "none"]
    names = cands if features == "op" else [op_group(op) for op in cands]
    return tuple(dict.fromkeys([*names, *EXTRA_FEATURES]))


def feature_for(op: str, features: str, names) -> str:
    """Returns the feature of ``op`` among ``names`` (its name for ``"op"``, its
    :func:`op_group` for ``"group"``); ``fixed`` when that is not one of them."""
    f = op if features == "op" else op_group(op)
    return f if f in names and f != "fused_add" else "fixed"


@dataclass
class Calibration:
    """A fitted calibrated predictor for one LUT at one batch size: a scale per
    feature (op or op group; the fixed parts keep scale 1) and an intercept (ms). The
    feature names are the keys of ``coef``; ``space`` is the search space they are of."""

    coef: dict[str, float]
    intercept: float
    fit: dict
    lut_sha256: str
    batch: int = 1
    features: str = "op"
    space: str = "darts"

    @property
    def names(self) -> tuple[str, ...]:
        """Returns the feature names (the coefficients', ``fixed`` included)."""
        return tuple(self.coef)

    def feature_of(self, op: str) -> str:
        """Returns the feature (coefficient name) of an op; ``fixed`` for an op that is
        none of the features."""
        return feature_for(op, self.features, self.coef)

    def predict(self, sums: dict[str, float]) -> float:
        """Returns the calibrated latency (ms) of a network from its feature sums."""
        return self.intercept + sum(self.coef[g] * sums.get(g, 0.0) for g in self.coef)

    def to_dict(self) -> dict:
        """Returns the JSON form stored beside the LUT."""
        return {"schema": CALIBRATION_SCHEMA,
                "model": f"linear, per {self.features}, ridge toward scale 1 (strength "
                         f"by leave-one-out), scales >= 0; fixed parts x1",
                "space": self.space, "features": self.features,
                "feature_names": list(self.coef), "coef": self.coef,
                "intercept_ms": self.intercept, "batch": self.batch,
                "lut_sha256": self.lut_sha256, "fit": self.fit}

    @classmethod
    def from_dict(cls, d: dict) -> Calibration:
        """Returns the Calibration stored by :meth:`to_dict` (files without ``space``
        are DARTS calibrations)."""
        return cls(d["coef"], d["intercept_ms"], d.get("fit", {}), d.get("lut_sha256", ""),
                   int(d.get("batch", 1)), d.get("features", "group"),
                   d.get("space", "darts"))


def calibration_path(lut_path: Path, batch: int = 1) -> Path:
    """Returns where the calibration of a LUT file at ``batch`` is stored (beside it)."""
    p = Path(lut_path)
    return p.with_name(f"{p.stem}.calib-b{batch}.json")


def load_calibration(lut: LUT, batch: int | None = None) -> Calibration | None:
    """Returns the calibration stored beside ``lut`` for ``batch`` (default: the LUT's
    first batch) if it was fitted for this very file (same SHA-256), else None."""
    if lut.path is None:
        return None
    if batch is None:
        batch = lut.batches[0] if lut.batches else 1
    p = calibration_path(lut.path, batch)
    if not p.is_file():
        return None
    c = read_state(p, lambda q: Calibration.from_dict(json.loads(q.read_text())),
                   "calibration file", "delete it or fit it again with nasbench lut "
                   "calibrate")
    return c if c.lut_sha256 == lut.sha256() and c.batch == batch else None


class CalibratedLUT:
    """A LUT view whose latency values are scaled by the calibration's coefficients;
    ``intercept`` (ms) is the per-network constant the cost model adds once. Other
    metrics pass through unchanged."""

    def __init__(self, lut: LUT, calib: Calibration):
        self.lut, self.calib = lut, calib
        self.path, self.provenance = lut.path, lut.provenance
        self.intercept = {"latency": calib.intercept}

    def value(self, op_key: str, batch: int, metric: str = "latency",
              dtype: str = "float32") -> float | None:
        """Returns the calibrated value (latency: scaled ms) of an op instance."""
        v = self.lut.value(op_key, batch, metric, dtype)
        if v is None or metric != "latency":
            return v
        return v * self.calib.coef.get(self.calib.feature_of(op_key.split("/")[0]), 1.0)

    def missing(self, *a, **k):
        """Returns the LUT's missing entries (see LUT.missing)."""
        return self.lut.missing(*a, **k)

    def __getattr__(self, name):
        return getattr(self.lut, name)


def fused_add_scale(lut) -> float | None:
    """Returns the calibrated scale of the node sums a fusing backend folds into a conv
    epilogue (the ``fused_add`` coefficient), or None when ``lut`` is not a calibrated
    view, its backend does not fuse, or it has no node sums: they then count at their
    standalone LUT cost."""
    from nasbench.spaces.darts import node_add_rule
    calib = getattr(lut, "calib", None)
    adds, fused = node_add_rule(lut)
    if calib is None or not (adds and fused) or "fused_add" not in calib.coef:
        return None
    return float(calib.coef["fused_add"])


#: ridge strengths tried by the leave-one-out choice of :func:`fit_calibration`,
#: relative to the features' centred sum of squares (so the same grid suits batch 1 and
#: batch 32, whose sums differ 30x); the top end is "the LUT's scales, plus an intercept"
RIDGE_REL_ALPHAS = tuple(float(a) for a in np.logspace(-6, 3, 37))


def _ridge_to_lut(X: np.ndarray, r: np.ndarray):
    """Returns (deltas, intercept, alpha relative to the features' centred sum of
    squares): a ridge fit of residuals ``r`` (ms) on feature sums ``X`` (ms) whose
    penalty pulls every scale toward 1 (delta = scale - 1 toward 0), its strength chosen
    by efficient leave-one-out (scikit-learn RidgeCV)."""
    from sklearn.linear_model import RidgeCV
    ss = float(np.mean(np.sum((X - X.mean(axis=0)) ** 2, axis=0))) or 1.0
    m = RidgeCV(alphas=[a * ss for a in RIDGE_REL_ALPHAS], fit_intercept=True).fit(X, r)
    return m.coef_, float(m.intercept_), float(m.alpha_) / ss


def fit_calibration(sums: list[dict[str, float]], measured: list[float],
                    lut_sha256: str, batch: int = 1, features: str = "op",
                    space: str = "darts") -> Calibration:
    """Returns the calibration fitted on (feature sums, measured ms) pairs, with its
    in-sample and leave-one-out figures in ``fit``; the features are ``space``'s
    (:func:`feature_names`).

    Model: measured = b + sum_g scale_g * S_g. The scales are shrunk toward 1 (the LUT
    is trusted until the measurements say otherwise): a ridge fit of the residual
    measured - plain sum on the feature sums, its strength chosen by leave-one-out, so a
    handful of noisy networks cannot turn a scale into 6 or 0 (seen with an unshrunk
    least-squares fit on 16 networks at batch 32). Scales are clipped at 0.
    The fixed parts (stem, preprocessing, head) are the same in every network of a
    deploy configuration, so their scale cannot be told apart from the intercept: they
    keep scale 1 and the intercept takes the rest of the per-network overhead.
    The leave-one-out figures refit everything (the strength too) without the network."""
    names = [g for g in feature_names(space, features) if g != "fixed"]
    if len(measured) < 4:
        raise UserError("calibration needs at least 4 measured networks")
    X = np.array([[s.get(g, 0.0) for g in names] for s in sums])
    plain = np.array([sum(s.values()) for s in sums])
    r = np.array(measured, float) - plain

    def fit(Xf, rf):
        d, b, a = _ridge_to_lut(Xf, rf)
        return np.maximum(1.0 + d, 0.0), b, a

    def predict(coef, b, Xf, plain_f):
        # plain = X.sum + fixed, so scale * X + fixed + b = plain + (scale - 1) X + b
        return plain_f + Xf @ (coef - 1.0) + b

    coef, b, alpha = fit(X, r)
    loo = []
    for i in range(len(r)):
        keep = np.arange(len(r)) != i
        c_i, b_i, _ = fit(X[keep], r[keep])
        loo.append(float(predict(c_i, b_i, X[i:i + 1], plain[i:i + 1])[0]))
    meas = list(np.array(measured, float))
    fit_info = {"samples": len(r), "ridge_alpha_rel": alpha,
                "points": [{"sums_ms": s, "measured_ms": float(m)}
                           for s, m in zip(sums, measured, strict=True)],
                "in_sample": error_metrics(list(predict(coef, b, X, plain)), meas),
                "leave_one_out": error_metrics(loo, meas)}
    coef_d = {g: float(c) for g, c in zip(names, coef, strict=True)} | {"fixed": 1.0}
    return Calibration(coef_d, b, fit_info, lut_sha256, batch, features, space)


def error_metrics(predicted: list[float], measured: list[float], worst: int = 0) -> dict:
    """Returns share within +-5 % and +-10 % (fractions), MAPE (%), RMSE (ms), Spearman
    and Kendall rank correlations of predictions against measurements."""
    from scipy.stats import kendalltau, spearmanr
    p, m = np.asarray(predicted, float), np.asarray(measured, float)
    rel = (p - m) / m
    out = {"n": int(len(m)),
           "within_5pct": float(np.mean(np.abs(rel) <= 0.05)),
           "within_10pct": float(np.mean(np.abs(rel) <= 0.10)),
           "mape_pct": float(np.mean(np.abs(rel)) * 100),
           "rmse_ms": float(np.sqrt(np.mean((p - m) ** 2))),
           "bias_pct": float(np.mean(rel) * 100)}
    if len(m) >= 3 and np.ptp(m) > 0 and np.ptp(p) > 0:
        out["spearman"] = float(spearmanr(p, m).statistic)
        out["kendall"] = float(kendalltau(p, m).statistic)
    else:
        out["spearman"] = out["kendall"] = math.nan
    if worst:
        order = np.argsort(-np.abs(rel))[:worst]
        out["worst"] = [int(i) for i in order]
    return out
