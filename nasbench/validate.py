"""How good is the LUT's prediction? ``nasbench lut validate`` and ``lut calibrate``.

Validation samples architectures of the DARTS space, predicts each deploy network's
latency from the LUT (the plain sum over its op instances, and the calibrated predictor
when one is fitted) and measures it end to end with the LUT's own meter settings and
thread count, so both sides are measured alike.

The calibrated predictor is a small, explainable linear model (scikit-learn ridge,
scales shrunk toward 1) on the plain sum split by op (or op group)::

    latency = b + a_sep * S_sep + a_dil * S_dil + a_pool * S_pool + a_skip * S_skip
                + a_fixed * S_fixed

``S_g`` is the LUT latency of the network's ops of group ``g``. ``a_g`` < 1 says the ops
run faster inside a network than alone (warm caches, overlapped launch overhead), ``b``
is the per-network overhead (Python dispatch, cat, adds). Because it only rescales LUT
values and adds a constant, the search's expected cost stays a differentiable weighted
sum when it uses it (:class:`CalibratedLUT`).
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from profilers.latency import LONG_CALL_MS, LatencySettings
from profilers.lut import LUT, atomic_write_text

from .errors import UserError
from .genotypes import Genotype, genotype_to_dict, summarize
from .ops import PRIMITIVES
from .spaces.darts import DeployConfig, fused_node_adds, network_instances, node_add_rule

GROUPS = ("sep_conv", "dil_conv", "pool", "skip", "fused_add", "fixed")
#: finer features: one per candidate op (the fixed parts stay one group)
OP_FEATURES = ("sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5",
               "max_pool_3x3", "avg_pool_3x3", "skip_connect", "fused_add", "fixed")
CALIBRATION_SCHEMA = 2


def op_group(op: str) -> str:
    """Returns the calibration group of a registered op name."""
    if op.startswith("sep_conv"):
        return "sep_conv"
    if op.startswith("dil_conv"):
        return "dil_conv"
    if "pool" in op:
        return "pool"
    if op in ("skip_connect", "none"):
        return "skip"
    return "fixed"


def op_feature(op: str) -> str:
    """Returns the per-op calibration feature of a registered op name."""
    return op if op in OP_FEATURES else "fixed"


FEATURES = {"group": (GROUPS, op_group), "op": (OP_FEATURES, op_feature)}


def sample_genotype(rng: random.Random, steps: int = 4) -> Genotype:
    """Returns a uniformly sampled genotype: per node two distinct inputs, each with a
    uniformly chosen non-``none`` op (the shape of every DARTS-derived cell)."""
    ops = [p for p in PRIMITIVES if p != "none"]

    def cell():
        edges = []
        for node in range(steps):
            for j in sorted(rng.sample(range(node + 2), 2)):
                edges.append((rng.choice(ops), j))
        return edges

    concat = list(range(2, 2 + steps))
    return Genotype(cell(), concat, cell(), concat)


def deploy_from_lut(lut: LUT, batch: int | None = None) -> DeployConfig:
    """Returns the deploy network a LUT describes, at ``batch`` (default: its first)."""
    d = lut.provenance.get("deploy")
    if not d:
        raise UserError(f"LUT {lut.path} does not record its deploy network")
    batches = lut.batches
    batch = batch or (batches[0] if batches else 1)
    if batch not in batches:
        raise UserError(f"LUT {lut.path} has no batch {batch} (it has {batches})")
    keys = ("channels", "layers", "input_size", "in_channels", "num_classes", "steps",
            "multiplier", "stem_multiplier")
    return DeployConfig(**{k: d[k] for k in keys if k in d}, batches=(batch,),
                        dtype=lut.provenance.get("dtype", "float32"))


def group_sums(lut: LUT, deploy: DeployConfig, g: Genotype,
               features: str = "op") -> dict[str, float]:
    """Returns the plain LUT latency (ms) of the deploy network of ``g``, split by
    feature (:data:`OP_FEATURES` for "op", :data:`GROUPS` for "group"; node sums count
    as fixed, those a fusing backend folds into a conv as ``fused_add``); raises
    UserError naming a missing entry."""
    names, key_of = FEATURES[features]
    batch = deploy.batches[0]
    adds, fused = node_add_rule(lut)
    insts = network_instances(deploy, g, node_adds=adds, fused_adds=fused)
    sums = dict.fromkeys(names, 0.0)
    if adds and fused:
        # at their standalone cost (measured: an epilogue add is not free, see the
        # README); the calibration learns their share
        for inst in fused_node_adds(deploy, g):
            sums["fused_add"] += lut.value(inst.key, batch, "latency", deploy.dtype) or 0.0
    for inst in insts:
        v = lut.value(inst.key, batch, "latency", deploy.dtype)
        if v is None:
            raise UserError(f"LUT {lut.path} lacks {inst.key}/b{batch}/{deploy.dtype}")
        sums[key_of(inst.op)] += v
    return sums


@dataclass
class Calibration:
    """A fitted calibrated predictor for one LUT at one batch size: a scale per
    feature (op or op group; the fixed parts keep scale 1) and an intercept (ms)."""

    coef: dict[str, float]
    intercept: float
    fit: dict
    lut_sha256: str
    batch: int = 1
    features: str = "op"

    def feature_of(self, op: str) -> str:
        """Returns the feature (coefficient name) of an op."""
        return FEATURES[self.features][1](op)

    def predict(self, sums: dict[str, float]) -> float:
        """Returns the calibrated latency (ms) of a network from its feature sums."""
        return self.intercept + sum(self.coef[g] * sums[g] for g in self.coef)

    def to_dict(self) -> dict:
        """Returns the JSON form stored beside the LUT."""
        return {"schema": CALIBRATION_SCHEMA,
                "model": f"linear, per {self.features}, ridge toward scale 1 (strength "
                         f"by leave-one-out), scales >= 0; fixed parts x1",
                "features": self.features, "coef": self.coef, "intercept_ms": self.intercept,
                "batch": self.batch, "lut_sha256": self.lut_sha256, "fit": self.fit}

    @classmethod
    def from_dict(cls, d: dict) -> Calibration:
        """Returns the Calibration stored by :meth:`to_dict`."""
        return cls(d["coef"], d["intercept_ms"], d.get("fit", {}), d.get("lut_sha256", ""),
                   int(d.get("batch", 1)), d.get("features", "group"))


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
    try:
        c = Calibration.from_dict(json.loads(p.read_text()))
    except (ValueError, KeyError, TypeError):
        return None
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
                    lut_sha256: str, batch: int = 1, features: str = "op") -> Calibration:
    """Returns the calibration fitted on (feature sums, measured ms) pairs, with its
    in-sample and leave-one-out figures in ``fit``.

    Model: measured = b + sum_g scale_g * S_g. The scales are shrunk toward 1 (the LUT
    is trusted until the measurements say otherwise): a ridge fit of the residual
    measured - plain sum on the feature sums, its strength chosen by leave-one-out, so a
    handful of noisy networks cannot turn a scale into 6 or 0 (seen with an unshrunk
    least-squares fit on 16 networks at batch 32). Scales are clipped at 0.
    The fixed parts (stem, preprocessing, head) are the same in every network of a
    deploy configuration, so their scale cannot be told apart from the intercept: they
    keep scale 1 and the intercept takes the rest of the per-network overhead.
    The leave-one-out figures refit everything (the strength too) without the network."""
    names = [g for g in FEATURES[features][0] if g != "fixed"]
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
    return Calibration(coef_d, b, fit_info, lut_sha256, batch, features)


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


def measure_samples(lut: LUT, device: str, genotypes: list[Genotype], deploy: DeployConfig,
                    progress=None, features: str = "op", rounds: int = 3,
                    min_repeats: int | None = None) -> list[dict]:
    """Returns one point per genotype: feature sums, plain prediction (ms), end-to-end
    measurement (latency stats in ms) with the LUT's meter settings and threads.

    Every network is measured in ``rounds`` rounds spread over the whole run (round r
    of every network before round r + 1 of any); the round with the median latency is
    kept and every round's median is stored, so a slow period of the machine cannot
    make one network look slow (``round_spread`` shows how much the rounds differ)."""
    import torch

    from profilers.machine import LoadMonitor

    from .models.network import build_network_from_genotype
    from .profiling import measure_network, prepare_lut_anchor
    prov = lut.provenance
    anchor = prepare_lut_anchor(lut, device, deploy)
    settings = LatencySettings(**prov["settings"]) if "settings" in prov else \
        LatencySettings()
    # a whole network is ~100x an op: give the median as many samples as an op gets
    # (min_repeats: fewer for networks of seconds, e.g. large batches)
    settings = LatencySettings(**{**settings.to_dict(), "rounds": 1,
                                  "time_cap_s": max(settings.time_cap_s, 3.0) / rounds,
                                  "min_repeats": min_repeats or settings.min_repeats,
                                  # a network of seconds is warm after one call
                                  "warmup": 1 if min_repeats else settings.warmup,
                                  "max_repeats": max(settings.max_repeats,
                                                     min_repeats or 0)})
    threads = prov.get("threads")
    old_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    shape = (deploy.batches[0], deploy.in_channels, deploy.input_size, deploy.input_size)
    runs: list[list[dict]] = [[] for _ in genotypes]
    nets: dict[int, torch.nn.Module] = {}
    total = rounds * len(genotypes)
    try:
        with LoadMonitor() as monitor:
            for r in range(rounds):
                for i, g in enumerate(genotypes):
                    if progress:
                        progress(r * len(genotypes) + i, total,
                                 f"round {r + 1}/{rounds}: {summarize(g)[:50]}")
                    if i not in nets:
                        nets[i] = build_network_from_genotype(
                            g, C=deploy.channels, num_cells=deploy.layers,
                            num_classes=deploy.num_classes, in_channels=deploy.in_channels,
                            input_size=deploy.input_size)
                    t0 = time.monotonic()
                    m = measure_network(nets[i], shape, device, settings, anchor)
                    busy = monitor.busy_between(t0, time.monotonic())
                    runs[i].append({"latency_ms": m["latency_ms"], "threads": m["threads"],
                                    "under_load": busy[:3], "anchored": m.get("anchored")})
                    if r == rounds - 1:
                        del nets[i]              # the last round frees as it goes
        if progress:
            progress(total, total, "")
    finally:
        torch.set_num_threads(old_threads)
        if anchor is not None:
            anchor.release()
    ref = prov["anchor"]["ref_ms"] if anchor is not None else None
    points = []
    for g, rs in zip(genotypes, runs, strict=True):
        sums = group_sums(lut, deploy, g, features)
        # drift-corrected in the LUT's time base (see profilers.build.finalize_anchor);
        # else the measured median
        val = [corrected_ms(x, ref) for x in rs]
        k = sorted(range(len(rs)), key=val.__getitem__)[(len(rs) - 1) // 2]
        keep = rs[k]
        meds = [x["latency_ms"]["median"] for x in rs]
        spread = max(val) / min(val) - 1.0
        point = {"genotype": genotype_to_dict(g), "summary": summarize(g),
                 "group_sums_ms": sums, "predicted_ms": sum(sums.values()),
                 "measured_ms": val[k], "raw_measured_ms": keep["latency_ms"]["median"],
                 "measured": keep["latency_ms"], "threads": keep["threads"],
                 "rounds_ms": meds, "round_spread": spread,
                 **({"under_load": keep["under_load"]} if keep["under_load"] else {})}
        if ref:
            point["rounds_corrected_ms"] = val
            point["correction"] = "anchor" if keep.get("anchored") else "none (long forward)"
            if keep.get("anchored"):
                point["anchored"] = keep["anchored"]
        points.append(point)
    return points


def corrected_ms(run: dict, ref: float | None) -> float:
    """Returns one round of a network in the LUT's time base (ms): its bracketed ratio
    to the anchor x ``ref``; the measured median without an anchor, or when the meter
    did not anchor it (a forward longer than :data:`~profilers.latency.LONG_CALL_MS`)."""
    if not ref or not run.get("anchored"):
        return run["latency_ms"]["median"]
    return run["anchored"]["ratio"] * ref


def noise_floor(points: list[dict]) -> dict | None:
    """Returns how well the measurement agrees with itself: every other round of a
    network against the kept one, as the share within +-5 % / +-10 % and the mean
    absolute deviation (%), and ``round_levels``, each round's median of round / kept
    over all networks. A perfect predictor scores about this, not better."""
    rel = []
    for p in points:
        rounds = p.get("rounds_corrected_ms") or p.get("rounds_ms") or []
        if len(rounds) < 2:
            continue
        rest = list(rounds)
        rest.remove(min(rounds, key=lambda v: abs(v - p["measured_ms"])))
        rel += [v / p["measured_ms"] - 1.0 for v in rest]
    if not rel:
        return None
    r = np.abs(np.array(rel))
    out = {"n": len(rel), "within_5pct": float(np.mean(r <= 0.05)),
           "within_10pct": float(np.mean(r <= 0.10)), "mad_pct": float(np.mean(r) * 100)}
    # round r of every network ran in the same stretch of time: a level common to a
    # round is the machine (or the anchor's tracking of it) moving, not the networks
    rows = [p.get("rounds_corrected_ms") or p.get("rounds_ms") for p in points]
    if len({len(x or []) for x in rows}) == 1 and len(rows[0] or []) > 1:
        out["round_levels"] = [float(v) for v in np.median(
            np.array(rows) / np.array([p["measured_ms"] for p in points])[:, None], axis=0)]
    return out


def anchor_noise_warning(corrected: dict | None, raw: dict | None) -> str | None:
    """Returns a warning when the uncorrected rounds agree clearly better (by more than
    10 points within 10 %) than the drift-corrected ones, else None."""
    if not corrected or not raw or raw["within_10pct"] <= corrected["within_10pct"] + 0.10:
        return None
    # seen at batch 32 on a CPU: a 1 ms anchor beside forwards of a second
    return (f"the drift anchor adds noise here: uncorrected rounds agree "
            f"{raw['within_10pct']:.0%} within 10%, corrected {corrected['within_10pct']:.0%}; "
            f"compare with `plain_raw`")


def _anchor_summary(lut: LUT, points: list[dict]) -> dict | None:
    """Returns the drift anchor's figures of a validation (None without an anchor):
    the LUT's reference time, this run's median anchor time (ms) and their ratio - 1."""
    a = [p["anchored"]["anchor_ms"]["median"] for p in points if "anchored" in p]
    if not a:
        return None
    ref = lut.provenance["anchor"]["ref_ms"]
    med = float(np.median(a))
    return {"key": lut.provenance["anchor"]["key"], "ref_ms": ref, "median_ms": med,
            "drift": med / ref - 1.0, "spread": max(a) / min(a) - 1.0,
            "method": lut.provenance["anchor"].get("method", "")}


def run_validation(lut: LUT, device: str, samples: int, seed: int = 0,
                   batch: int | None = None, genotypes: list[Genotype] | None = None,
                   progress=None, rounds: int = 3, min_repeats: int | None = None) -> dict:
    """Returns the validation report: points, metrics of the plain sum and (when fitted)
    of the calibrated predictor, noise (CVs, load) and provenance."""
    import os
    deploy = deploy_from_lut(lut, batch)
    rng = random.Random(seed)
    gs = list(genotypes or []) + [sample_genotype(rng) for _ in range(samples)]
    if not gs:
        raise UserError("nothing to validate: --samples is 0 and no --from-run")
    from profilers.machine import machine_state
    t0 = time.perf_counter()
    load0 = os.getloadavg()
    state0 = machine_state()
    points = measure_samples(lut, device, gs, deploy, progress, rounds=rounds,
                             min_repeats=min_repeats)
    state1 = machine_state()
    meas = [p["measured_ms"] for p in points]
    plain = error_metrics([p["predicted_ms"] for p in points], meas, worst=3)
    anchor = _anchor_summary(lut, points)
    cvs = [p["measured"]["cv"] for p in points]
    thr = LatencySettings(**lut.provenance["settings"]).cv_threshold \
        if "settings" in lut.provenance else LatencySettings().cv_threshold
    warnings = [w for w in (state0.warning(), state1.warning()) if w]
    n_loaded = sum(bool(p.get("under_load")) for p in points)
    if n_loaded:
        warnings.append(f"{n_loaded} of {len(points)} networks were measured while other "
                        f"processes were busy (flagged `under_load` in the JSON)")
    n_noisy = sum(c > thr for c in cvs)
    if n_noisy:
        warnings.append(f"{n_noisy} of {len(cvs)} end-to-end measurements are noisy "
                        f"(CV above {thr}); their errors say as much about the machine as "
                        f"about the LUT")
    out = {"schema": 2, "lut": str(lut.path), "lut_sha256": lut.sha256(), "device": device,
           "batch": deploy.batches[0], "seed": seed, "samples": len(points),
           "rounds": rounds,
           "seconds": round(time.perf_counter() - t0, 1),
           "loadavg": {"start": load0, "end": os.getloadavg()},
           "machine": {"start": state0.to_dict(), "end": state1.to_dict()},
           "loaded": state0.loaded or state1.loaded or n_loaded > 0,
           "under_load": n_loaded, "noisy": n_noisy,
           "warnings": list(dict.fromkeys(warnings)),
           "cv": {"median": float(np.median([p["measured"]["cv"] for p in points])),
                  "max": float(np.max([p["measured"]["cv"] for p in points]))},
           "lut_median_cv": float(np.median([e["latency_ms"]["cv"]
                                             for e in lut.entries.values()])),
           "plain": plain, "noise_floor": noise_floor(points), "points": points}
    n_long = sum(p.get("correction", "").startswith("none") for p in points)
    if n_long:
        warnings.append(f"{n_long} of {len(points)} networks ran longer than "
                        f"{LONG_CALL_MS:.0f} ms a forward: kept as measured, not "
                        f"drift-corrected (the anchor does not track them)")
        out["warnings"] = list(dict.fromkeys(warnings))
    if anchor:
        # the same prediction against the measured (uncorrected) medians, for honesty
        out["anchor"] = anchor
        out["plain_raw"] = error_metrics([p["predicted_ms"] for p in points],
                                         [p["raw_measured_ms"] for p in points])
        raw_floor = noise_floor([{"measured_ms": p["raw_measured_ms"],
                                  "rounds_ms": p["rounds_ms"]} for p in points])
        out["noise_floor_raw"] = raw_floor
        w = anchor_noise_warning(out["noise_floor"], raw_floor)
        if w:
            warnings.append(w)
        if abs(anchor["drift"]) > 0.10:
            way = "slower" if anchor["drift"] > 0 else "faster"
            # the anchor is one small compute-bound op: on the development VM networks
            # moved 4.9 % (sd) against each other between two such sessions, and a
            # calibration fitted just before missed by +4.5 % (README, figures)
            warnings.append(f"the machine ran {abs(anchor['drift']):.0%} {way} than during "
                            f"the profile by the anchor (anchor {anchor['median_ms']:.3g} ms "
                            f"vs {anchor['ref_ms']:.3g} ms); the corrected figures take out "
                            f"what the anchor sees of it, not all: a calibration fitted at "
                            f"another speed may be off (refit it with `lut calibrate "
                            f"--from-validation`), `plain_raw` shows it")
        out["warnings"] = list(dict.fromkeys(warnings))
    calib = load_calibration(lut, deploy.batches[0])
    if calib is not None:
        if calib.features != "op":
            for p, g in zip(points, gs, strict=True):
                p["group_sums_ms"] = group_sums(lut, deploy, g, calib.features)
        for p in points:
            p["calibrated_ms"] = calib.predict(p["group_sums_ms"])
        out["calibrated"] = error_metrics([p["calibrated_ms"] for p in points], meas,
                                          worst=3)
        out["calibration"] = calib.to_dict()
    return out


def write_json(path: Path, obj: dict) -> Path:
    """Writes ``obj`` as JSON atomically; returns the path."""
    atomic_write_text(Path(path), json.dumps(obj, indent=1, default=float))
    return Path(path)
