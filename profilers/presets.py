"""Named device presets: how to recognise the hardware, which backend measures it, and
its spec sheet (for roofline context; these are the vendor's figures, not measurements).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class SpecSheet:
    """Vendor figures: peak FP32 TFLOP/s, memory bandwidth GB/s, memory GiB, compute
    units (CUs / SMs / cores), board power W, boost clock MHz. None where unknown."""

    peak_fp32_tflops: float | None = None
    mem_bandwidth_gbs: float | None = None
    mem_gib: float | None = None
    compute_units: int | None = None
    board_power_w: float | None = None
    boost_mhz: float | None = None
    memory_type: str | None = None

    def to_dict(self) -> dict:
        """Returns the spec sheet as a dict, labelled as vendor figures."""
        return {**asdict(self), "source": "vendor spec sheet (not measured)"}


@dataclass(frozen=True)
class Preset:
    """A named target. ``patterns`` are lower-case substrings of a device name that
    identify it; ``backends`` lists device kinds in order of preference."""

    name: str
    description: str
    patterns: tuple[str, ...]
    backends: tuple[str, ...]
    spec: SpecSheet

    def matches(self, device_name: str) -> bool:
        """Returns True when ``device_name`` identifies this preset's hardware."""
        n = device_name.lower()
        return any(p in n for p in self.patterns)


PRESETS: dict[str, Preset] = {}


def register_preset(p: Preset) -> Preset:
    """Adds a preset to :data:`PRESETS`; returns it."""
    PRESETS[p.name] = p
    return p


register_preset(Preset(
    name="rx580",
    description="AMD Radeon RX 580 (Polaris 10 / Ellesmere, gfx803). Current ROCm builds of "
                "PyTorch dropped gfx803, so it is measured through OpenCL unless a ROCm torch "
                "sees it.",
    patterns=("ellesmere", "polaris 10", "polaris10", "gfx803", "radeon rx 580", "rx 580"),
    backends=("rocm", "opencl"),
    spec=SpecSheet(peak_fp32_tflops=6.17, mem_bandwidth_gbs=256.0, mem_gib=8.0,
                   compute_units=36, board_power_w=185.0, boost_mhz=1340.0,
                   memory_type="GDDR5"),
))

register_preset(Preset(
    name="rtx3090",
    description="NVIDIA GeForce RTX 3090 (GA102), measured through torch CUDA.",
    patterns=("rtx 3090",),
    backends=("cuda",),
    spec=SpecSheet(peak_fp32_tflops=35.6, mem_bandwidth_gbs=936.0, mem_gib=24.0,
                   compute_units=82, board_power_w=350.0, boost_mhz=1695.0,
                   memory_type="GDDR6X"),
))

register_preset(Preset(
    name="h100",
    description="NVIDIA H100 (SXM5 or PCIe), measured through torch CUDA. Spec sheet: SXM5.",
    patterns=("h100",),
    backends=("cuda",),
    spec=SpecSheet(peak_fp32_tflops=67.0, mem_bandwidth_gbs=3350.0, mem_gib=80.0,
                   compute_units=132, board_power_w=700.0, boost_mhz=1980.0,
                   memory_type="HBM3"),
))

# The host CPU, whatever it is: its name comes from /proc/cpuinfo, its spec is unknown.
register_preset(Preset(
    name="host-cpu",
    description="The CPU this process runs on, measured through torch (oneDNN).",
    patterns=("",),
    backends=("cpu",),
    spec=SpecSheet(),
))
