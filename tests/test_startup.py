"""``--help`` is instant: no command's help imports torch or optuna (read from
``python -X importtime``, which names every module a process imports). Timings are not
asserted here (a loaded CI machine would make them flaky)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

#: a line of ``-X importtime`` whose module column is torch/optuna or a submodule
HEAVY = re.compile(r"\|\s*(torch|optuna)(\.\S*)?\s*$")

HELPS = [
    ["--help"],
    ["search", "--help"],
    ["search", "--method", "darts", "--help"],
    ["search", "--method", "random", "--help"],
    ["lut", "show", "--help"],
    ["lut", "diff", "--help"],
    ["report", "--help"],
    ["bench", "--help"],
    ["profile", "--help"],
]


def heavy_imports(importtime: str) -> list[str]:
    """Returns the torch/optuna modules of ``-X importtime`` output, in import order."""
    out = []
    for line in importtime.splitlines():
        m = HEAVY.search(line) if line.startswith("import time:") else None
        if m:
            out.append(line.rsplit("|", 1)[1].strip())
    return out


def test_heavy_imports_reads_the_module_column():
    text = ("import time: self [us] | cumulative | imported package\n"
            "import time:       120 |        120 |   torch._utils\n"
            "import time:       300 |       3000 | torch\n"
            "import time:        50 |         50 |     optuna.samplers\n"
            "import time:        10 |         10 |   torchvision\n"
            "import time:        10 |         10 |   mytorch\n"
            "import time:        10 |         10 |   nasbench.optuna_glue\n")
    assert heavy_imports(text) == ["torch._utils", "torch", "optuna.samplers"]


@pytest.mark.parametrize("args", HELPS, ids=" ".join)
def test_help_imports_no_torch_or_optuna(tmp_path, args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NASBENCH_")}
    env["NASBENCH_CACHE_DIR"] = str(tmp_path / "cache")
    r = subprocess.run([sys.executable, "-X", "importtime", "-m", "nasbench", *args],
                       env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Usage" in r.stdout
    assert "import time:" in r.stderr and "nasbench.cli" in r.stderr
    assert heavy_imports(r.stderr) == []
