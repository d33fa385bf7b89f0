"""What ``nasbench devices`` shows: every device and which meters work there, and why
not."""

from __future__ import annotations

from profilers.devices import Device, discover


def _summary(d: Device) -> str:
    x = d.details
    if d.kind == "cpu":
        return (f"{x.get('physical_cores')} cores / {x.get('logical_cpus')} threads, "
                f"torch uses {x.get('torch_threads')}; governor {x.get('governor') or 'n/a'}")
    if d.kind in ("cuda", "rocm"):
        return (f"{x.get('total_memory_bytes', 0) / 2**30:.1f} GiB, "
                f"{x.get('multiprocessors')} SMs/CUs, driver {x.get('driver')}")
    return (f"{x.get('compute_units')} CUs @ {x.get('max_clock_mhz')} MHz, "
            f"global {x.get('global_mem_bytes', 0) / 2**30:.1f} GiB, "
            f"local {x.get('local_mem_bytes', 0) / 1024:.0f} KiB, "
            f"{'CPU implementation' if x.get('is_cpu') else 'GPU'}; "
            f"{x.get('platform_name', '')}")


def meters_for(d: Device) -> dict:
    """Returns {"latency"|"memory"|"energy": {"ok": bool, "how": str}} for a device."""
    from profilers.energy import energy_meter_for
    from profilers.memory import memory_method
    lat = {"cpu": "wall clock (perf_counter)", "cuda": "CUDA events",
           "rocm": "HIP events", "opencl": "OpenCL profiling events + wall clock"}[d.kind]
    if d.kind == "opencl":
        mem = {"ok": True, "how": "opencl-buffers",
               "detail": "peak bytes of device buffers live during the op (executor)"}
    else:
        detail = memory_method(d.kind)
        mem = {"ok": not detail.startswith("unavailable"), "how": detail.split(":")[0],
               "detail": detail}
    kind = d.kind
    if kind == "opencl":
        vendor = str(d.details.get("vendor", "")).lower()
        kind = "opencl-amd" if "amd" in vendor or "advanced micro" in vendor else "opencl"
    e = energy_meter_for(kind, d.index[0] if d.index else 0).describe()
    energy = {"ok": bool(e.get("available")),
              "how": e.get("method") if e.get("available") else str(e.get("reason")),
              "detail": e.get("reason") or e.get("method")}
    return {"latency": {"ok": True, "how": lat, "detail": lat}, "memory": mem,
            "energy": energy}


def device_rows() -> list[dict]:
    """Returns one JSON-ready row per device found (spec, name, backend, preset, summary,
    details, meters)."""
    rows = []
    for d in discover():
        r = d.to_dict()
        r["summary"] = _summary(d)
        r["meters"] = meters_for(d)
        rows.append(r)
    return rows
