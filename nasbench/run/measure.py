"""What the runner measures of a deploy network: parameters and MACs (thop, ptflops, our
own conv + linear count) and latency/memory/energy on the device, beside the LUT's drift
anchor."""

from __future__ import annotations

import copy
import io

import torch

from ..errors import UserError


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
    from ..profiling import measure_network, prepare_lut_anchor
    from ..validate import corrected_ms
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
    lat = m.get("latency_ms", {})
    line = (f"measured on {device}: latency median {lat.get('median', float('nan')):.3f} ms "
            f"(cv {lat.get('cv', float('nan')):.3f}, {lat.get('repeats')} repeats)")
    if m.get("anchored"):                        # none for long calls (see the meter)
        m["latency_corrected_ms"] = corrected_ms(m, lut.provenance["anchor"]["ref_ms"])
        line += f"; {m['latency_corrected_ms']:.3f} ms in the LUT's time base (drift anchor)"
    log(line)
    return m
