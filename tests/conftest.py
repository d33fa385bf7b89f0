import pytest

from nasbench.cli import main
from nasbench.options import ENV
from profilers.lut import LUT, full_key


def make_entry(op_key: str, batch: int, median: float, cv: float = 0.01, **extra) -> dict:
    """Returns a LUT entry shaped like the profiler writes them."""
    op, c, hw, s = op_key.split("/")[:4]
    c_in, c_out = (int(x) for x in c[1:].split("-"))
    h, w = (int(x) for x in hw[1:].split("w"))
    e = {"op": op, "c_in": c_in, "c_out": c_out, "h": h, "w": w, "stride": int(s[1:]),
         "batch": batch, "dtype": "float32", "op_key": op_key,
         "latency_ms": {"median": median, "mean": median, "p5": median * 0.95,
                        "p95": median * 1.05, "cv": cv, "repeats": 20},
         "noisy": False, "memory_bytes": 1000, "energy_j": None,
         "energy_reason": "no sensor (test)"}
    e.update(extra)
    return e


def make_lut(values: dict, batch: int = 1, device_id: str = "cpu:Test CPU",
             deploy: dict | None = None) -> LUT:
    """Returns a LUT with ``values`` = {op_key: median ms}."""
    prov = {"device": {"id": device_id, "name": device_id.split(":", 1)[1]},
            "backend": "torch-cpu", "threads": 1, "space": "darts",
            "deploy": deploy or {}, "batches": [batch], "dtype": "float32"}
    return LUT(prov, {full_key(k, batch): make_entry(k, batch, v) for k, v in values.items()})


@pytest.fixture
def tiny_lut():
    return make_lut({"sep_conv_3x3/c8-8/h8w8/s1": 2.0, "max_pool_3x3/c8-8/h8w8/s1": 0.5,
                     "skip_connect/c8-8/h8w8/s1": 0.01})


def snapshot(root) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.fixture
def refuse(tmp_path, monkeypatch, capsys):
    """Returns ``refuse(argv) -> the error line``: runs the CLI in an empty tmp_path
    (the cache in it) and asserts exit 2, one stderr line, no traceback, nothing new on
    disk."""
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "cache").mkdir()
    monkeypatch.setenv("NASBENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)

    def run(argv: list[str]) -> str:
        before = snapshot(tmp_path)
        capsys.readouterr()
        rc = main([str(a) for a in argv])
        err = capsys.readouterr().err
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert rc == 2, (argv, rc, err)
        assert "Traceback" not in err
        assert len(lines) == 1, (argv, err)
        assert snapshot(tmp_path) == before, argv
        return lines[0]

    return run
