"""Energy meters: every backend driven through a fake sensor source, so the arithmetic
(J per call, units, wrap-around, trapezoid rule) is checked without the hardware, plus
the factory's behaviour on this sensor-less machine."""

import logging
import os
import sys
import time
from pathlib import Path

import pytest

from profilers.energy import (
    CounterEnergyMeter,
    EnergyMeter,
    PowerSamplingEnergyMeter,
    energy_meter_for,
    integrate_trapezoid,
    parse_amdsmi_energy,
)


class Clock:
    """A fake clock: the fake op and the meter's polling sleep advance it."""

    def __init__(self, t: float = 100.0):
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, dt: float) -> None:
        self.t += dt


def op(clock: Clock, dt: float = 0.01):
    """A fake op lasting ``dt`` seconds of fake time."""
    return lambda: clock.advance(dt)


def fast(clock: Clock, **kw) -> dict:
    """Meter options for deterministic fake-time runs."""
    return {"clock": clock, "sleep": clock.advance, "background": False, **kw}


# --------------------------------------------------------------------------- fakes


class NVMLError(Exception):
    pass


class NVMLError_NotSupported(NVMLError):  # noqa: N801 - the real pynvml name
    pass


class NVMLError_LibraryNotFound(NVMLError):  # noqa: N801 - the real pynvml name
    pass


class FakeNvml:
    """Just the pynvml calls the meter makes; power in W as a function of time."""

    NVMLError = NVMLError
    NVMLError_NotSupported = NVMLError_NotSupported
    NVMLError_LibraryNotFound = NVMLError_LibraryNotFound

    def __init__(self, clock: Clock, power_w, *, energy_counter: bool = True,
                 init_error: Exception | None = None):
        self.clock, self.power_w = clock, power_w
        self.energy_counter, self.init_error = energy_counter, init_error
        self.shutdowns = 0
        self.t_start = clock.t

    def nvmlInit(self):  # noqa: N802 - pynvml's API names
        if self.init_error is not None:
            raise self.init_error

    def nvmlShutdown(self):  # noqa: N802
        self.shutdowns += 1

    def nvmlDeviceGetHandleByIndex(self, i):  # noqa: N802
        return ("gpu", i)

    def nvmlDeviceGetTotalEnergyConsumption(self, handle):  # noqa: N802
        if not self.energy_counter:
            raise NVMLError_NotSupported()
        # constant power only: energy since "driver load" in integer mJ
        return int(round(self.power_w(self.clock.t) * (self.clock.t - self.t_start) * 1e3))

    def nvmlDeviceGetPowerUsage(self, handle):  # noqa: N802
        return int(round(self.power_w(self.clock.t) * 1e3))  # mW


class FakeAmdsmi:
    """amdsmi with an energy accumulator of ``resolution_uj`` per tick at constant W."""

    def __init__(self, clock: Clock, watts: float, form: str = "dict",
                 resolution_uj: float = 15.3, fail_read: bool = False):
        self.clock, self.watts, self.form = clock, watts, form
        self.res, self.fail_read = resolution_uj, fail_read
        self.t_start = clock.t
        self.shut = False

    def amdsmi_init(self):
        pass

    def amdsmi_shut_down(self):
        self.shut = True

    def amdsmi_get_processor_handles(self):
        return ["h0", "h1"]

    def amdsmi_get_energy_count(self, handle):
        if self.fail_read:
            raise RuntimeError("AMDSMI_STATUS_NOT_SUPPORTED")
        acc = int(self.watts * (self.clock.t - self.t_start) * 1e6 / self.res)
        if self.form == "dict":
            return {"energy_accumulator": acc, "counter_resolution": self.res,
                    "timestamp": int(self.clock.t * 1e9)}
        if self.form == "dict-old":
            return {"power": acc, "counter_resolution": self.res,
                    "timestamp": int(self.clock.t * 1e9)}
        return (acc, self.res, int(self.clock.t * 1e9))


