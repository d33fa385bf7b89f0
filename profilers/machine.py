"""The state of the machine while it measures: load, busy processes, CPU governor and
frequency, GPU clocks where readable, thread pinning.

A latency figure taken while another process competes for the cores is wrong in a way
its own CV may not show (a measurement can land wholly inside a busy second). So a
profile and a validation record this state at start and end, and warn when the machine
is loaded, instead of silently storing a wrong number.
"""

from __future__ import annotations

import glob
import os
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

#: a process using more than this share of one core (%) counts as busy
BUSY_PERCENT = 20.0


@dataclass
class MachineState:
    """A snapshot: load averages (1, 5, 15 min), cores, governor(s), current CPU
    frequency (MHz), other busy processes (name, pid, % of one core), GPU clocks (MHz)
    where readable, and why a field is unknown."""

    loadavg: tuple[float, float, float] | None
    cores: int
    governor: str | None
    freq_mhz: float | None
    busy: list[dict] = field(default_factory=list)
    gpu_clocks: list[dict] | None = None
    unknown: dict = field(default_factory=dict)

    @property
    def loaded(self) -> bool:
        """True when other processes compete for the cores. (The load average is only
        recorded: it counts this very process and the last minute's history.)"""
        return bool(self.busy)

    def warning(self) -> str | None:
        """Returns a one-line warning when the machine is loaded, else None."""
        if not self.loaded:
            return None
        who = ", ".join(f"{b['name']} (pid {b['pid']}, {b['cpu_percent']:.0f}%)"
                        for b in self.busy[:3])
        load = f"load {self.loadavg[0]:.1f} on {self.cores} cores" if self.loadavg else ""
        return ("the machine is busy (" + "; ".join(x for x in (load, who) if x) +
                "): latencies measured now run slow and noisy")

    def to_dict(self) -> dict:
        """Returns the JSON form (with ``loaded``)."""
        return asdict(self) | {"loaded": self.loaded}


def cpu_governor() -> tuple[str | None, str | None]:
    """Returns (governor, None), e.g. ("performance", None) or "powersave,performance"
    when cores differ, or (None, reason) when cpufreq is not readable."""
    files = glob.glob("/sys/devices/system/cpu/cpu[0-9]*/cpufreq/scaling_governor")
    if not files:
        return None, "no cpufreq scaling_governor in /sys (VM or container)"
    govs = Counter()
    for f in files:
        try:
            with open(f) as fh:
                govs[fh.read().strip()] += 1
        except OSError as e:
            return None, f"cannot read {f}: {e.strerror}"
    return ",".join(sorted(govs)), None


def cpu_freq_mhz() -> tuple[float | None, str | None]:
    """Returns (current CPU frequency in MHz, None) or (None, reason)."""
    try:
        import psutil
        f = psutil.cpu_freq()
    except Exception as e:  # noqa: BLE001 - psutil raises platform-specific errors
        return None, f"psutil.cpu_freq failed: {e}"
    if f is None or not f.current:
        return None, "CPU frequency not exposed by this machine"
    return float(f.current), None


def gpu_clocks() -> tuple[list[dict] | None, str | None]:
    """Returns ([{"index", "sm_mhz", "mem_mhz"}] per NVIDIA GPU, None) via NVML, or
    (None, reason)."""
    try:
        import pynvml
        pynvml.nvmlInit()
    except Exception as e:  # noqa: BLE001 - no driver / no library
        return None, f"NVML unavailable: {e.__class__.__name__}"
    try:
        out = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            out.append({"index": i,
                        "sm_mhz": pynvml.nvmlDeviceGetClockInfo(h, pynvml.NVML_CLOCK_SM),
                        "mem_mhz": pynvml.nvmlDeviceGetClockInfo(h, pynvml.NVML_CLOCK_MEM)})
        return out, None
    except Exception as e:  # noqa: BLE001
        return None, f"NVML clock query failed: {e}"
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:  # noqa: BLE001
            pass


def busy_processes(interval_s: float = 0.3, threshold: float = BUSY_PERCENT) -> list[dict]:
    """Returns the other processes that used more than ``threshold`` % of one core over
    ``interval_s`` seconds, busiest first: [{"pid", "name", "cpu_percent"}]."""
    import psutil
    me = os.getpid()
    procs = []
    for p in psutil.process_iter(["pid", "name"]):
        if p.info["pid"] == me:
            continue
        try:
            p.cpu_percent(None)
            procs.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    time.sleep(interval_s)
    busy = []
    for p in procs:
        try:
            c = p.cpu_percent(None)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if c > threshold:
            busy.append({"pid": p.info["pid"], "name": p.info["name"], "cpu_percent": c})
    return sorted(busy, key=lambda b: -b["cpu_percent"])


