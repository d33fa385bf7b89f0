"""Peak memory from the buffer schedule (nasbench/predict/memory.py): the schedule's
arithmetic on hand-built networks, the plan against torch's allocator on this CPU and
against the OpenCL executor's buffers (PoCL), ``--memory-target`` in a multi-trial search,
``nasbench memory`` and its bad input."""

from __future__ import annotations

import json
import random

import pytest
import torch
from torch import nn

from nasbench.cli import main
from nasbench.config import parse_memory
from nasbench.errors import UserError
from nasbench.luts import get_device, measure_network_memory
from nasbench.predict.memory import MemoryPlanner, Workspaces, allocator_model, plan_memory
from nasbench.spaces import get_space
from profilers.lut import LUT, full_key
from profilers.memory import measure_allocated
from tests.conftest import make_entry

KIB = 1024


class Chain(nn.Module):
    """conv -> relu (in place) -> flatten (a view) -> linear: 3 storages at most."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 8, 3, padding=1, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.fc = nn.Linear(8 * 8 * 8, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.relu(self.conv(x)), 1))


class Branches(nn.Module):
    """Two branches of the input live at once, then added."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(4, 4, 1, bias=False)
        self.b = nn.Conv2d(4, 4, 1, bias=False)

    def forward(self, x):
        return self.a(x) + self.b(x)


def test_the_schedule_frees_at_last_use_and_shares_views_and_in_place_results():
    x = torch.zeros(1, 4, 8, 8)                      # 1 KiB
    p = plan_memory(Chain(), x)
    # input 1 KiB + conv output 2 KiB live at the conv; the input is freed after it
    # (its last use); relu and flatten share the conv's storage; the linear's 40 B
    # output is allocated while the 2 KiB is read
    assert p.input == KIB and p.activation_peak == KIB + 2 * KIB and p.at == "conv"
    assert p.weights == 4 * (8 * 4 * 9 + 10 * 512 + 10)
    assert p.peak == p.activation_peak + p.weights
    assert p.naive == KIB + 2 * KIB * 3 + 40          # every output kept (views too)
    # branches: input, a's output and b's output at once; the input is freed before
    # the sum is allocated
    q = plan_memory(Branches(), x)
    assert q.activation_peak == 3 * KIB and q.at == "b"


def test_a_workspace_counts_while_its_module_runs_only():
    x = torch.zeros(1, 4, 8, 8)
    calls = []

    def ws(module, shape, stride, out_bytes):
        calls.append((type(module).__name__, shape, out_bytes))
        return 10 * KIB if isinstance(module, nn.Conv2d) else 0
    p = plan_memory(Chain(), x, workspaces=ws)
    assert p.activation_peak == KIB + 2 * KIB + 10 * KIB and p.at == "conv"
    assert ("Conv2d", (1, 4, 8, 8), 2 * KIB) in calls
    assert ("ReLU", (1, 8, 8, 8), 0) in calls        # in place: no output of its own


def test_workspaces_are_measured_once_per_module_and_input():
    ws = Workspaces("cpu")
    conv = nn.Conv2d(16, 16, 3, padding=1)
    a = ws(conv, (1, 16, 32, 32), (16384, 1024, 32, 1), 64 * KIB)
    b = ws(nn.Conv2d(16, 16, 3, padding=1), (1, 16, 32, 32), (16384, 1024, 32, 1),
           64 * KIB)
    assert a == b >= 0 and ws.measured == 1
    ws(conv, (1, 16, 16, 16), (4096, 256, 16, 1), 16 * KIB)
    assert ws.measured == 2


def test_the_cpu_allocator_meter_sees_a_forward_s_temporaries():
    def fn():
        a = torch.empty(256 * KIB, dtype=torch.uint8)
        b = torch.empty(512 * KIB, dtype=torch.uint8)
        del a, b
    r = measure_allocated("cpu", fn)
    assert r.method == "torch-cpu-allocated"
    assert 768 * KIB <= r.peak_bytes < 800 * KIB


@pytest.mark.parametrize("name", ["nb201", "darts"])
def test_the_plan_matches_torch_s_allocator_on_this_cpu(name):
    cls = get_space(name)
    space = cls(cls.default_deploy())
    planner = MemoryPlanner(space, "cpu")
    d = space.deploy
    shape = (1, d.in_channels, d.input_size, d.input_size)
    for arch in space.sample_distinct(random.Random(1), 2, valid=True):
        plan = planner.plan(arch)
        m = measure_network_memory(space.build(arch), shape, "cpu")
        assert m["method"] == "torch-cpu-allocated"
        assert m["weight_bytes"] == plan.weights
        # activations (the hard part: weights are exact) within 10 %
        assert plan.activation_peak == pytest.approx(m["activation_bytes"], rel=0.10)
    assert planner.plan(arch) is planner.plan(arch)          # cached per architecture