class BrokenAmdsmi:
    def amdsmi_init(self):
        raise RuntimeError("AMDSMI_STATUS_DRIVER_NOT_LOADED")


class FakeRocml:
    def __init__(self, clock: Clock, power_w, init_fails: bool = False):
        self.clock, self.power_w, self.init_fails = clock, power_w, init_fails

    def smi_initialize(self):
        if self.init_fails:
            # pyrsmi logs a traceback and prints before failing
            logging.getLogger("pyrsmi").exception("rsmi_init failed")
            print("ROCm SMI: library not found")
            os.write(2, b"C-level noise\n")
            raise OSError("librocm_smi64.so: cannot open shared object file")

    def smi_shutdown(self):
        pass

    def smi_get_device_average_power(self, dev):
        return self.power_w(self.clock.t)


# --------------------------------------------------------------------------- NVML


def test_nvml_energy_counter_joules_per_call():
    clock = Clock()
    nvml = FakeNvml(clock, lambda t: 50.0)
    m = energy_meter_for("cuda", 0, nvml=nvml, **fast(clock))
    assert m.available and m.method == "nvml-energy-counter" and m.reason is None
    r = m.measure(op(clock, 0.01), repeats=10)
    assert r.reason is None
    assert r.calls == 20  # two batches of 10 x 10 ms reach min_duration_s = 0.2 s
    assert r.seconds == pytest.approx(0.2)
    assert r.total_joules == pytest.approx(50.0 * 0.2, abs=2e-3)  # integer mJ
    assert r.joules_per_call == pytest.approx(0.5, rel=1e-3)  # 50 W x 10 ms
    m.close()
    assert nvml.shutdowns == 1


def test_nvml_power_sampling_when_no_energy_counter():
    clock = Clock(0.0)
    nvml = FakeNvml(clock, lambda t: 50.0 + 100.0 * t, energy_counter=False)
    m = energy_meter_for("cuda", 0, nvml=nvml, **fast(clock))
    assert m.available and m.method == "nvml-power-sampling"
    r = m.measure(op(clock, 0.05), repeats=2, sync=lambda: None)
    # boundary samples every 0.1 s over [0, 0.2]; trapezoid is exact for a ramp:
    # integral of 50 + 100 t over [0, 0.2] = 10 + 2 = 12 J, over 4 calls
    assert r.calls == 4
    assert r.total_joules == pytest.approx(12.0, rel=1e-6)
    assert r.joules_per_call == pytest.approx(3.0, rel=1e-6)


def test_nvml_power_sampling_background_thread_real_clock():
    # constant power makes the trapezoid exact whatever the sample times are
    nvml = FakeNvml(Clock(), lambda t: 80.0, energy_counter=False)
    m = energy_meter_for("cuda", 0, nvml=nvml, min_duration_s=0.05, sample_interval_s=0.005)
    assert isinstance(m, PowerSamplingEnergyMeter) and m.background
    r = m.measure(lambda: time.sleep(0.005), repeats=4)
    assert r.reason is None and r.seconds >= 0.05
    assert r.total_joules == pytest.approx(80.0 * r.seconds, rel=1e-6)
    assert r.joules_per_call == pytest.approx(r.total_joules / r.calls)
    assert not any(t.name == "nasbench-power-sampler" for t in __import__(
        "threading").enumerate())  # the sampler thread was joined


def test_nvml_library_not_found_is_a_reason():
    nvml = FakeNvml(Clock(), lambda t: 0.0, init_error=NVMLError_LibraryNotFound())
    m = energy_meter_for("cuda", 0, nvml=nvml)
    assert not m.available
    assert m.reason == "no NVML: NVIDIA driver library not found"
    r = m.measure(lambda: None, 5)
    assert r.joules_per_call is None and r.total_joules is None and r.reason == m.reason


