"""Glue between the search spaces and the profilers: which items a LUT holds, where a
device's cached LUT lives, and measuring a whole network the way the LUT measures ops."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from nasbench.errors import UserError
from nasbench.files import exclusive
from nasbench.options import env
from nasbench.progress import progress_bar
from nasbench.spaces.darts import DeployConfig, OpInstance
from profilers.backends import backend_for
from profilers.build import ProfileItem, anchored_fields, build_lut
from profilers.devices import Device, DeviceError, resolve_device
from profilers.latency import DEFAULT_ROUNDS, LatencySettings, measure_latency
from profilers.lut import LUT, LUTError, full_key


def cache_dir() -> Path:
    """Returns the per-user folder of cached LUTs and tuning files
    ($NASBENCH_CACHE_DIR, else the platform's user cache dir)."""
    path = env("NASBENCH_CACHE_DIR")
    if path is not None:
        return path
    from platformdirs import user_cache_dir
    return Path(user_cache_dir("nasbench"))


def instance_item(inst: OpInstance, batch: int, dtype: str) -> ProfileItem:
    """Returns the ProfileItem that measures ``inst`` at ``batch``."""
    fields = {"op": inst.op, "c_in": inst.c_in, "c_out": inst.c_out, "h": inst.h, "w": inst.w,
              "stride": inst.stride, **dict(inst.attrs), "batch": batch, "dtype": dtype,
              "op_key": inst.key}
    return ProfileItem(full_key(inst.key, batch, dtype), fields, inst.build,
                       (batch, inst.c_in, inst.h, inst.w))


def space_of(deploy) -> str:
    """Returns the search space a deploy config describes (``darts``, ``proxyless``)."""
    return str(deploy.describe().get("space", "darts"))


def space_instances(deploy) -> list[OpInstance]:
    """Returns the distinct op instances of the deploy network of its search space."""
    from nasbench.spaces import space_for
    return space_for(deploy).enumerate_instances()


def space_anchor(deploy) -> OpInstance:
    """Returns the drift-anchor op instance of the deploy network's search space."""
    from nasbench.spaces import space_for
    return space_for(deploy).anchor_instance()


def anchor_item(deploy) -> ProfileItem:
    """Returns the ProfileItem of the drift anchor (always at batch 1: cheap beside
    every measurement)."""
    return instance_item(space_anchor(deploy), 1, deploy.dtype)


def prepare_anchor(device: str, deploy):
    """Returns the drift anchor of ``deploy`` prepared on ``device`` by the backend that
    measures it (a ``Prepared``; the caller releases it)."""
    item = anchor_item(deploy)
    backend = DeviceHandle.of(device).backend
    return backend.prepare(item.make_module(), item.input_shape, deploy.dtype)


def prepare_lut_anchor(lut, device: str, deploy):
    """Returns the drift anchor ``lut`` was profiled with, prepared on ``device`` (None
    when the LUT has none; the caller releases it), so that a network measured beside it
    compares in the LUT's time base; raises UserError when the LUT's anchor is not this
    deploy network's."""
    info = (lut.provenance or {}).get("anchor") or {}
    if not info.get("ref_ms"):
        return None
    key = anchor_item(deploy).key
    if key != info.get("key"):
        raise UserError(f"LUT {lut.path} was anchored on {info.get('key')}, not on this "
                        f"network's anchor {key}; profile it again")
    return prepare_anchor(device, deploy)


def profile_items(deploy: DeployConfig, instances: list[OpInstance] | None = None
                  ) -> list[ProfileItem]:
    """Returns every item of a LUT for the deploy network (a DARTS DeployConfig or a
    ProxylessDeployConfig), for each batch size."""
    instances = instances if instances is not None else space_instances(deploy)
    return [instance_item(i, b, deploy.dtype) for b in deploy.batches for i in instances]


def get_device(spec) -> Device:
    """Returns the resolved device (a Device or a DeviceHandle is returned as its
    Device); raises UserError (one line) for absent hardware."""
    if isinstance(spec, DeviceHandle):
        return spec.device
    if isinstance(spec, Device):
        return spec
    try:
        return resolve_device(spec)
    except DeviceError as e:
        raise UserError(str(e)) from None


class DeviceHandle:
    """A device resolved once, with the backend that measures on it and its energy
    meter, made on first use and then shared by everything a run measures (the deploy
    network, its anchor, the references). ``str()`` is the device spec."""

    def __init__(self, device: Device):
        self.device, self.spec = device, device.spec
        self._backend = self._energy = None

    @classmethod
    def of(cls, device) -> DeviceHandle:
        """Returns ``device`` (a spec string, a Device or a handle) as a handle."""
        return device if isinstance(device, cls) else cls(get_device(device))

    @property
    def backend(self):
        """Returns the measuring backend (made once)."""
        if self._backend is None:
            self._backend = backend_for(self.device, tuning_dir=cache_dir() / "tuning")
        return self._backend

    @property
    def energy_meter(self):
        """Returns the energy meter (made once; it says why when it cannot measure)."""
        if self._energy is None:
            from profilers.energy import energy_meter_for
            d = self.device
            self._energy = energy_meter_for(_energy_kind(d), d.index[0] if d.index else 0)
        return self._energy

    def __str__(self) -> str:
        return self.spec


def deploy_provenance(deploy: DeployConfig) -> dict:
    """Returns the LUT provenance fields that describe the deploy network."""
    return {"space": space_of(deploy), "deploy": deploy.describe(),
            "batches": list(deploy.batches),
            "dtype": deploy.dtype}


def cached_lut_path(device: Device, deploy: DeployConfig) -> Path:
    """Returns where the cached LUT of this device and deploy network lives."""
    ident = json.dumps({"device": device.id, **deploy_provenance(deploy)}, sort_keys=True)
    h = hashlib.sha256(ident.encode()).hexdigest()[:12]
    slug = "".join(c if c.isalnum() else "-" for c in device.spec)
    return cache_dir() / "luts" / f"{slug}-{space_of(deploy)}-{h}.json"


def run_profile(device: Device, deploy: DeployConfig, out: Path, *,
                settings: LatencySettings = LatencySettings(), resume: bool = False,
                threads: int | None = None, progress: Callable | None = None) -> LUT:
    """Profiles every op instance of ``deploy`` on ``device`` into ``out``; returns the
    LUT."""
    from profilers.energy import energy_meter_for
    backend = backend_for(device, tuning_dir=cache_dir() / "tuning")
    energy = energy_meter_for(_energy_kind(device), device.index[0] if device.index else 0)
    try:
        with exclusive(Path(out), "LUT"):       # two profiles of one file: the second fails
            return build_lut(profile_items(deploy), device, backend, out,
                             settings=settings, provenance_extra=deploy_provenance(deploy),
                             resume=resume, threads=threads, energy_meter=energy,
                             progress=progress,
                             anchor=anchor_item(deploy) if settings.anchor else None)
    except LUTError as e:
        raise UserError(str(e)) from None


def _energy_kind(device: Device) -> str:
    if device.kind == "opencl":
        vendor = str(device.details.get("vendor", "")).lower()
        return "opencl-amd" if ("amd" in vendor or "advanced micro" in vendor) else "opencl"
    return device.kind


def ensure_lut(device, deploy: DeployConfig, *, quiet: bool = False) -> Path:
    """Returns the cached LUT of ``device`` for ``deploy``, profiling it first (with a
    progress bar unless quiet) when the cache has none or an incomplete one."""
    dev = get_device(device)
    path = cached_lut_path(dev, deploy)
    if path.exists():
        try:
            lut = LUT.load(path)
            # the cache never serves a half-measured LUT: a killed profile is finished
            if not lut.incomplete() and not lut.missing(
                    [i.key for i in space_instances(deploy)], deploy.batches[0]):
                return path
        except LUTError:
            pass
    with progress_bar(f"profiling {dev.spec} ({dev.name})", quiet=quiet) as cb:
        # the same rounds as `nasbench profile` (its --rounds default)
        run_profile(dev, deploy, path, resume=path.exists(), progress=cb,
                    settings=LatencySettings(rounds=DEFAULT_ROUNDS))
    return path


def measure_network_memory(module: nn.Module, input_shape: tuple,
                           device: str = "cpu") -> dict:
    """Measures the peak memory of one forward of a whole network on ``device`` and
    returns ``{"peak_bytes", "activation_bytes", "weight_bytes", "method"}`` (bytes;
    ``activation_bytes`` is the input plus the peak of what the forward allocates).

    torch devices run the network as its traced graph (``torch.fx``: each value freed
    at its last use, the form export and the OpenCL executor run; eager Python keeps a
    cell's locals until it returns) and read torch's allocator
    (:func:`profilers.memory.measure_allocated`). OpenCL devices give the executor's
    own accounting of the buffers it allocated (input, arena, folded weights)."""
    from torch import fx

    from profilers.memory import METHOD_OPENCL, measure_allocated
    handle = DeviceHandle.of(device)
    dev = handle.device
    if dev.kind in ("opencl", "opencl-amd"):
        prepared = handle.backend.prepare(module, tuple(input_shape))
        prepared.release()
        return {"peak_bytes": int(prepared.peak_bytes),
                "weight_bytes": int(prepared.weight_bytes),
                "activation_bytes": int(prepared.activation_bytes),
                "method": METHOD_OPENCL}
    tdev = torch.device("cpu" if dev.kind == "cpu" else f"cuda:{dev.index[0]}")
    gm = fx.symbolic_trace(module.eval()).to(tdev)
    x = torch.randn(tuple(input_shape), device=tdev)
    weights = sum(t.numel() * t.element_size()
                  for t in [*gm.parameters(), *gm.buffers()])

    def run():
        with torch.no_grad():
            gm(x)
    r = measure_allocated(dev.kind, run, dev.index[0] if dev.index else 0)
    if r.peak_bytes is None:
        raise UserError(f"cannot measure memory on {dev.spec}: {r.reason}")
    act = r.peak_bytes + x.numel() * x.element_size()
    return {"peak_bytes": act + weights, "activation_bytes": act, "weight_bytes": weights,
            "method": r.method}


def measure_network(module: nn.Module, input_shape: tuple, device: str = "cpu",
                    settings: LatencySettings = LatencySettings(time_cap_s=3.0),
                    anchor=None) -> dict:
    """Measures a whole network on ``device`` with the LUT's meters and returns
    ``{"latency_ms": stats, "wall_ms": stats, "memory_bytes", "memory_method",
    "energy_j", "energy_reason", "device"}`` (ms, bytes, J per forward); with ``anchor``
    (a prepared op of the same backend, see :func:`anchor_item`) also ``"anchored"``:
    the ratio network / anchor and the anchor's timings."""
    from profilers.build import energy_fields, memory_fields
    handle = DeviceHandle.of(device)
    dev = handle.device
    prepared = handle.backend.prepare(module, tuple(input_shape))
    try:
        m = measure_latency(prepared.run, prepared.sync, settings,
                            anchor=(anchor.run, anchor.sync) if anchor else None)
        out = {"latency_ms": m.primary.to_dict(), "wall_ms": m.wall.to_dict(),
               **({"anchored": anchored_fields(m)} if m.ratio else {}),
               "latency_source": "device-events" if m.device is not None else "wall-clock",
               "threads": torch.get_num_threads(), "device": dev.to_dict()}
        out.update(memory_fields(dev, prepared))
        out.update(energy_fields(handle.energy_meter, prepared))
        return out
    finally:
        prepared.release()
