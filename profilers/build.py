"""Building a LUT: measure every item on a device, checkpointing after each entry.

The caller (``nasbench.profiling``) enumerates the items from the search space's op
registry; this module knows nothing about spaces. After each entry the LUT is written
atomically, so an interrupted profile resumes from the entries already measured.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import socket
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .backends import Backend
from .devices import Device
from .latency import LatencySettings, measure_latency
from .lut import LUT, LUTError


@dataclass(frozen=True)
class ProfileItem:
    """One LUT entry to measure: its full key, descriptive fields (op, shapes, batch,
    dtype), a constructor for a fresh module and the input shape (N, C, H, W)."""

    key: str
    fields: dict
    make_module: Callable[[], nn.Module]
    input_shape: tuple[int, ...]


def _versions() -> dict:
    v = {"torch": torch.__version__, "python": platform.python_version()}
    try:
        import pyopencl
        v["pyopencl"] = pyopencl.VERSION_TEXT
    except Exception:
        pass
    return v


def base_provenance(device: Device, backend: Backend, settings: LatencySettings,
                    threads: int) -> dict:
    """Returns the provenance block of a new LUT (device, backend, versions, threads,
    host, date, meter settings, machine load at start)."""
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {
        "device": device.to_dict(),
        "backend": backend.name,
        "backend_details": backend.describe(),
        "versions": _versions(),
        "threads": threads,
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "settings": settings.to_dict(),
        "loadavg_at_start": load,
    }


#: how an anchored entry's ratio is estimated (a resume refuses to mix estimators)
ANCHOR_ESTIMATOR = "bracketed"


def anchored_fields(m) -> dict:
    """Returns the ``anchored`` block of an anchored Measurement: the op's ratio to the
    anchor (unitless; the median of the per-call bracketed ratios, whose statistics are
    in ``paired``) and the anchor's own timings (ms)."""
    return {"ratio": m.ratio, "estimator": ANCHOR_ESTIMATOR, "paired": m.paired.to_dict(),
            "anchor_ms": m.anchor.to_dict()}


def measure_item(item: ProfileItem, device: Device, backend: Backend,
                 settings: LatencySettings, energy_meter=None, anchor=None) -> dict:
    """Returns the LUT entry of one item: latency statistics (ms; device time where the
    backend reports it, with the host wall time beside it), peak memory (bytes), energy
    (J per call or null with the reason), and a ``noisy`` flag. With ``anchor`` (a
    Prepared reference op) also ``anchored``: see :func:`finalize_anchor`."""
    prepared = backend.prepare(item.make_module(), item.input_shape, item.fields.get(
        "dtype", "float32"))
    pair = (anchor.run, anchor.sync) if anchor is not None else None
    try:
        m = measure_latency(prepared.run, prepared.sync, settings, anchor=pair)
        remeasured = False
        if m.primary.cv > settings.cv_threshold:
            # one more try: a transient (another process, frequency change) often passes
            m2 = measure_latency(prepared.run, prepared.sync, settings, anchor=pair)
            remeasured = True
            if m2.primary.cv < m.primary.cv:
                m = m2
        entry = dict(item.fields)
        entry["latency_ms"] = m.primary.to_dict()
        entry["latency_source"] = "device-events" if m.device is not None else "wall-clock"
        entry["wall_ms"] = m.wall.to_dict()
        if m.ratio is not None:
            entry["anchored"] = anchored_fields(m)
        entry["noisy"] = m.primary.cv > settings.cv_threshold
        entry["remeasured"] = remeasured
        entry.update(memory_fields(device, prepared))
        entry.update(energy_fields(energy_meter, prepared))
        return entry
    finally:
        prepared.release()


def memory_fields(device: Device, prepared) -> dict:
    """Returns the LUT memory fields of a prepared op: peak bytes and the method (or
    null and the reason)."""
    if prepared.peak_bytes is not None:
        return {"memory_bytes": int(prepared.peak_bytes), "memory_method": "opencl-buffers"}
    from .memory import measure_peak_memory
    r = measure_peak_memory(device.kind if device.kind != "rocm" else "rocm", prepared.run,
                            prepared.sync, device.index[0] if device.index else 0)
    out = {"memory_bytes": r.peak_bytes, "memory_method": r.method}
    if r.peak_bytes is None:
        out["memory_reason"] = r.reason
    return out


