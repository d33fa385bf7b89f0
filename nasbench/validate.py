"""How good is the LUT's prediction? ``nasbench lut validate`` and ``lut calibrate``.

Validation samples architectures of the LUT's search space (the space its provenance
records: ``darts``, ``proxyless``...), predicts each deploy network's latency from the
LUT (the plain sum over its op instances, and the calibrated predictor when one is
fitted) and measures it end to end with the LUT's own meter settings and thread count,
so both sides are measured alike.

The calibrated predictor (:mod:`nasbench.predict.calibration`, re-exported here) is a
small, explainable linear model on the plain sum split by op (or op family)::

    latency = b + a_sep * S_sep + a_dil * S_dil + a_pool * S_pool + a_skip * S_skip
                + a_fixed * S_fixed

``S_g`` is the LUT latency of the network's ops of group ``g`` (DARTS groups above;
ProxylessNAS: ``mbconv``, ``skip``). ``a_g`` < 1 says the ops run faster inside a
network than alone (warm caches, overlapped launch overhead), ``b`` is the per-network
overhead (Python dispatch, cat, adds).
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import numpy as np

from nasbench.errors import UserError
from nasbench.genotypes import Genotype
from nasbench.predict.calibration import (  # noqa: F401 - re-exported
    CALIBRATION_SCHEMA,
    FEATURES,
    GROUPS,
    OP_FEATURES,
    RIDGE_REL_ALPHAS,
    CalibratedLUT,
    Calibration,
    _ridge_to_lut,
    calibration_path,
    error_metrics,
    feature_for,
    feature_names,
    fit_calibration,
    fused_add_scale,
    load_calibration,
    op_feature,
    op_group,
)
from nasbench.predict.learned import LearnedCost, load_learned
from nasbench.spaces import SearchSpace, get_space, lut_space, space_for
from profilers.latency import LONG_CALL_MS, LatencySettings
from profilers.lut import LUT, atomic_write_text


def sample_genotype(rng: random.Random, steps: int = 4) -> Genotype:
    """Returns a uniformly sampled genotype: per node two distinct inputs, each with a
    uniformly chosen non-``none`` op (:meth:`~nasbench.spaces.darts.DartsSpace.sample`)."""
    from nasbench.spaces.darts import DartsSpace, DeployConfig
    return DartsSpace(DeployConfig(steps=steps)).sample(rng)


def deploy_from_lut(lut: LUT, batch: int | None = None):
    """Returns the deploy network a LUT describes (of its space: a DARTS
    ``DeployConfig``, a ``ProxylessDeployConfig``...), at ``batch`` (default: its
    first); raises UserError when the LUT lacks it or the batch."""
    d = lut.provenance.get("deploy")
    if not d:
        raise UserError(f"LUT {lut.path} does not record its deploy network")
    batches = lut.batches
    batch = batch or (batches[0] if batches else 1)
    if batch not in batches:
        raise UserError(f"LUT {lut.path} has no batch {batch} (it has {batches})")
    return get_space(lut_space(lut)).deploy_from_lut(lut, batch)


def space_from_lut(lut: LUT, batch: int | None = None) -> SearchSpace:
    """Returns the LUT's space bound to its deploy network at ``batch``."""
    return space_for(deploy_from_lut(lut, batch))


def group_sums(lut: LUT, deploy, g, features: str = "op") -> dict[str, float]:
    """Returns the plain LUT latency (ms) of the deploy network of architecture ``g``,
    split by feature (the space's :func:`~nasbench.predict.calibration.feature_names`:
    for DARTS :data:`OP_FEATURES` for "op", :data:`GROUPS` for "group"; node sums count
    as fixed, those a fusing backend folds into a conv as ``fused_add``). ``deploy`` is
    the deploy config (or the bound space); raises UserError naming a missing entry."""
    space = space_for(deploy)
    deploy = space.deploy
    names = feature_names(space.name, features)
    batch = deploy.batches[0]
    insts, fused = space.prediction_instances(g, lut)
    sums = dict.fromkeys(names, 0.0)
    # at their standalone cost (measured: an epilogue add is not free, see the README);
    # the calibration learns their share
    for inst in fused:
        sums["fused_add"] += lut.value(inst.key, batch, "latency", deploy.dtype) or 0.0
    for inst in insts:
        v = lut.value(inst.key, batch, "latency", deploy.dtype)
        if v is None:
            raise UserError(f"LUT {lut.path} lacks {inst.key}/b{batch}/{deploy.dtype}")
        sums[feature_for(inst.op, features, names)] += v
    return sums