def test_counter_alignment_waits_for_a_tick():
    clock = Clock(0.0)

    class Quantised(FakeNvml):
        def nvmlDeviceGetTotalEnergyConsumption(self, handle):  # noqa: N802
            ticks = int(self.clock.t * 1000 + 1e-9) // 20  # updates every 20 ms
            return ticks * 20 * 100  # 100 W -> 100 mJ per ms

    clock.advance(0.0031)
    m = energy_meter_for("cuda", 0, nvml=Quantised(clock, lambda t: 100.0), **fast(clock))
    r = m.measure(op(clock, 0.01), repeats=5)
    # the batch starts right after the tick at 20 ms; the end reading lags by < 1 tick
    assert clock.t == pytest.approx(0.02 + r.seconds, abs=1e-3)
    assert 100.0 * (r.seconds - 0.02) <= r.total_joules <= 100.0 * r.seconds + 1e-9


# --------------------------------------------------------------------------- AMD


@pytest.mark.parametrize("form", ["dict", "dict-old", "tuple"])
def test_amdsmi_energy_count_forms(form):
    clock = Clock()
    amd = FakeAmdsmi(clock, watts=120.0, form=form)
    m = energy_meter_for("rocm", 1, amdsmi=amd, **fast(clock))
    assert m.available and m.method == "amdsmi-energy-counter"
    r = m.measure(op(clock, 0.02), repeats=5)
    assert r.calls == 10 and r.seconds == pytest.approx(0.2)
    # accumulator ticks x 15.3 uJ; truncation costs < 1 tick per read
    assert r.total_joules == pytest.approx(120.0 * 0.2, abs=2 * 15.3e-6)
    assert r.joules_per_call == pytest.approx(120.0 * 0.02, rel=1e-5)
    m.close()
    assert amd.shut


def test_parse_amdsmi_energy_rejects_na_and_garbage():
    assert parse_amdsmi_energy({"energy_accumulator": 10, "counter_resolution": 15.3,
                                "timestamp": 1}) == (10, 15.3)
    assert parse_amdsmi_energy([7, 2.0]) == (7, 2.0)
    from profilers.energy import SensorError
    for bad in ({"energy_accumulator": "N/A", "counter_resolution": 15.3}, {"x": 1}, 42,
                (1, 0.0)):
        with pytest.raises(SensorError):
            parse_amdsmi_energy(bad)


