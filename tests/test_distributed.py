"""Data-parallel one-shot search under the real torchrun (2 CPU processes, gloo) against
one process with the same global batch (nasbench.distributed).

With ``--sync-bn`` (BatchNorm statistics of the whole batch) a data-parallel run is the
same computation as one process up to floating-point rounding: the supernet's weights
and alphas must agree within TOL after a few steps (measured: ~1e-7). Without it each
rank normalises with its own slice's statistics, so the run is another (valid) search:
only the ranks' agreement is asserted, and the gap to one process is printed. In both
modes the runner checks after every epoch that the ranks' weights and alphas are
bit-identical (sha256 of their bytes) and logs it.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nasbench import distributed
from nasbench.cli import main
from nasbench.errors import UserError
from tests.test_proxyless_runner import config as proxyless_config
from tests.test_runner import config, fake_measure  # noqa: F401 - a fixture

#: weights and alphas of a 2-process --sync-bn run vs one process (float32 rounding)
TOL = 1e-5
AGREE = "bit-identical on all 2 processes"

DARTS_ARGS = ["--dataset", "synthetic", "--input", "8", "--channels", "4", "--layers", "3",
              "--eval-channels", "4", "--eval-layers", "3", "--batch-size", "8",
              "--threads", "1", "--seed", "3", "--references", "none", "--train-epochs",
              "0", "--quiet"]


def _torchrun() -> str:
    exe = Path(sys.executable).with_name("torchrun")
    return str(exe) if exe.is_file() else (shutil.which("torchrun") or "")


def _run_dirs(out: Path) -> list[Path]:
    return sorted(p for p in out.iterdir() if p.is_dir()) if out.exists() else []


def torchrun_search(tmp_path, args, out: Path, nproc: int = 2) -> Path:
    """Runs ``torchrun --nproc-per-node nproc -m nasbench search ARGS --out OUT``; returns
    the one run directory it wrote."""
    if not _torchrun():
        pytest.skip("torchrun not found beside the interpreter")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NASBENCH_CACHE_DIR": str(tmp_path / "c")}
    cmd = [_torchrun(), "--standalone", "--nnodes", "1", "--nproc-per-node", str(nproc),
           "-m", "nasbench", "search", *args, "--out", str(out)]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600,
                       cwd=Path(__file__).parents[1])
    assert p.returncode == 0, (p.stdout + p.stderr)[-4000:]
    dirs = _run_dirs(out)
    assert len(dirs) == 1, dirs             # rank 0 alone made the run directory
    return dirs[0]


def one_process_search(args, out: Path) -> Path:
    """Runs the same search in this process; returns its run directory."""
    assert main(["search", *args, "--out", str(out)]) == 0
    (d,) = _run_dirs(out)
    return d


def max_diffs(a: Path, b: Path) -> dict:
    """Returns the largest |difference| of the supernet's weights and of its
    architecture parameters between two runs' final checkpoints."""
    sa = torch.load(a / "checkpoint.pt", weights_only=False)["model"]
    sb = torch.load(b / "checkpoint.pt", weights_only=False)["model"]
    out = {"weights": 0.0, "alphas": 0.0}
    assert sa.keys() == sb.keys()
    for k, v in sa.items():
        if not v.is_floating_point() or "running_" in k:
            continue
        kind = "alphas" if k.split(".")[-1].startswith(("alphas", "betas")) else "weights"
        d = float((v.double() - sb[k].double()).abs().max()) if v.numel() else 0.0
        out[kind] = max(out[kind], d)
    return out


def _check_pair(tmp_path, args, single: Path, ddp: Path, exact: bool) -> dict:
    log = (ddp / "search.log").read_text()
    assert AGREE in log and "data-parallel over 2 processes" in log
    assert not (single / "checkpoint.pt").samefile(ddp / "checkpoint.pt")
    diffs = max_diffs(single, ddp)
    mode = "--sync-bn" if json.loads((ddp / "config.json").read_text())["sync_bn"] \
        else "per-rank BN"
    print(f"\n{' '.join(args[:2])} {mode}: max |diff| "
          f"vs one process: weights {diffs['weights']:.3g}, alphas {diffs['alphas']:.3g}")
    ha = json.loads((single / "history.json").read_text())
    hb = json.loads((ddp / "history.json").read_text())
    assert len(ha) == len(hb)
    if exact:
        assert diffs["weights"] <= TOL and diffs["alphas"] <= TOL, diffs
        for x, y in zip(ha, hb, strict=True):     # the epoch figures: whole batches
            assert x["train_loss"] == pytest.approx(y["train_loss"], abs=1e-5)
            assert x["train_acc"] == pytest.approx(y["train_acc"])
    return diffs


def test_darts_data_parallel_matches_one_process(tmp_path, fake_measure):  # noqa: F811
    """2 processes with synchronised BatchNorm = one process with the same batch of 8."""
    cfg = config(tmp_path)                       # writes the tiny DARTS LUT
    args = ["--method", "darts", *DARTS_ARGS, "--epochs", "1", "--steps-per-epoch", "2",
            "--lut", cfg.lut]
    single = one_process_search(args, tmp_path / "one")
    ddp = torchrun_search(tmp_path, [*args, "--sync-bn"], tmp_path / "ddp")
    _check_pair(tmp_path, args, single, ddp, exact=True)
    res = json.loads((ddp / "result.json").read_text())
    assert res["status"] == "complete"
    assert res["genotype"] == json.loads((single / "result.json").read_text())["genotype"]