def measure_samples(lut: LUT, device: str, genotypes: list, deploy,
                    progress=None, features: str = "op", rounds: int = 3,
                    min_repeats: int | None = None) -> list[dict]:
    """Returns one point per architecture of ``genotypes`` (of the space of ``deploy``,
    a deploy config or a bound space): the architecture (the space's dict) and its
    summary, feature sums, plain prediction (ms), end-to-end measurement (latency stats
    in ms) with the LUT's meter settings and threads.

    Every network is measured in ``rounds`` rounds spread over the whole run (round r
    of every network before round r + 1 of any); the round with the median latency is
    kept and every round's median is stored, so a slow period of the machine cannot
    make one network look slow (``round_spread`` shows how much the rounds differ)."""
    import torch

    from nasbench.luts import DeviceHandle, measure_network, prepare_lut_anchor
    from profilers.machine import LoadMonitor
    space = space_for(deploy)
    deploy = space.deploy
    prov = lut.provenance
    device = DeviceHandle.of(device)     # resolved once, not per network and round
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
                                 f"round {r + 1}/{rounds}: {space.summary(g)[:50]}")
                    if i not in nets:
                        nets[i] = space.build(g)
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
        sums = group_sums(lut, space, g, features)
        # drift-corrected in the LUT's time base (see profilers.build.finalize_anchor);
        # else the measured median
        val = [corrected_ms(x, ref) for x in rs]
        k = sorted(range(len(rs)), key=val.__getitem__)[(len(rs) - 1) // 2]
        keep = rs[k]
        meds = [x["latency_ms"]["median"] for x in rs]
        spread = max(val) / min(val) - 1.0
        point = {"genotype": space.arch_to_dict(g), "summary": space.summary(g),
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
                   batch: int | None = None, genotypes: list | None = None,
                   progress=None, rounds: int = 3, min_repeats: int | None = None) -> dict:
    """Returns the validation report: points, metrics of the plain sum and (when fitted)
    of the calibrated predictor, noise (CVs, load) and provenance. The architectures
    are ``genotypes`` (of the LUT's space) and ``samples`` drawn by the space's
    ``sample``."""
    import os
    space = space_from_lut(lut, batch)
    deploy = space.deploy
    rng = random.Random(seed)
    gs = list(genotypes or []) + [space.sample(rng) for _ in range(samples)]
    if not gs:
        raise UserError("nothing to validate: --samples is 0 and no --from-run")
    from profilers.machine import machine_state
    t0 = time.perf_counter()
    load0 = os.getloadavg()
    state0 = machine_state()
    points = measure_samples(lut, device, gs, space, progress, rounds=rounds,
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
    out = {"schema": 2, "lut": str(lut.path), "lut_sha256": lut.sha256(),
           "space": space.name, "device": device,
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
                p["group_sums_ms"] = group_sums(lut, space, g, calib.features)
        for p in points:
            p["calibrated_ms"] = calib.predict(p["group_sums_ms"])
        out["calibrated"] = error_metrics([p["calibrated_ms"] for p in points], meas,
                                          worst=3)
        out["calibration"] = calib.to_dict()
    learned = load_learned(lut, deploy.batches[0])
    if learned is not None:
        pred, sd = LearnedCost(learned, space, lut).predict(gs)
        for p, v, e in zip(points, pred, sd, strict=True):
            p["learned_ms"], p["learned_sd_ms"] = float(v), float(e)
        out["learned"] = error_metrics(list(pred), meas, worst=3)
        out["learned_model"] = {k: v for k, v in learned.to_dict().items()
                                if k in ("model", "samples", "priors", "alpha", "sigma")}
    out["predictors"] = predictor_summary(out)
    return out


def predictor_summary(res: dict) -> dict:
    """Returns {plain|linear|learned: {within_10 (0-1), mape (%), spearman}} of a
    validation's predictors (those present)."""
    names = {"plain": "plain", "linear": "calibrated", "learned": "learned"}
    return {k: {"within_10": res[v]["within_10pct"], "mape": res[v]["mape_pct"],
                "spearman": res[v]["spearman"]}
            for k, v in names.items() if v in res}


def write_json(path: Path, obj: dict) -> Path:
    """Writes ``obj`` as JSON atomically; returns the path."""
    atomic_write_text(Path(path), json.dumps(obj, indent=1, default=float))
    return Path(path)