def machine_state(interval_s: float = 0.3) -> MachineState:
    """Returns a :class:`MachineState` snapshot (takes about ``interval_s`` seconds to
    sample the other processes' CPU use)."""
    unknown = {}
    try:
        load = tuple(os.getloadavg())
    except OSError:
        load, unknown["loadavg"] = None, "os.getloadavg unavailable"
    gov, why = cpu_governor()
    if why:
        unknown["governor"] = why
    freq, why = cpu_freq_mhz()
    if why:
        unknown["freq_mhz"] = why
    clocks, why = gpu_clocks()
    if why:
        unknown["gpu_clocks"] = why
    try:
        busy = busy_processes(interval_s)
    except Exception as e:  # noqa: BLE001 - psutil missing or restricted /proc
        busy, unknown["busy"] = [], f"cannot list processes: {e}"
    return MachineState(load, os.cpu_count() or 1, gov, freq, busy, clocks, unknown)


@contextmanager
def pinned_threads(threads: int):
    """Pins this process to the first ``threads`` CPUs it may run on (Linux), so the
    thread pool does not migrate between cores while it measures; yields the CPU list
    (None where affinity cannot be set) and restores the old affinity."""
    if not hasattr(os, "sched_getaffinity"):
        yield None
        return
    old = os.sched_getaffinity(0)
    cpus = sorted(old)[:max(threads, 1)]
    try:
        _set_all_threads(cpus)
    except OSError:
        yield None
        return
    try:
        yield cpus
    finally:
        _set_all_threads(old)


def _set_all_threads(cpus) -> None:
    # sched_setaffinity(0) moves only the calling thread: move every thread of the
    # process (torch's OpenMP pool already exists), then new threads inherit it
    tids = [int(t) for t in os.listdir("/proc/self/task")] if os.path.isdir(
        "/proc/self/task") else [0]
    for tid in tids:
        try:
            os.sched_setaffinity(tid, cpus)
        except ProcessLookupError:
            continue


class LoadMonitor:
    """Watches the other processes' CPU use in a background thread while measuring.

    A snapshot at the start and end misses a competitor that runs for half a minute in
    the middle; the monitor samples every ``interval_s`` seconds (cheap: psutil's
    per-process counters since the last sample), so each measurement can be asked
    whether anything else was busy while it ran (:meth:`busy_between`)."""

    def __init__(self, interval_s: float = 1.0, threshold: float = BUSY_PERCENT):
        import threading
        self.interval_s, self.threshold = interval_s, threshold
        self.samples: list[tuple[float, list[dict]]] = []   # (monotonic time, busy)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="load-monitor")
        self._procs: dict = {}

    def __enter__(self) -> LoadMonitor:
        try:
            import psutil  # noqa: F401
        except ImportError:
            return self
        self._others_percent()               # prime the counters
        self._scan()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.samples.append((time.monotonic(), self._sample()))

    def _others_percent(self) -> float | None:
        """Returns the CPU the rest of the machine used since the last call, in % of
        one core: /proc/stat's busy jiffies minus this process's. Two small file reads,
        so the monitor thread holds the GIL for microseconds, not the milliseconds a
        process scan takes (which would itself disturb sub-millisecond timings)."""
        try:
            with open("/proc/stat") as f:
                v = [int(x) for x in f.readline().split()[1:]]
            with open("/proc/self/stat") as f:
                st = f.read().rsplit(")", 1)[1].split()
        except (OSError, ValueError, IndexError):
            return None
        busy = v[0] + v[1] + v[2] + sum(v[5:8])      # user nice system irq softirq steal
        mine = int(st[11]) + int(st[12])             # utime + stime, all threads
        now = time.monotonic()
        last, self._last = getattr(self, "_last", None), (now, busy, mine)
        if last is None:
            return None
        hz = os.sysconf("SC_CLK_TCK")
        dt = max(now - last[0], 1e-3)
        return max(0.0, ((busy - last[1]) - (mine - last[2])) / hz / dt * 100.0)

    def _sample(self) -> list[dict]:
        others = self._others_percent()
        if others is not None and others <= self.threshold:
            return []                        # quiet: no need to name anyone
        named = self._scan()
        if not named and others is not None:
            # busy, but no single process over the threshold since its last scan
            named = [{"pid": None, "name": "other processes", "cpu_percent": others}]
        return named

    def _scan(self) -> list[dict]:
        import psutil
        me, busy, seen = os.getpid(), [], set()
        for p in psutil.process_iter(["pid", "name"]):
            pid = p.info["pid"]
            if pid == me:
                continue
            seen.add(pid)
            proc = self._procs.setdefault(pid, p)
            try:
                c = proc.cpu_percent(None)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            if c > self.threshold:
                busy.append({"pid": pid, "name": p.info["name"], "cpu_percent": c})
        self._procs = {k: v for k, v in self._procs.items() if k in seen}
        return busy

    def busy_between(self, t0: float, t1: float) -> list[dict]:
        """Returns the busy processes seen in samples taken in [t0, t1 + interval]
        (monotonic seconds): the busiest observation of each pid."""
        out: dict[int, dict] = {}
        for t, busy in list(self.samples):
            if t0 <= t <= t1 + self.interval_s:
                for b in busy:
                    if b["cpu_percent"] > out.get(b["pid"], {}).get("cpu_percent", -1):
                        out[b["pid"]] = b
        return sorted(out.values(), key=lambda b: -b["cpu_percent"])
