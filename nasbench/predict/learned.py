"""The learned cost model of a LUT: the LUT sum plus a model of what the sum misses.

A LUT's sum is exact only where a device runs ops one after another. A graph compiler
drops ops whose result no one reads, fuses neighbours and runs ops that share an input
together; the sum misses all of it. The learned model keeps the sum and learns the
residual from N measured networks::

    cost = plain + sum_op d_op * S_op + b + sum_f w_f * z_f(arch)

Stage 1, ``d_op`` and the offset, is the linear calibration of the LUT's sum per op
``S_op`` (each op's scale - 1, shrunk toward 0). Stage 2 models what it leaves: ``z``
are the standardised structural *terms* of a network (:func:`terms`): the space's
structural cost features (:meth:`~nasbench.spaces.base.SearchSpace.cost_features`:
which ops reach the output, which share an input, each decision's op), and, for
few-shot transfer, the cost of the network on devices already known
(``prior:<name>``: another device's table or learned model). Both are ridge fits
(scikit-learn), their strengths chosen by leave-one-out, so with few networks the
model stays near the calibrated sum; its uncertainty is the stage-2 ridge posterior's
predictive standard deviation, with the noise scale taken from the leave-one-out
residuals.

Stored beside the LUT as ``<lut>.learned-b<batch>.json`` (latency) or
``<lut>.learned-<metric>-b<batch>.json``, with its provenance (the LUT's SHA-256, the
device, the samples, the seed, the priors, the fit figures). A model fitted for another
LUT file is not used.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nasbench.errors import UserError, read_state
from nasbench.predict.calibration import _ridge_to_lut, error_metrics
from nasbench.predict.table import CostTable
from nasbench.spaces import get_space
from profilers.lut import LUT, LUTError

SCHEMA = 1
#: ridge strengths tried by leave-one-out (on standardised terms)
ALPHAS = tuple(float(a) for a in np.logspace(-3, 4, 29))
#: the structural term sets stage 2 chooses among by leave-one-out (see
#: :func:`fit_learned`), smallest first; each also with the priors where there are any
TERM_SETS = (("used:",), ("n:", "used:"), ("",))
METRIC_UNITS = {"latency": "ms", "energy": "J", "memory": "B"}


class Terms:
    """The learned model's inputs (see the module doc) of many architectures of one
    space: the structural part and the decisions are read once per architecture; the
    LUT sums come from the LUT's :class:`~nasbench.predict.table.CostTable` (the
    search's own source of LUT costs), so the terms under another LUT or metric cost a
    table read per decision."""

    def __init__(self, space, archs):
        self.space = space
        self.archs = list(archs)
        self.picks = [space.picks(a) for a in self.archs]
        self.structure = [space.cost_features(a) for a in self.archs]

    def rows(self, lut, metric: str = "latency", priors=(), table=None
             ) -> list[dict[str, float]]:
        """Returns one dict of terms per architecture: ``lut:<op>`` (the sum over the
        decisions that picked ``op``), ``lut:fixed`` (the parts every network has, and
        the node sums a backend adds) and ``lut:plain`` (their total) in the LUT's unit,
        the structural counts, ``prior:<name>`` (the prior's unit, NaN where it has
        none); raises UserError naming the entries the LUT lacks. ``table``: the
        LUT's cost table when the caller has it (:func:`cost_table`)."""
        table = table or cost_table(self.space, lut, metric)
        t, fixed = table.tables[metric].tolist(), float(table.fixed[metric])
        col = {op: table.column(op) for op in table.candidates}
        extra = table.extra.get(metric)
        out = []
        for picks, struct in zip(self.picks, self.structure, strict=True):
            row = {"lut:fixed": fixed + (float(extra.exact(picks)) if extra else 0.0)}
            for s, op in picks:
                k = f"lut:{op}"
                row[k] = row.get(k, 0.0) + t[s][col[op]]
            row["lut:plain"] = sum(row.values())
            row |= struct
            out.append(row)
        for p in priors:           # a prior answers many networks at once (a model)
            for row, v in zip(out, p.values(self.archs), strict=True):
                row[f"prior:{p.name}"] = float(v)
        return out


def cost_table(space, lut, metric: str = "latency"):
    """Returns the LUT's :class:`~nasbench.predict.table.CostTable` of ``metric``;
    raises UserError naming the entries the LUT lacks."""
    try:
        return CostTable.from_lut(space, lut, [metric])
    except KeyError as e:
        missing = e.args[1]
        raise UserError(f"LUT {lut.path} has no {metric} for {len(missing)} entries of "
                        f"the {space.name} deploy network, e.g. {missing[0]}") from None


