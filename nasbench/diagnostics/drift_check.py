"""How repeatable is a whole network's latency on this machine, and which drift
correction makes it more so? ``python -m nasbench.diagnostics.drift_check``.

Runs the DARTS_V2 evaluation network (torch, CPU) in rounds of ``--calls`` forwards,
with the drift anchor (the first cell's ``sep_conv_3x3`` at ``--anchor-batch``) timed
``--anchors`` times before every forward and after the last, for ``--seconds``. For
every estimator it prints how much the rounds disagree: the CV across rounds and the
share of rounds within 5 % and 10 % of the median round. An estimator that agrees with
itself better is one a LUT and a validation can be compared with more closely.

Estimators: ``plain`` (median of the forwards, ms), ``ratio_of_medians`` (median
forward / median anchor), ``paired`` (median of forward / anchor level just before it),
``bracketed`` (median of forward / mean of the anchor levels before and after it: what
:func:`profilers.latency.measure_latency` keeps).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def round_estimates(forward_ms: list[float], levels_ms: list[float],
                    anchors_ms: list[float]) -> dict[str, float]:
    """Returns every estimator of one round: ``plain`` in ms, the others unitless.
    ``levels_ms`` holds the anchor level before each forward and one after the last."""
    f = np.asarray(forward_ms)
    lv = np.asarray(levels_ms)
    return {"plain": float(np.median(f)),
            "ratio_of_medians": float(np.median(f) / np.median(anchors_ms)),
            "paired": float(np.median(f / lv[:-1])),
            "bracketed": float(np.median(f / ((lv[:-1] + lv[1:]) / 2)))}


def agreement(values: list[float]) -> dict[str, float]:
    """Returns how a list of round estimates agrees: CV, and the shares within 5 % and
    10 % of their median (fractions)."""
    v = np.asarray(values, float)
    rel = np.abs(v / np.median(v) - 1.0)
    return {"rounds": len(v), "cv": float(v.std() / v.mean()),
            "within_5pct": float(np.mean(rel <= 0.05)),
            "within_10pct": float(np.mean(rel <= 0.10))}


def main(argv: list[str] | None = None) -> int:
    """Runs the check and prints one line per estimator; returns the exit status."""
    ap = argparse.ArgumentParser(prog="python -m nasbench.diagnostics.drift_check",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--anchor-batch", type=int, default=1)
    ap.add_argument("--calls", type=int, default=10, help="forwards per round")
    ap.add_argument("--anchors", type=int, default=2, help="anchor calls per level")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--threads", type=int, default=None)
    a = ap.parse_args(argv)
    if min(a.batch, a.anchor_batch, a.calls, a.anchors) < 1 or a.seconds <= 0:
        ap.error("batch sizes, calls, anchors and seconds must be positive")
    import torch

    from nasbench.genotypes import DARTS_V2
    from nasbench.spaces import get_space
    from nasbench.spaces.darts import DeployConfig
    if a.threads:
        torch.set_num_threads(a.threads)
    cfg = DeployConfig()                          # the DARTS evaluation network
    space = get_space("darts")(cfg)
    net = space.build(DARTS_V2)
    inst = space.anchor_instance()                # the profile's drift anchor
    anchor = inst.build().eval()
    x = torch.randn(a.batch, cfg.in_channels, cfg.input_size, cfg.input_size)
    xa = torch.randn(a.anchor_batch, inst.c_in, inst.h, inst.w)

    def timed(fn, arg) -> float:
        t0 = time.perf_counter()
        fn(arg)
        return (time.perf_counter() - t0) * 1e3

    rounds: list[dict[str, float]] = []
    with torch.inference_mode():
        for _ in range(3):
            net(x), anchor(xa)
        t_end = time.monotonic() + a.seconds
        while time.monotonic() < t_end:
            fw, lv, an = [], [], []
            for _ in range(a.calls + 1):
                batch = [timed(anchor, xa) for _ in range(a.anchors)]
                an += batch
                lv.append(statistics.median(batch))
                if len(fw) < a.calls:
                    fw.append(timed(net, x))
            rounds.append(round_estimates(fw, lv, an))
    print(f"DARTS_V2 C={cfg.channels}/{cfg.layers} cells b{a.batch}, anchor {inst.key} "
          f"b{a.anchor_batch}, "
          f"{torch.get_num_threads()} threads, {a.calls} forwards per round, "
          f"plain median {statistics.median(r['plain'] for r in rounds):.1f} ms")
    for k in rounds[0]:
        g = agreement([r[k] for r in rounds])
        print(f"{k:17s} rounds {g['rounds']:3d}  cv {g['cv']:.3f}  within 10 % "
              f"{g['within_10pct']:.0%}  within 5 % {g['within_5pct']:.0%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