def test_the_opencl_plan_matches_the_executor_s_buffers():
    pytest.importorskip("pyopencl")
    from kernels.runtime import Runtime
    try:
        Runtime(0, 0)
    except Exception:  # noqa: BLE001 - no OpenCL platform here
        pytest.skip("no OpenCL device")
    cls = get_space("nb201")
    space = cls(cls.default_deploy())
    planner = MemoryPlanner(space, "opencl:0:0")
    assert planner.model == "opencl" and planner.workspaces is None
    for arch in space.sample_distinct(random.Random(2), 2, valid=True):
        plan = planner.plan(arch)
        m = measure_network_memory(space.build(arch), (1, 3, 32, 32), "opencl:0:0")
        assert m["method"] == "opencl-buffers"
        assert plan.activation_peak == pytest.approx(m["activation_bytes"], rel=0.10)
        assert plan.weights == pytest.approx(m["weight_bytes"], rel=0.05)


def test_memory_sizes_parse_with_their_units():
    assert parse_memory("8MiB") == 8 * 2**20 and parse_memory("512KiB") == 512 * KIB
    assert parse_memory("8MB") == 8e6 and parse_memory("1e6") == 1e6
    assert parse_memory(None) is None
    for bad in ("eight", "-1MiB", "0", "nan"):
        with pytest.raises(UserError, match="--memory-target"):
            parse_memory(bad)


def test_devices_without_a_plan_say_so():
    assert allocator_model("cpu") == ("torch", "cpu")
    assert allocator_model("opencl:0:0") == ("opencl", None)
    if not torch.cuda.is_available():
        assert allocator_model("cuda:0") == ("torch", None)
        space = get_space("nb201")(get_space("nb201").default_deploy())
        assert "not reachable" in MemoryPlanner(space, "cuda").note
    with pytest.raises(UserError, match="cannot plan the memory"):
        allocator_model("hw-nas-bench:edgegpu")


def _nb201_lut(path, space):
    entries = {}
    for inst in space.enumerate_instances():
        entries[full_key(inst.key, 1)] = make_entry(inst.key, 1, 1.0 + inst.c_in / 16)
    LUT({"device": get_device("cpu").to_dict(), "deploy": space.deploy.describe(),
         "batches": [1]}, entries).save(path)
    return path


def test_a_memory_target_search_evaluates_only_networks_under_it(tmp_path, monkeypatch):
    from nasbench.run.runner import run_search
    from nasbench.searchers import TrialConfig
    monkeypatch.setenv("NASBENCH_CACHE_DIR", str(tmp_path / "cache"))
    cls = get_space("nb201")
    space = cls(cls.default_deploy())
    planner = MemoryPlanner(space, "cpu")
    peaks = sorted(planner(a) for a in space.sample_distinct(random.Random(0), 30,
                                                              valid=True))
    target = peaks[len(peaks) // 3]                  # about 2 in 3 cells are over it
    cfg = TrialConfig.from_preset(
        "quick", "random", space="nb201", evaluate="zc", dataset="synthetic", trials=6,
        trials_per_epoch=6, zc_batch=8, zc_reference=3, device="cpu",
        lut=str(_nb201_lut(tmp_path / "lut.json", space)), out=str(tmp_path / "runs"),
        references="", train_epochs=0, measure_top=0, threads=1,
        memory_target_bytes=target)
    res = run_search(cfg, quiet=True)
    assert res.status == "complete" and len(res.visited) == 6
    for v in res.visited:
        assert planner(space.arch_from_dict(v["arch"])) <= target
    assert res.predicted["memory_target"] == {"target_bytes": target, "met": True}
    assert res.predicted["memory_source"].startswith("buffer plan")
    # on the device: the measured peak of the choice is within the target too
    assert res.measured["memory_method"] == "torch-cpu-allocated"
    assert res.measured["memory_bytes"] <= target * 1.02
    log = (res.run_dir / "search.log").read_text()
    assert "memory target: the choice meets it by its buffer plan" in log


def test_a_table_device_refuses_a_memory_target(refuse):
    msg = refuse(["search", "--space", "nb201", "--method", "random",
                  "--device", "hw-nas-bench:edgegpu", "--memory-target", "4MiB"])
    assert "--memory-target" in msg and "table" in msg
    msg = refuse(["search", "--space", "nb201", "--method", "mobo", "--memory-target",
                  "4MiB"])
    assert "--memory-target" in msg and "mobo" in msg


def test_nasbench_memory_reports_the_plan_against_the_measurement(tmp_path, capsys):
    capsys.readouterr()
    assert main(["memory", "--space", "nb201", "--samples", "3", "--json",
                 "--out", str(tmp_path / "m.json")]) == 0
    res = json.loads(capsys.readouterr().out)
    assert json.loads((tmp_path / "m.json").read_text()) == res
    assert len(res["networks"]) == 3 and res["method"] == "torch-cpu-allocated"
    assert res["activations"]["within_10pct"] == 1.0
    assert res["peak"]["n"] == 3 and res["model"] == "torch"
    for r in res["networks"]:
        assert r["predicted"]["peak_bytes"] > r["predicted"]["activation_bytes"] > 0


def test_nasbench_memory_bad_input_is_one_line(refuse):
    assert "--samples" in refuse(["memory", "--samples", "2"])
    assert "device" in refuse(["memory", "--samples", "3", "--device", "tpu"])