@dataclass
class LearnedModel:
    """A fitted learned cost model (see the module doc). ``names`` are the terms'
    names in column order; ``center``/``scale`` standardise them; ``coef`` and
    ``intercept`` are the ridge's (``intercept`` in the metric's unit); ``inv`` is
    (Z'Z + alpha I)^-1 of the standardised design, ``sigma`` the noise scale (unit)."""

    space: str
    metric: str
    batch: int
    lut_sha256: str
    names: list[str]
    center: list[float]
    scale: list[float]
    coef: list[float]
    intercept: float
    alpha: float
    sigma: float
    inv: list[list[float]]
    priors: list[dict] = field(default_factory=list)
    fit: dict = field(default_factory=dict)
    #: stage 1: each LUT sum's scale - 1 (the linear calibration; its offset is in
    #: ``intercept``)
    lut_delta: dict = field(default_factory=dict)

    def _z(self, rows: list[dict]) -> np.ndarray:
        x = np.array([[r.get(n, 0.0) for n in self.names] for r in rows], float)
        c = np.asarray(self.center)
        x = np.where(np.isnan(x), c, x)          # a prior without a value: its mean
        return (x - c) / np.asarray(self.scale)

    def predict_terms(self, rows: list[dict]) -> tuple[np.ndarray, np.ndarray]:
        """Returns (predicted cost, standard deviation) of networks given their
        :func:`terms` (the metric's unit)."""
        z = self._z(rows)
        base = np.array([r["lut:plain"] + sum(d * r.get(n, 0.0)
                                              for n, d in self.lut_delta.items())
                         for r in rows], float)
        mean = base + self.intercept + z @ np.asarray(self.coef)
        var = 1.0 / len(self.fit.get("points", [])) if self.fit.get("points") else 0.0
        quad = np.einsum("ij,jk,ik->i", z, np.asarray(self.inv), z)
        return mean, self.sigma * np.sqrt(1.0 + var + quad)

    def to_dict(self) -> dict:
        """Returns the JSON form stored beside the LUT."""
        return {"schema": SCHEMA, "model": "LUT sum + ridge on standardised terms "
                "(LUT sums per op, the space's structural cost features, prior devices' "
                "costs), strength by leave-one-out",
                "unit": METRIC_UNITS[self.metric], **self.__dict__}

    @classmethod
    def from_dict(cls, d: dict) -> LearnedModel:
        """Returns the model stored by :meth:`to_dict`; raises on a malformed one."""
        if d.get("schema") != SCHEMA:
            raise ValueError(f"schema {d.get('schema')!r}, expected {SCHEMA}")
        m = cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})
        n = len(m.names)
        if not (len(m.center) == len(m.scale) == len(m.coef) == n and len(m.inv) == n):
            raise ValueError("term vectors of different lengths")
        if not all(math.isfinite(v) for v in [*m.coef, m.intercept, m.sigma]):
            raise ValueError("non-finite coefficients")
        return m


def _lut_terms(rows: list[dict]) -> list[str]:
    """Returns the per-op LUT sums of the rows (``lut:<op>``, not fixed or plain)."""
    return sorted({n for r in rows for n in r if n.startswith("lut:")
                   and n not in ("lut:plain", "lut:fixed")})