def energy_fields(meter, prepared) -> dict:
    """Returns the LUT energy fields of a prepared op: J per call and the method, or
    null and the reason (never 0 for \"no sensor\")."""
    if meter is None or not getattr(meter, "available", False):
        reason = getattr(meter, "reason", None) or "no energy meter for this device"
        return {"energy_j": None, "energy_reason": reason}
    r = meter.measure(prepared.run, repeats=10, sync=prepared.sync)
    if r.joules_per_call is None:
        return {"energy_j": None, "energy_reason": r.reason, "energy_method": r.method}
    return {"energy_j": r.joules_per_call, "energy_method": r.method,
            "energy_calls": r.calls, "energy_seconds": r.seconds}


def _stderr_warning(msg: str) -> None:
    import sys
    sys.stderr.write(f"warning: {msg}\n")


#: share of noisy entries above which a finished profile warns
NOISY_SHARE_WARN = 0.10


def build_lut(items: list[ProfileItem], device: Device, backend: Backend, out: Path, *,
              settings: LatencySettings = LatencySettings(), provenance_extra: dict | None = None,
              resume: bool = False, threads: int | None = None, energy_meter=None,
              progress: Callable[[int, int, str], None] | None = None,
              warn: Callable[[str], None] | None = _stderr_warning,
              pin: bool = True, anchor: ProfileItem | None = None) -> LUT:
    """Measures every item and returns the LUT, written atomically to ``out`` after each
    entry. With ``resume``, entries already in ``out`` are kept and skipped (the file
    must have been recorded for the same device and settings).

    The machine's state (load, busy processes, governor, clocks) is recorded at start
    and end in the provenance; ``warn`` gets a line when the machine is loaded or more
    than 10 % of the entries are noisy. With ``pin`` the threads are pinned to fixed
    CPUs while measuring (recorded as ``affinity``). With ``anchor``, that op is timed
    before every call of every entry and the entries store drift-corrected latencies
    (:func:`finalize_anchor`)."""
    from .machine import machine_state, pinned_threads
    if threads is not None:
        torch.set_num_threads(threads)
    threads = torch.get_num_threads()
    prov = base_provenance(device, backend, settings, threads)
    prov.update(provenance_extra or {})
    state = machine_state()
    prov["machine_at_start"] = state.to_dict()
    if warn and state.warning():
        warn(state.warning())
    with (pinned_threads(threads) if pin and device.kind == "cpu"
          else _no_pin()) as cpus:
        prov["affinity"] = cpus
        prepared = None
        if anchor is not None:
            prov["anchor"] = {"key": anchor.key, "fields": anchor.fields,
                              "estimator": ANCHOR_ESTIMATOR}
            prepared = backend.prepare(anchor.make_module(), anchor.input_shape,
                                       anchor.fields.get("dtype", "float32"))
        try:
            return _measure_all(items, device, backend, out, settings, prov, resume,
                                energy_meter, progress, warn, prepared)
        finally:
            if prepared is not None:
                prepared.release()


@contextmanager
def _no_pin():
    yield None


def _raw(e: dict) -> dict:
    """Returns the latency statistics an entry measured (before any anchor correction)."""
    return e.get("raw_latency_ms", e["latency_ms"])


def _rank_value(e: dict) -> float:
    """Returns what rounds are compared by: the ratio to the anchor, else the median."""
    return e["anchored"]["ratio"] if "anchored" in e else _raw(e)["median"]


