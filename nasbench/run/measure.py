"""What the runner measures of a deploy network: parameters and MACs (thop, ptflops, our
own conv + linear count) and latency/memory/energy on the device, beside the LUT's drift
anchor."""

from __future__ import annotations

import copy
import io
import json

import torch

from nasbench.errors import UserError


def count_complexity(net, deploy) -> tuple[dict, dict]:
    """Returns (params, macs) of the deploy network, each {"thop", "ptflops", "torch"}.

    Parameters agree exactly. MACs differ by design, and only outside convolutions and
    linear layers, which both count identically (``conv_linear``, from our own hooks,
    is that common figure; compare networks by it): thop adds 4 per element for an
    affine BatchNorm (2 x its 2-op normalisation) and (kernel+1) per output of
    adaptive pooling, and 0 for ReLU and max pooling; ptflops (pytorch backend) adds 2
    per element for affine BN, 1 per element for ReLU, pooling inputs, and the torch
    functionals/tensor ops it patches. E.g. DARTS_V2 at C=8, 5 cells: conv_linear
    7,392,512; thop 8,441,216 (= + 4 x 260,096 BN + 8,320 pool); ptflops 8,916,234."""
    shape = (deploy.batches[0], deploy.in_channels, deploy.input_size, deploy.input_size)
    params = {"torch": sum(p.numel() for p in net.parameters())}
    macs: dict = {"conv_linear": conv_linear_macs(net, shape)}
    try:
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import thop
            m, p = thop.profile(copy.deepcopy(net), inputs=(torch.randn(shape),),
                                verbose=False)
        macs["thop"], params["thop"] = int(m), int(p)
    except Exception as e:  # noqa: BLE001
        macs["thop"] = params["thop"] = None
        macs["thop_error"] = f"{e.__class__.__name__}: {e}"
    try:
        import contextlib

        from ptflops import get_model_complexity_info
        with contextlib.redirect_stdout(io.StringIO()):
            m, p = get_model_complexity_info(copy.deepcopy(net), shape[1:], as_strings=False,
                                             print_per_layer_stat=False, verbose=False,
                                             backend="pytorch")
        macs["ptflops"], params["ptflops"] = int(m * shape[0]), int(p)
    except Exception as e:  # noqa: BLE001
        macs["ptflops"] = params["ptflops"] = None
        macs["ptflops_error"] = f"{e.__class__.__name__}: {e}"
    macs["batch"] = shape[0]
    return params, macs