def test_amdsmi_keyerror_at_import_falls_back_to_pyrsmi_silently(tmp_path, monkeypatch,
                                                                  capfd):
    # a stand-in for the real package, which prints and raises KeyError when the
    # driver is absent
    pkg = tmp_path / "site" / "amdsmi"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(
        "import os\nprint('amdsmi: driver not initialized')\n"
        "os.write(1, b'C noise\\n')\nraise KeyError('AMDSMI_LIB_PATH')\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, "amdsmi", raising=False)
    clock = Clock(0.0)
    rocml = FakeRocml(clock, lambda t: 40.0)
    m = energy_meter_for("opencl-amd", 0, sysfs_root=tmp_path, rocml=rocml, **fast(clock))
    out = capfd.readouterr()
    assert out.out == "" and out.err == ""
    assert m.available and m.method == "pyrsmi-power-sampling"
    r = m.measure(op(clock, 0.1), repeats=1)
    assert r.calls == 2 and r.joules_per_call == pytest.approx(4.0)  # 40 W x 0.1 s
    monkeypatch.delitem(sys.modules, "amdsmi", raising=False)


def test_all_amd_backends_absent_gives_joined_reason(tmp_path, capfd, caplog):
    clock = Clock()
    m = energy_meter_for("rocm", 0, sysfs_root=tmp_path, amdsmi=BrokenAmdsmi(),
                         rocml=FakeRocml(clock, lambda t: 1.0, init_fails=True))
    out = capfd.readouterr()
    assert out.out == "" and out.err == "" and not caplog.records
    assert not m.available
    assert "no amdsmi: init failed (RuntimeError: AMDSMI_STATUS_DRIVER_NOT_LOADED)" in m.reason
    assert "no pyrsmi: init failed (OSError" in m.reason
    assert "no amdgpu hwmon" in m.reason
    assert m.measure(lambda: None, 3).joules_per_call is None


def test_amdsmi_unsupported_read_falls_back_and_rocml_minus_one_is_failure(tmp_path):
    clock = Clock()
    m = energy_meter_for("rocm", 0, sysfs_root=tmp_path,
                         amdsmi=FakeAmdsmi(clock, 1.0, fail_read=True),
                         rocml=FakeRocml(clock, lambda t: -1))
    assert not m.available
    assert "no amdsmi energy: amdsmi energy read failed" in m.reason
    assert "no pyrsmi power: pyrsmi returned power -1.0 W" in m.reason


def write_hwmon_tree(root: Path) -> Path:
    """An Intel iGPU as card0 and an AMD card as card1 (with a connector entry)."""
    drm = root / "class" / "drm"
    (drm / "card0" / "device").mkdir(parents=True)
    (drm / "card0" / "device" / "vendor").write_text("0x8086\n")
    hw = drm / "card1" / "device" / "hwmon" / "hwmon4"
    hw.mkdir(parents=True)
    (drm / "card1" / "device" / "vendor").write_text("0x1002\n")
    (drm / "card1-DP-1").mkdir()
    power = hw / "power1_average"
    power.write_text("30000000\n")  # 30 W in uW
    return power


def test_hwmon_power_average_integrated(tmp_path):
    power = write_hwmon_tree(tmp_path)
    clock = Clock(0.0)
    m = energy_meter_for("opencl-amd", 0, sysfs_root=tmp_path, amdsmi=BrokenAmdsmi(),
                         rocml=FakeRocml(clock, lambda t: 0, init_fails=True), **fast(clock))
    assert m.available and m.method == "hwmon-power-sampling"

    def fn():  # the board draws 30 W, then 50 W from the first call on
        clock.advance(0.05)
        power.write_text("50000000\n")

    r = m.measure(fn, repeats=2)
    # samples: (0, 30 W), (0.1, 50 W), (0.2, 50 W) -> 4 + 5 = 9 J over 4 calls
    assert r.calls == 4
    assert r.total_joules == pytest.approx(9.0)
    assert r.joules_per_call == pytest.approx(2.25)
    assert energy_meter_for("opencl-amd", 1, sysfs_root=tmp_path, amdsmi=BrokenAmdsmi(),
                            rocml=FakeRocml(clock, lambda t: 0, init_fails=True)
                            ).available is False


def test_hwmon_read_failure_mid_measure_gives_none_not_zero(tmp_path):
    power = write_hwmon_tree(tmp_path)
    clock = Clock(0.0)
    m = energy_meter_for("rocm", 0, sysfs_root=tmp_path, amdsmi=BrokenAmdsmi(),
                         rocml=FakeRocml(clock, lambda t: 0, init_fails=True), **fast(clock))

    def fn():
        clock.advance(0.05)
        power.unlink()

    r = m.measure(fn, repeats=1)
    assert r.joules_per_call is None and r.total_joules is None
    assert "power1_average" in r.reason


# --------------------------------------------------------------------------- RAPL


def write_rapl(root: Path, name: str, energy: int, max_range: int, sub: bool = False) -> Path:
    d = root / "class" / "powercap" / name
    d.mkdir(parents=True)
    (d / "name").write_text(("core" if sub else f"package-{name[-1]}") + "\n")
    (d / "energy_uj").write_text(f"{energy}\n")
    (d / "max_energy_range_uj").write_text(f"{max_range}\n")
    return d / "energy_uj"


def test_rapl_sums_packages_and_handles_wrap(tmp_path):
    max_range = 262_143_328_850
    pkg0 = write_rapl(tmp_path, "intel-rapl:0", max_range - 1_000_000, max_range)
    pkg1 = write_rapl(tmp_path, "intel-rapl:1", 5_000_000, max_range)
    core = write_rapl(tmp_path, "intel-rapl:0:0", 0, max_range, sub=True)  # not summed
    clock = Clock()
    m = energy_meter_for("cpu", sysfs_root=tmp_path, **fast(clock))
    assert m.available and m.method == "rapl-powercap"

    def fn():  # 0.1 s at 30 W on package 0 (wrapping) and 10 W on package 1
        clock.advance(0.1)
        for f, uj in ((pkg0, 3_000_000), (pkg1, 1_000_000), (core, 99_000_000)):
            f.write_text(f"{(int(f.read_text()) + uj) % max_range}\n")

    r = m.measure(fn, repeats=1)
    assert r.calls == 2
    assert r.total_joules == pytest.approx(8.0)  # 2 x (3 J + 1 J)
    assert r.joules_per_call == pytest.approx(4.0)
    assert int(pkg0.read_text()) < 10_000_000  # it did wrap


def test_rapl_unreadable_energy_is_a_reason(tmp_path):
    f = write_rapl(tmp_path, "intel-rapl:0", 1, 10)
    f.unlink()
    f.mkdir()  # unreadable as a file, whoever runs the test
    m = energy_meter_for("cpu", sysfs_root=tmp_path)
    assert not m.available and m.reason.startswith("no RAPL: cannot read")


def test_counter_that_never_advances_gives_none_not_zero(tmp_path):
    write_rapl(tmp_path, "intel-rapl:0", 123, 1000)
    clock = Clock()
    m = energy_meter_for("cpu", sysfs_root=tmp_path, max_duration_s=0.5, **fast(clock))
    r = m.measure(op(clock, 0.1), repeats=1)
    assert r.joules_per_call is None and r.total_joules is None
    assert "did not advance" in r.reason
    assert r.calls == 5


# --------------------------------------------------------------------------- factory


def test_integrate_trapezoid():
    assert integrate_trapezoid([]) == 0.0
    assert integrate_trapezoid([(0.0, 10.0)]) == 0.0
    assert integrate_trapezoid([(0.0, 10.0), (1.0, 20.0), (3.0, 20.0)]) == 55.0


@pytest.mark.parametrize("kind", ["cpu", "cuda", "rocm", "opencl-amd", "opencl", "tpu"])
def test_factory_on_this_machine_reports_why_and_never_zero(kind, tmp_path, capfd):
    root = Path("/sys") if kind != "rocm" else tmp_path
    m = energy_meter_for(kind, 0, sysfs_root=root)
    assert capfd.readouterr().out == ""
    assert isinstance(m, EnergyMeter)
    if m.available:
        pytest.skip(f"this machine has a {kind} energy sensor ({m.method})")
    d = m.describe()
    assert d == {"available": False, "method": "none", "reason": m.reason}
    assert m.reason and m.reason.startswith("no ")
    calls = []
    r = m.measure(lambda: calls.append(1), repeats=3)
    assert r.joules_per_call is None and r.total_joules is None and r.reason == m.reason
    assert calls == []  # nothing is run for a meter that cannot measure


def test_counter_meter_is_usable_directly():
    from profilers.energy import CounterSource

    class Steps(CounterSource):
        def __init__(self):
            self.v = 0

        def read(self):
            self.v += 7
            return self.v

        def joules_between(self, a, b):
            return float(b - a)

    clock = Clock()
    m = CounterEnergyMeter(Steps(), "steps", min_duration_s=0.0, clock=clock,
                           sleep=clock.advance)
    r = m.measure(lambda: None, repeats=3)
    assert (r.calls, r.total_joules, r.joules_per_call) == (3, 7.0, 7.0 / 3)