def _combine_rounds(runs: list[dict], rounds: int) -> dict:
    """Returns the entry of the round with the median latency (median ratio to the
    anchor when anchored), with every round's median (``rounds_ms``; ``rounds_ratio``)
    and their spread (max/min - 1) beside it."""
    meds = [m for e in runs for m in e.get("rounds_ms", [_raw(e)["median"]])]
    keep = sorted(runs, key=_rank_value)[(len(runs) - 1) // 2]
    out = dict(keep)
    out["rounds_ms"] = meds
    spread_of = meds
    if all("anchored" in e for e in runs):
        ratios = [r for e in runs
                  for r in e.get("rounds_ratio", [e["anchored"]["ratio"]])]
        out["rounds_ratio"] = spread_of = ratios
    out["round_spread"] = (max(spread_of) / min(spread_of) - 1.0) \
        if min(spread_of) > 0 else None
    if rounds > 1 and len(meds) < rounds:
        out["rounds_pending"] = rounds - len(meds)
    else:
        out.pop("rounds_pending", None)
    return out


#: above this Spearman correlation between an entry's time and its anchor's, the profile
#: warns that the anchor is slowed by the ops it brackets
ANCHOR_OP_CORRELATION_WARN = 0.5


def anchor_op_correlation(lut: LUT) -> float | None:
    """Returns the Spearman rank correlation between the anchored entries' measured
    medians and their anchor's medians (None with fewer than 5 entries). Near 0 when the
    anchor only sees the machine's speed; high when ops evict its working set, so that
    it runs slower beside large ops (seen at batch 32: 0.95) and their corrections come
    out too low."""
    from scipy.stats import spearmanr
    pairs = [(_raw(e)["median"], e["anchored"]["anchor_ms"]["median"])
             for e in lut.entries.values() if "anchored" in e]
    if len(pairs) < 5:
        return None
    r = spearmanr([a for a, _ in pairs], [b for _, b in pairs]).statistic
    return None if np.isnan(r) else float(r)


def anchor_warning(lut: LUT) -> str | None:
    """Returns a warning when the anchor is slowed by the ops it brackets, else None."""
    r = (lut.provenance.get("anchor") or {}).get("op_correlation")
    if r is None or r <= ANCHOR_OP_CORRELATION_WARN:
        return None
    return (f"the drift anchor ran slower beside larger ops (rank correlation {r:.2f}): "
            f"their corrected latencies are likely too low; compare `raw_latency_ms`, or "
            f"profile with --no-anchor")


def lut_doubts(lut: LUT) -> list[str]:
    """Returns the warnings that make a LUT's figures doubtful (one line each): entries
    measured under load, a high share of noisy entries, an anchor slowed by the ops it
    brackets, an incomplete profile; empty for a sound LUT. They travel with every figure
    the LUT produces (a run's result.json, summary and report)."""
    out = []
    n = len(lut.entries)
    loaded = [e for e in lut.entries.values() if e.get("under_load")]
    if loaded:
        out.append(f"{len(loaded)} of {n} LUT entries were measured while other processes "
                   f"were busy: predictions from them may run high; profile again on a "
                   f"quiet machine")
    noisy = [e for e in lut.entries.values() if e.get("noisy")]
    if n and len(noisy) / n > NOISY_SHARE_WARN:
        out.append(f"{len(noisy)} of {n} LUT entries are noisy (CV above the threshold)")
    w = anchor_warning(lut)
    if w:
        out.append(w)
    if lut.provenance.get("rounds_pending"):
        out.append("the LUT's profile did not finish its rounds (incomplete)")
    return out


def finalize_anchor(lut: LUT) -> None:
    """Turns the anchored entries of ``lut`` into drift-corrected latencies, in place.

    The anchor's reference time ``ref_ms`` is the median of its timings over the whole
    profile (the machine's typical speed during the profile). Each anchored entry's
    ``latency_ms`` is its measured statistics scaled so that median = ratio x ref_ms
    (the ratio: see :func:`anchored_fields`; the CV is unchanged); what was measured
    stays in ``raw_latency_ms``.
    Idempotent, so a resumed profile can finalize again."""
    anchored = [e for e in lut.entries.values() if "anchored" in e]
    info = lut.provenance.get("anchor")
    if not anchored or info is None:
        return
    meds = [e["anchored"]["anchor_ms"]["median"] for e in anchored]
    ref = float(np.median(meds))
    info.update({"ref_ms": ref, "spread": max(meds) / min(meds) - 1.0 if min(meds) > 0
                 else None, "entries": len(anchored),
                 "op_correlation": anchor_op_correlation(lut),
                 "method": "latency_ms = ratio x ref_ms, ratio = median over calls of "
                           "op / mean anchor level before and after the call; ref_ms = "
                           "the anchor's median over the profile; measured values in "
                           "raw_latency_ms"})
    for e in anchored:
        raw = _raw(e)
        scale = ref * e["anchored"]["ratio"] / raw["median"] if raw["median"] > 0 else 1.0
        e["raw_latency_ms"] = raw
        e["latency_ms"] = {**raw, **{k: round(raw[k] * scale, 6) for k in
                                     ("median", "mean", "p5", "p95")}}
        e["latency_correction"] = "anchor"


def _watched(monitor, it, device, backend, settings, energy_meter, anchor=None) -> dict:
    """Measures one item; flags it ``under_load`` when the monitor saw another busy
    process meanwhile."""
    import time
    t0 = time.monotonic()
    e = measure_item(it, device, backend, settings, energy_meter, anchor)
    busy = monitor.busy_between(t0, time.monotonic())
    if busy:
        e["under_load"] = busy[:3]
    return e


def _measure_all(items, device, backend, out, settings, prov, resume, energy_meter,
                 progress, warn, anchor=None) -> LUT:
    from .machine import LoadMonitor, machine_state
    lut = LUT(provenance=prov, entries={})
    out = Path(out)
    if resume and out.exists():
        old = LUT.load(out)
        if old.provenance.get("device", {}).get("id") != device.id:
            raise LUTError(f"cannot resume {out}: it was measured on "
                           f"{old.provenance.get('device', {}).get('id')!r}, not {device.id!r}")
        for k in ("deploy", "dtype"):
            if k in prov and old.provenance.get(k) != prov.get(k):
                raise LUTError(f"cannot resume {out}: its {k} differs from this profile's")
        if bool(old.provenance.get("anchor")) != bool(prov.get("anchor")):
            raise LUTError(f"cannot resume {out}: it was measured "
                           f"{'with' if old.provenance.get('anchor') else 'without'} a drift "
                           f"anchor and this profile is not")
        est = (old.provenance.get("anchor") or {}).get("estimator")
        if prov.get("anchor") and est != prov["anchor"]["estimator"]:
            raise LUTError(f"cannot resume {out}: its entries were drift-corrected by "
                           f"{est or 'the older ratio of medians'}, this profile by "
                           f"{prov['anchor']['estimator']} ratios; profile it afresh")
        wanted = {it.key for it in items}
        lut.entries = {k: v for k, v in old.entries.items() if k in wanted}
        lut.provenance["created"] = old.provenance.get("created", prov["created"])
        lut.provenance["resumed"] = prov["created"]
    elif out.exists() and not resume:
        pass  # overwritten atomically at the first entry
    R = settings.rounds
    one = settings.per_round()

    def rounds_of(key):
        e = lut.entries.get(key)
        return len(e.get("rounds_ms", [None])) if e else 0   # old entries: one round

    todo = [it for it in items if rounds_of(it.key) < R]
    done = sum(min(rounds_of(it.key), R) for it in items)
    partial: dict[str, list[dict]] = {}
    with LoadMonitor() as monitor:
        # round-robin: round r of every entry before round r + 1 of any
        for r in range(R):
            for it in todo:
                if rounds_of(it.key) > r:
                    continue
                if progress:
                    progress(done // R, len(items),
                             it.key + (f" (round {r + 1}/{R})" if R > 1 else ""))
                e = _watched(monitor, it, device, backend, one if R > 1 else settings,
                             energy_meter, anchor)
                runs = partial.setdefault(it.key, [])
                if not runs and it.key in lut.entries:      # resumed mid-rounds
                    runs.append(lut.entries[it.key])
                runs.append(e)
                lut.entries[it.key] = _combine_rounds(runs, R)
                done += 1
                lut.save(out)
        # an entry whose kept round ran while another process was busy is measured once
        # more at the end; a second busy measurement keeps its `under_load` flag
        again = [it for it in todo if lut.entries[it.key].get("under_load")]
        for i, it in enumerate(again):
            if progress:
                progress(done // R, len(items),
                         f"re-measuring {it.key} ({i + 1}/{len(again)})")
            first = lut.entries[it.key]
            e = _watched(monitor, it, device, backend, settings, energy_meter, anchor)
            e["remeasured"] = {"first_median_ms": _raw(first)["median"],
                               "first_under_load": first["under_load"]}
            for k in ("rounds_ms", "rounds_ratio", "round_spread"):
                if k in first:
                    e[k] = first[k]
            lut.entries[it.key] = e
            lut.save(out)
    if progress:
        progress(done // R, len(items), "")
    loaded = [k for k, e in lut.entries.items() if e.get("under_load")]
    lut.provenance["entries_under_load"] = len(loaded)
    if warn and loaded:
        who = {b["name"] for k in loaded for b in lut.entries[k]["under_load"]}
        warn(f"{len(loaded)} of {len(lut.entries)} entries were measured while other "
             f"processes were busy ({', '.join(sorted(who))}), even after re-measuring: "
             f"they are flagged `under_load`; profile again on a quiet machine")
    finalize_anchor(lut)
    w = anchor_warning(lut)
    if warn and w:
        warn(w)
    lut.provenance["finished"] = _dt.datetime.now(_dt.timezone.utc).isoformat(
        timespec="seconds")
    end = machine_state()
    lut.provenance["machine_at_end"] = end.to_dict()
    noisy = [k for k, e in lut.entries.items() if e.get("noisy")]
    lut.provenance["noisy_entries"] = len(noisy)
    if warn and lut.entries and len(noisy) / len(lut.entries) > NOISY_SHARE_WARN:
        warn(f"{len(noisy)} of {len(lut.entries)} entries are noisy (CV above "
             f"{settings.cv_threshold}): see `nasbench lut show --noisy`, and "
             f"profile again on a quiet machine")
    if warn and end.warning():
        warn("at the end of the profile " + end.warning())
    lut.save(out)
    return lut