def fit_learned(rows: list[dict], measured: list[float], *, space: str, metric: str,
                batch: int, lut_sha256: str, priors=(), info: dict | None = None
                ) -> LearnedModel:
    """Returns the learned model fitted on networks' :func:`terms` and their measured
    cost (the metric's unit), with its leave-one-out figures in ``fit``; raises
    UserError with fewer than 5 networks or a non-positive measurement.

    Two stages, so that the model never does worse than the linear calibration for
    want of data: (1) the linear calibration of the LUT sums (a scale per op shrunk
    toward 1 and an offset, :func:`~nasbench.predict.calibration.fit_calibration`'s
    ridge); (2) a ridge of what it leaves on the standardised structural terms (and
    the priors), weighted 1/measured (noise that grows with the cost: a miss on a cheap
    network counts more than the same miss on a dear one). Stage 2's terms are the set
    of :data:`TERM_SETS` (with or without the priors) of least leave-one-out error:
    tens of networks cannot fit every structural term, a hundred can. The
    leave-one-out figures are stage 2's, stage 1 held fixed."""
    if len(rows) < 5:
        raise UserError("a learned model needs at least 5 measured networks")
    y = np.asarray(measured, float)
    if not np.all(np.isfinite(y) & (y > 0)):
        raise UserError("a learned model needs positive, finite measurements")
    plain = np.array([r["lut:plain"] for r in rows], float)
    # stage 1: the linear calibration of the LUT sums
    lut_names = _lut_terms(rows)
    x1 = np.array([[r.get(n, 0.0) for n in lut_names] for r in rows], float)
    delta, b1, _ = _ridge_to_lut(x1, y - plain)
    base = plain + x1 @ delta + b1
    # stage 2: the structure, its term set chosen by leave-one-out
    every = sorted({n for r in rows for n in r if not n.startswith("lut:")})
    prior_names = [n for n in every if n.startswith("prior:")]
    sets = []
    for prefixes in TERM_SETS:
        ns = [n for n in every if n.startswith(prefixes) and n not in prior_names]
        sets += [ns, ns + prior_names] if prior_names else [ns]
    fits = [_stage2(rows, y, base, ns) for ns in sets]
    # the set of least weighted LOO error (a tie goes to the smaller set, listed first)
    names, center, scale, z, cv, loo_pred = min(
        fits, key=lambda f: float(np.mean((f[-1] - (y - base)) ** 2 / y)))
    loo_pred = base + loo_pred
    sigma = float(np.sqrt(np.mean((loo_pred - y) ** 2)))
    zc = z - z.mean(axis=0)
    inv = np.linalg.inv(zc.T @ zc + cv.alpha_ * np.eye(z.shape[1]))
    fit = {"samples": len(y), "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
           "linear": {"scales": {n: 1.0 + float(d) for n, d in
                                 zip(lut_names, delta, strict=True)},
                      "offset": float(b1),
                      "in_sample": error_metrics(list(base), list(y))},
           "in_sample": error_metrics(list(base + cv.predict(z)), list(y)),
           "leave_one_out": error_metrics(list(loo_pred), list(y)),
           "points": [{"measured": float(m)} for m in y], **(info or {})}
    return LearnedModel(space, metric, int(batch), lut_sha256, names, center.tolist(),
                        scale.tolist(), cv.coef_.tolist(), float(cv.intercept_) + float(b1),
                        float(cv.alpha_), sigma, inv.tolist(),
                        [p.spec() for p in priors], fit,
                        dict(zip(lut_names, delta.tolist(), strict=True)))


def _stage2(rows: list[dict], y: np.ndarray, base: np.ndarray, names: list[str]):
    """Returns (names, center, scale, z, fitted RidgeCV, LOO prediction of y - base) of
    stage 2 on the terms ``names`` plus the plain sum (where the LUT itself is off,
    fitted on few networks or measured at another speed, stage 2 can scale it, shrunk
    toward stage 1's use of it)."""
    from sklearn.linear_model import RidgeCV  # (scikit-learn loads in ~1 s)
    names = [*names, "lut:plain"]
    x = np.array([[r.get(n, 0.0) for n in names] for r in rows], float)
    seen = ~np.isnan(x)
    center = np.where(seen, x, 0.0).sum(axis=0) / np.maximum(seen.sum(axis=0), 1)
    x = np.where(np.isnan(x), center, x)
    scale = x.std(axis=0)
    keep = scale > 1e-12                        # constant terms carry nothing
    names = [n for n, k in zip(names, keep, strict=True) if k]
    center, scale, x = center[keep], scale[keep], x[:, keep]
    z = (x - center) / scale
    w = 1.0 / y
    w = w / w.mean()
    # with a scoring, RidgeCV keeps each network's leave-one-out prediction per strength
    cv = RidgeCV(alphas=ALPHAS, fit_intercept=True, store_cv_results=True,
                 scoring="neg_mean_squared_error").fit(z, y - base, sample_weight=w)
    loo = cv.cv_results_[:, list(ALPHAS).index(float(cv.alpha_))]
    return names, center, scale, z, cv, loo


def learned_path(lut_path: Path, batch: int = 1, metric: str = "latency") -> Path:
    """Returns where the learned model of a LUT file is stored (beside it)."""
    p = Path(lut_path)
    tag = "" if metric == "latency" else f"-{metric}"
    return p.with_name(f"{p.stem}.learned{tag}-b{batch}.json")


