import pytest

from profilers.devices import Device, DeviceError, discover, resolve_device
from profilers.presets import PRESETS

CPU = Device("cpu", (), "Intel(R) Xeon(R) Processor", "torch-cpu")
POCL = Device("opencl", (0, 0), "pthread-Intel(R) Xeon(R) Processor", "opencl",
              {"vendor": "GenuineIntel"})
POCL2 = Device("opencl", (1, 0), "cpu-haswell-Intel(R) Xeon(R)", "opencl")
RX580_CL = Device("opencl", (1, 0), "Ellesmere", "opencl", {"vendor": "Advanced Micro Devices"})
RX580_ROCM = Device("rocm", (0,), "Radeon RX 580 Series (gfx803)", "torch-rocm")
H100 = Device("cuda", (0,), "NVIDIA H100 80GB HBM3", "torch-cuda")


def test_plain_specs():
    devs = [CPU, POCL, POCL2]
    assert resolve_device("cpu", devs) is CPU
    assert resolve_device("opencl", devs) is POCL
    assert resolve_device("opencl:1", devs) is POCL2
    assert resolve_device("opencl:1:0", devs) is POCL2
    assert resolve_device("OpenCL:0:0", devs) is POCL


@pytest.mark.parametrize("spec,msg", [
    ("gpu", "unknown device"), ("cuda", "no cuda device"), ("opencl:3", "no opencl:3"),
    ("cpu:1", "takes no index"), ("cuda:0:1", "one index"), ("rx580", "not here"),
])
def test_bad_specs_list_what_is_there(spec, msg):
    with pytest.raises(DeviceError) as e:
        resolve_device(spec, [CPU, POCL])
    text = str(e.value)
    assert msg in text
    if "not here" in msg or "no " in msg:
        assert "cpu (Intel(R) Xeon(R) Processor)" in text
        assert "opencl:0:0 (pthread-Intel(R) Xeon(R) Processor)" in text
    assert "\n" not in text


def test_rx580_recognised_and_backend_preference():
    assert resolve_device("rx580", [CPU, POCL, RX580_CL]) is RX580_CL
    # a ROCm torch that sees the card wins over OpenCL
    assert resolve_device("rx580", [CPU, RX580_CL, RX580_ROCM]) is RX580_ROCM
    for name in ("Ellesmere", "AMD Radeon (TM) RX 580 Series", "gfx803",
                 "Polaris 10 XT"):
        assert PRESETS["rx580"].matches(name)
    assert not PRESETS["rx580"].matches("Radeon RX 6800")
    spec = PRESETS["rx580"].spec
    assert (spec.peak_fp32_tflops, spec.mem_bandwidth_gbs, spec.mem_gib,
            spec.compute_units, spec.board_power_w) == (6.17, 256.0, 8.0, 36, 185.0)


def test_nvidia_and_host_presets():
    assert resolve_device("h100", [CPU, H100]) is H100
    with pytest.raises(DeviceError):
        resolve_device("h100", [CPU, POCL])  # never measured under another's name
    d = resolve_device("host-cpu", [CPU, POCL])
    assert d.kind == "cpu" and d.to_dict()["preset"] == "host-cpu"


def test_discover_finds_this_cpu():
    devs = discover()
    assert devs[0].kind == "cpu" and devs[0].details["torch_threads"] >= 1
    assert all(d.id.startswith(d.kind + ":") for d in devs)
