"""A plugin *package* is found through entry points alone: ``tests/plugin_fixture/
toy_plugin`` (a space, a searcher with an option of its own, an evaluator) is declared
by a ``toy_plugin-0.1.dist-info`` folder beside it on ``PYTHONPATH`` - nothing is
installed into the venv and nasbench's code names nothing of it - and driven through the
real command line in a subprocess: ``--help`` lists it, its option is built from its
declaration, validated (exit 2, one line, nothing written) and reaches the searcher."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURE = Path(__file__).parent / "plugin_fixture" / "toy_plugin"

ENTRY_POINTS = """\
[nasbench.spaces]
toy = toy_plugin

[nasbench.searchers]
toy = toy_plugin

[nasbench.evaluators]
toyeval = toy_plugin
"""

#: the toy deploy network (toy_plugin.ToyDeploy at --input 8) and its LUT values (ms)
INPUT, CHANNELS, DEPTH = 8, 4, 3
COST = {"skip_connect": 0.1, "max_pool_3x3": 0.5, "avg_pool_3x3": 0.6, "sep_conv_3x3": 2.0,
        "stem": 1.0, "gap_linear": 0.2}
EPOCHS = 2


def _write_lut(path: Path) -> None:
    """Writes the toy space's LUT for this machine's CPU (the keys the plugin's space
    places: a stem, the four candidates on CHANNELS channels, the head). The plugin is
    not imported here: its import would register "toy" in this process."""
    import nasbench.luts
    from nasbench.spaces.base import OpInstance
    from profilers.lut import LUT, full_key
    from tests.conftest import make_entry
    s, c = INPUT, CHANNELS
    insts = [OpInstance("stem", 3, c, s, s), OpInstance("gap_linear", c, 10, s, s)]
    insts += [OpInstance(op, c, c, s, s) for op in COST if op not in ("stem", "gap_linear")]
    deploy = {"space": "toy", "depth": DEPTH, "channels": c, "input_size": s,
              "in_channels": 3, "num_classes": 10}
    prov = {"device": nasbench.luts.get_device("cpu").to_dict(), "deploy": deploy,
            "batches": [1]}
    LUT(prov, {full_key(i.key, 1): make_entry(i.key, 1, COST[i.op]) for i in insts}
        ).save(path)


@pytest.fixture(scope="module")
def plugin(tmp_path_factory):
    """Returns (folder on PYTHONPATH holding the package and its dist-info, the LUT,
    the subprocess environment)."""
    root = tmp_path_factory.mktemp("plugin")
    shutil.copytree(FIXTURE, root / "toy_plugin",
                    ignore=shutil.ignore_patterns("__pycache__"))
    info = root / "toy_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy_plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    lut = root / "toy-lut.json"
    _write_lut(lut)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NASBENCH_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root),
                                                      os.environ.get("PYTHONPATH")]))
    env["NASBENCH_CACHE_DIR"] = str(root / "cache")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return root, lut, env


def nasbench(plugin, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    root, _, env = plugin
    return subprocess.run([sys.executable, "-m", "nasbench", *args], env=env,
                          cwd=cwd or root, capture_output=True, text=True, timeout=180)


def one_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_entry_points_declare_all_three(plugin):
    """The three groups list the plugin's names from its dist-info alone: listing
    imports nothing (the plugin imports torch; the end-to-end run loads all three)."""
    root, _, env = plugin
    code = ("import sys\n"
            "from nasbench.registry import EVALUATORS, SEARCHERS, SPACES\n"
            "print(SPACES.names(), SEARCHERS.names(), EVALUATORS.names(), sep='\\n')\n"
            "print('toy_plugin' in sys.modules, 'torch' in sys.modules)\n")
    r = subprocess.run([sys.executable, "-c", code], env=env, cwd=root,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    spaces, searchers, evaluators, loaded = r.stdout.splitlines()
    assert "'toy'" in spaces and "'darts'" in spaces
    assert "'toy'" in searchers and "'darts'" in searchers
    assert "'toyeval'" in evaluators and "'table'" in evaluators
    assert loaded == "False False"


def test_search_help_lists_the_plugin_method(plugin):
    r = nasbench(plugin, "search", "--help")
    assert r.returncode == 0, r.stderr
    assert "toy" in r.stdout.split("--method NAME")[1].split("--resume")[0]
    methods = r.stdout.split("Methods:")[1]
    assert "toy" in methods and "Random search by the evaluator's latency" in methods
    assert "--toy-option" not in r.stdout      # another method's option: hidden


def test_method_help_shows_its_own_option(plugin):
    r = nasbench(plugin, "search", "--method", "toy", "--help")
    assert r.returncode == 0, r.stderr
    assert "--toy-option" in r.stdout
    assert "How many architectures to draw per epoch." in " ".join(r.stdout.split())
    assert "--evaluate" in r.stdout
    assert "--order" not in r.stdout           # darts's own option: not toy's


def run_args(out: Path, lut: Path, *extra: str) -> list[str]:
    return ["search", "--method", "toy", *extra, "--out", str(out), "--references", "none",
            "--dataset", "synthetic", "--input", str(INPUT), "--epochs", str(EPOCHS),
            "--train-epochs", "0", "--lut", str(lut), "--threads", "1", "--seed", "0",
            "--quiet"]


def test_plugin_runs_end_to_end_with_its_option(plugin, tmp_path):
    _, lut, _ = plugin
    out = tmp_path / "OUT"
    r = nasbench(plugin, *run_args(out, lut, "--toy-option", "3"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    runs = [d for d in out.iterdir() if d.is_dir()]
    assert len(runs) == 1 and "-toy-" in runs[0].name
    d = runs[0]
    res = json.loads((d / "result.json").read_text())
    assert res["status"] == "complete" and res["method"] == "toy" and res["space"] == "toy"
    assert res["genotype"]["space"] == "toy" and len(res["genotype"]["ops"]) == DEPTH
    # the option reached the searcher: it drew 3 architectures per epoch, each judged
    # by the plugin's evaluator (found through its entry point)
    hist = json.loads((d / "history.json").read_text())
    assert [h["toy_option"] for h in hist] == [3] * EPOCHS
    assert [h["queries"] for h in hist] == [3 * (e + 1) for e in range(EPOCHS)]
    assert {h["evaluator"] for h in hist} == {"ToyEvaluator"}
    assert len(res["visited"]) == 3 * EPOCHS
    assert res["predicted"]["latency_ms"] == pytest.approx(
        min(v["predicted_ms"] for v in res["visited"]))
    cfg = json.loads((d / "config.json").read_text())
    assert cfg["toy_option"] == 3 and cfg["evaluate"] == "toyeval"


def test_out_of_range_option_is_one_line_and_writes_nothing(plugin, tmp_path):
    _, lut, _ = plugin
    out = tmp_path / "OUT"
    r = nasbench(plugin, *run_args(out, lut, "--toy-option", "0"), cwd=tmp_path)
    assert r.returncode == 2, r.stderr[-3000:]
    line = one_line(r.stderr)
    assert "--toy-option" in line and "at least 1" in line
    assert not out.exists()


def test_option_given_to_another_method_names_its_method(plugin, tmp_path):
    out = tmp_path / "OUT"
    r = nasbench(plugin, "search", "--method", "darts", "--toy-option", "3", "--out",
                 str(out), cwd=tmp_path)
    assert r.returncode == 2, r.stderr[-3000:]
    line = one_line(r.stderr)
    assert "--toy-option" in line and "--method toy" in line
    assert not out.exists()