def read_learned(path: Path) -> LearnedModel:
    """Returns the learned model stored at ``path``; raises UserError (one line) when
    the file is damaged."""
    return read_state(Path(path), lambda q: LearnedModel.from_dict(json.loads(q.read_text())),
                      "learned model file", "delete it or fit it again with nasbench lut "
                      "calibrate --model learned")


def load_learned(lut, batch: int | None = None, metric: str = "latency"
                 ) -> LearnedModel | None:
    """Returns the learned model stored beside ``lut`` for ``batch`` and ``metric`` if
    it was fitted for this very file (same SHA-256), else None."""
    if lut.path is None:
        return None
    batch = batch or (lut.batches[0] if lut.batches else 1)
    p = learned_path(lut.path, batch, metric)
    if not p.is_file():
        return None
    m = read_learned(p)
    return m if m.lut_sha256 == lut.sha256() and m.batch == batch else None


class LearnedCost:
    """A learned model bound to its space and LUT (and priors): the cost of any
    architecture, cached per architecture (the metric's unit)."""

    def __init__(self, model: LearnedModel, space, lut, priors=()):
        self.model, self.space, self.lut = model, space, lut
        self.priors = list(priors) or [prior_from_spec(s) for s in model.priors]
        self.table = cost_table(space, lut, model.metric)
        self._cache: dict = {}

    def predict(self, archs) -> tuple[np.ndarray, np.ndarray]:
        """Returns (cost, standard deviation) of each architecture (the unit)."""
        rows = Terms(self.space, archs).rows(self.lut, self.model.metric, self.priors,
                                             self.table)
        return self.model.predict_terms(rows)

    def __call__(self, arch) -> float:
        """Returns the predicted cost of one architecture (the unit)."""
        key = repr(self.space.arch_to_dict(arch))
        if key not in self._cache:
            self._cache[key] = float(self.predict([arch])[0][0])
        return self._cache[key]


# ---- priors: other devices' costs of the same network ----------------------------------

#: kind -> prior class (``cls.from_spec(spec)`` rebuilds one a model file recorded);
#: a layer above adds its own (:mod:`nasbench.benchmarks.hwnas` registers ``table``)
PRIOR_KINDS: dict[str, type] = {}


def register_prior(kind: str):
    """Returns a class decorator registering a prior kind (see :data:`PRIOR_KINDS`)."""
    def decorate(cls):
        PRIOR_KINDS[kind] = cls
        return cls
    return decorate


@register_prior("model")
class ModelPrior:
    """Another device's learned model (its file and its LUT, recorded in it)."""

    def __init__(self, path, lut_path=None):
        self.path = Path(path)
        self.model = read_learned(self.path)
        lut_path = Path(lut_path or self.model.fit.get("lut_path", ""))
        try:
            lut = LUT.load(lut_path)
        except (LUTError, OSError) as e:
            raise UserError(f"prior {path}: its LUT {lut_path} cannot be read ({e})") from None
        if lut.sha256() != self.model.lut_sha256:
            raise UserError(f"prior {path} was fitted for another LUT than {lut_path}")
        space_cls = get_space(self.model.space)
        space = space_cls(space_cls.deploy_from_lut(lut, self.model.batch))
        self.cost = LearnedCost(self.model, space, lut)
        self.name = self.path.name

    def __call__(self, arch) -> float:
        return self.cost(arch)

    def values(self, archs) -> list[float]:
        """Returns the prior device's predicted cost of each architecture."""
        return list(self.cost.predict(archs)[0])

    def spec(self) -> dict:
        """Returns what the model file records to rebuild this prior."""
        return {"kind": "model", "path": str(self.path),
                "lut_path": str(self.model.fit.get("lut_path", ""))}

    @classmethod
    def from_spec(cls, spec: dict) -> ModelPrior:
        """Returns the prior :meth:`spec` describes."""
        return cls(spec["path"], spec.get("lut_path") or None)


def prior_from_spec(spec: dict):
    """Returns the prior a model file recorded (its class's ``spec``); raises UserError
    when its kind is unknown or it cannot be rebuilt."""
    cls = PRIOR_KINDS.get(spec.get("kind"))
    if cls is None:
        raise UserError(f"a learned model file names an unknown prior {spec!r} "
                        f"(known: {', '.join(PRIOR_KINDS)})")
    try:
        return cls.from_spec(spec)
    except (KeyError, TypeError) as e:
        raise UserError(f"a learned model file names a malformed prior {spec!r} "
                        f"({e.__class__.__name__})") from None