def conv_linear_macs(net, shape) -> int:
    """Returns the multiply-accumulates of every Conv2d and Linear for one forward."""
    total = [0]

    def conv_hook(m, inp, out):
        k = m.kernel_size[0] * m.kernel_size[1] * (m.in_channels // m.groups)
        total[0] += out.numel() * k

    def lin_hook(m, inp, out):
        total[0] += out.numel() * m.in_features

    hooks = []
    for mod in net.modules():
        if isinstance(mod, torch.nn.Conv2d):
            hooks.append(mod.register_forward_hook(conv_hook))
        elif isinstance(mod, torch.nn.Linear):
            hooks.append(mod.register_forward_hook(lin_hook))
    try:
        with torch.no_grad():
            net.eval()(torch.zeros(shape))
    finally:
        for h in hooks:
            h.remove()
    return total[0]


def measure_deploy(net, deploy, device: str, log, lut=None) -> dict:
    """Returns the device measurement of the deploy network (measure_network's dict), or
    {"error": ...} when it cannot be measured. When ``lut`` was profiled with a drift
    anchor, the forward is timed beside that anchor and ``latency_corrected_ms`` is the
    measurement in the LUT's time base (ratio to the anchor x its reference time, ms),
    so it compares with the LUT's prediction as `lut validate` does (forwards over
    LONG_CALL_MS have none: the meter does not anchor them)."""
    from nasbench.luts import measure_network, prepare_lut_anchor
    from nasbench.validate import corrected_ms
    shape = (deploy.batches[0], deploy.in_channels, deploy.input_size, deploy.input_size)
    anchor = None
    try:
        if lut is not None:
            try:
                anchor = prepare_lut_anchor(lut, device, deploy)
            except UserError as e:          # the run keeps its raw measurement
                log(f"{e}; measuring without the drift anchor")
        m = measure_network(net, shape, device=device, anchor=anchor)
    except UserError:
        raise
    except Exception as e:  # noqa: BLE001 - the run still has its prediction
        log(f"could not measure the network on {device}: {e.__class__.__name__}: {e}")
        return {"error": f"{e.__class__.__name__}: {e}"}
    finally:
        if anchor is not None:
            anchor.release()
    if not str(device).startswith("opencl"):    # (OpenCL: already its buffers)
        # the whole network's peak as the buffer plan predicts it: torch's allocator on
        # the traced graph (the resident set of an op call stays beside it)
        from nasbench.luts import measure_network_memory
        try:
            mm = measure_network_memory(net, shape, device)
            m["memory_rss_bytes"], m["memory_rss_method"] = (m.get("memory_bytes"),
                                                             m.get("memory_method"))
            m["memory_bytes"], m["memory_method"] = mm["peak_bytes"], mm["method"]
        except Exception as e:  # noqa: BLE001 - the resident-set figure stays
            log(f"could not measure the network's allocator peak: {e}")
    lat = m.get("latency_ms", {})
    line = (f"measured on {device}: latency median {lat.get('median', float('nan')):.3f} ms "
            f"(cv {lat.get('cv', float('nan')):.3f}, {lat.get('repeats')} repeats)")
    if m.get("memory_bytes") is not None:
        line += f", peak memory {m['memory_bytes'] / 2**20:.2f} MiB ({m['memory_method']})"
    if m.get("anchored"):                        # none for long calls (see the meter)
        m["latency_corrected_ms"] = corrected_ms(m, lut.provenance["anchor"]["ref_ms"])
        line += f"; {m['latency_corrected_ms']:.3f} ms in the LUT's time base (drift anchor)"
    log(line)
    return m


def measure_arch(arch, deploy, device, log, lut=None, *, net=None, space=None) -> dict:
    """Returns the device's figures of ``arch``'s deploy network: a tabular device
    (``hw-nas-bench:DEV``) answers from its table (``source`` says so: not measured
    here; a table value, not a measurement); any other device measures ``net`` (default
    ``space.build(arch)``) with :func:`measure_deploy` (its dict, or {"error": ...})."""
    from nasbench.benchmarks.tabular import TabularDevice
    if isinstance(device, TabularDevice):
        m = device.measure(arch)
        lat = (m.get("latency_ms") or {}).get("median")
        log(f"{device.spec}: table latency "
            + (f"{lat:.3f} ms" if lat is not None else "none")
            + " (HW-NAS-Bench, not measured here)")
        return m
    return measure_deploy(net if net is not None else space.build(arch), deploy, device,
                          log, lut)


def finalists(visited: list[dict], k: int) -> list[dict]:
    """Returns up to ``k`` of the ``visited`` records (``{"arch", "accuracy": %, "cost":
    {"latency": ms, ...}}``) on their Pareto front by accuracy (max) and latency (min),
    fastest first; a front larger than ``k`` is thinned to ``k`` points spread evenly
    along it (its fastest and its most accurate always kept). Records without both
    figures are left out; an architecture visited twice counts once."""
    import numpy as np

    from reports.pareto import non_dominated_mask
    if k <= 0:
        return []
    seen, pool = set(), []
    for v in visited:
        lat, acc = (v.get("cost") or {}).get("latency"), v.get("accuracy")
        key = json.dumps(v["arch"], sort_keys=True)
        if lat is None or acc is None or key in seen:
            continue
        seen.add(key)
        pool.append(v)
    if not pool:
        return []
    pts = np.array([[v["accuracy"], v["cost"]["latency"]] for v in pool], dtype=float)
    front = [v for v, keep in zip(pool, non_dominated_mask(pts, ["max", "min"]),
                                  strict=True) if keep]
    front.sort(key=lambda v: (v["cost"]["latency"], -v["accuracy"]))
    if len(front) > k:
        picks = sorted({int(round(i)) for i in np.linspace(0, len(front) - 1, k)})
        front = [front[i] for i in picks]
    return front


def measure_finalists(visited: list[dict], k: int, space, deploy, device, predictor, log,
                      lut=None, known: dict | None = None, signal: str = "",
                      kind: str = "validation") -> list[dict]:
    """Measures the :func:`finalists` of a multi-trial search on the device (as the
    runner measures its derived network: :func:`measure_arch`) and returns their
    candidate records (role "finalist"): the search's accuracy (%, ``accuracy_kind``
    ``kind``: "validation", or "zero-cost" for a 0-100 proxy score; the evaluator's
    signal, ``signal`` in words), the predicted (LUT)
    and measured latency (ms), ``latency_source`` ("measured", or "table" for a
    HW-NAS-Bench device: its values are read, not measured), the visit's ``query``.
    ``known``: {architecture id: measurement} already taken (the derived network's)."""
    from nasbench.benchmarks.tabular import TabularDevice
    from nasbench.candidates import candidate, score_text
    known = known or {}
    shape = (deploy.batches[0], deploy.in_channels, deploy.input_size, deploy.input_size)
    table = isinstance(device, TabularDevice)
    out = []
    for i, v in enumerate(finalists(visited, k), 1):
        arch = space.arch_from_dict(v["arch"])
        aid = space.arch_id(arch)
        net = space.build(arch)
        if aid in known:
            m = known[aid]
        else:
            log(f"finalist {i}: {space.summary(arch)}: {score_text(v['accuracy'], kind)}, "
                f"predicted {v['cost']['latency']:.3f} ms")
            m = measure_arch(arch, deploy, device, log, lut, net=net)
        c = candidate(f"finalist {i}", "finalist", arch=arch, space=space.name,
                      predicted=predictor.predict(arch), measured=m,
                      params=sum(p.numel() for p in net.parameters()),
                      macs=conv_linear_macs(net, shape))
        c.update({"accuracy": float(v["accuracy"]), "accuracy_kind": kind,
                  "accuracy_signal": signal, "query": v.get("query"),
                  "search_cost": v["cost"],
                  "latency_source": "table" if table else "measured"})
        if "error" in m:
            c["measure_error"] = m["error"]
        out.append(c)
    return out