@pytest.mark.slow
@pytest.mark.parametrize("case", ["pcdarts-second", "darts-per-rank-bn"])
def test_data_parallel_variants(tmp_path, fake_measure, case):  # noqa: F811
    """PC-DARTS with the second-order step (its unrolled weights and Hessian-vector
    product averaged too) matches one process with --sync-bn; per-rank BatchNorm keeps
    the ranks identical but is another search (printed, loosely bounded)."""
    method = "pcdarts" if case.startswith("pcdarts") else "darts"
    cfg = config(tmp_path, method)
    args = ["--method", method, *DARTS_ARGS, "--epochs", "1", "--steps-per-epoch", "2",
            "--lut", cfg.lut] + (["--order", "second"] if "second" in case else [])
    if method == "pcdarts":
        args[args.index("--channels") + 1] = "8"
    exact = case != "darts-per-rank-bn"
    single = one_process_search(args, tmp_path / "one")
    ddp = torchrun_search(tmp_path, args + (["--sync-bn"] if exact else []),
                          tmp_path / "ddp")
    diffs = _check_pair(tmp_path, args, single, ddp, exact)
    if not exact:               # the same data and steps, other BN statistics: close-ish
        assert 0 < diffs["weights"] < 1.0 and diffs["alphas"] < 1.0, diffs


@pytest.mark.slow
def test_proxyless_data_parallel(tmp_path, fake_measure):  # noqa: F811
    """ProxylessNAS (one sampled path per weight step: DDP with unused parameters; the
    binary-gate alpha step averaged): in float64 one data-parallel step gives the single
    process's gradients, alpha gradient and REINFORCE reward to ~1e-12; a whole float32
    run keeps the ranks bit-identical and stays near one process (Adam's first steps
    move each alpha by about +-lr whatever the gradient's size, so rounding-level
    gradients can flip a step: alphas within 2 x lr x arch steps)."""
    if not _torchrun():
        pytest.skip("torchrun not found beside the interpreter")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    root = Path(__file__).parents[1]
    one, two = tmp_path / "one.pt", tmp_path / "two.pt"
    subprocess.run([sys.executable, "-m", "tests.ddp_grad_check", str(one)], env=env,
                   cwd=root, check=True, timeout=300)
    p = subprocess.run([_torchrun(), "--standalone", "--nproc-per-node", "2", "-m",
                        "tests.ddp_grad_check", str(two)], env=env, cwd=root,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, (p.stdout + p.stderr)[-3000:]
    a, b = torch.load(one), torch.load(two)
    assert a["weights"].keys() == b["weights"].keys()
    for k, g in a["weights"].items():
        assert torch.allclose(g, b["weights"][k], rtol=1e-9, atol=1e-11), k
    assert torch.allclose(a["alphas"], b["alphas"], rtol=1e-9, atol=1e-12)
    assert a["reward"] == pytest.approx(b["reward"], abs=1e-12)
    assert torch.allclose(a["after"], b["after"], atol=1e-12)
    for k, g in a["darts"]["weights"].items():        # DARTS, whole-batch BatchNorm
        assert torch.allclose(g, b["darts"]["weights"][k], rtol=1e-9, atol=1e-11), k
    for order in ("first", "second"):
        for g, h in zip(a["darts"][order], b["darts"][order], strict=True):
            assert torch.allclose(g, h, rtol=1e-9, atol=1e-11), order

    cfg = proxyless_config(tmp_path)
    args = ["--method", "proxyless", "--dataset", "synthetic", "--input", "8",
            "--width-mult", "0.25", "--warmup-epochs", "0", "--epochs", "1",
            "--steps-per-epoch", "2", "--batch-size", "8", "--threads", "1", "--seed", "3",
            "--references", "none", "--train-epochs", "0", "--quiet", "--lut", cfg.lut]
    single = one_process_search(args, tmp_path / "one")
    ddp = torchrun_search(tmp_path, [*args, "--sync-bn"], tmp_path / "ddp")
    diffs = _check_pair(tmp_path, args, single, ddp, exact=False)
    lr = json.loads((single / "config.json").read_text())["arch_learning_rate"]
    assert diffs["weights"] < 1e-2 and diffs["alphas"] <= 2 * lr * 2 + 1e-6, diffs


def test_outside_a_process_group_the_helpers_are_the_identity():
    x, y = torch.randn(5, 3), torch.arange(5)
    assert not distributed.is_distributed() and distributed.is_main()
    assert (distributed.rank(), distributed.world()) == (0, 1)
    xs, ys = distributed.shard(x, y)
    assert xs is x and ys is y
    assert distributed.global_sums(2, 3.5) == [2.0, 3.5]
    g = [torch.ones(2)]
    assert distributed.average_grads(g, 4)[0] is g[0]
    assert distributed.grad_reducer() is None
    net = torch.nn.Linear(2, 2)
    assert distributed.check_replicas(net) == distributed.state_digest(net)
    with distributed.main_first():
        pass


def test_multi_trial_methods_are_refused_under_torchrun():
    from nasbench.searchers import get_searcher
    distributed.check_searcher(get_searcher("darts"))
    distributed.check_searcher(get_searcher("proxyless"))
    with pytest.raises(UserError, match="does not run data-parallel.*darts"):
        distributed.check_searcher(get_searcher("random"))


def test_global_batchnorm_is_batchnorm_in_one_process():
    """The in-place class swap keeps the module (and its state dict); outside a
    process group the layer computes exactly what BatchNorm2d does."""
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    ref = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    ref.load_state_dict(net.state_dict())
    bn = net[1]
    distributed.sync_batchnorm(net)
    assert net[1] is bn and isinstance(bn, distributed.GlobalBatchNorm2d)
    assert net.state_dict().keys() == ref.state_dict().keys()
    x = torch.randn(4, 3, 6, 6)
    assert torch.equal(net(x), ref(x))
    assert torch.equal(bn.running_var, ref[1].running_var)
