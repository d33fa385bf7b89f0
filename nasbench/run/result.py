"""What a run produced (:class:`SearchResult`, the content of ``result.json``) and its
one-screen summary.

``result.json`` is method-agnostic: every searcher fills the same fields, with the
space's architecture JSON as ``genotype`` and the candidates in the form reports read
(:mod:`nasbench.candidates`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from nasbench.candidates import arch_dict, candidate, score_text
from nasbench.spaces.base import Arch

RESULT_SCHEMA = 1


@dataclass
class SearchResult:
    """What a search produced. Units: accuracy as a fraction, latency in ms, energy in J
    per forward, memory in bytes, MACs per forward (multiply-accumulates), seconds."""

    run_dir: Path
    method: str
    status: str                          # "complete" | "interrupted" | "worker" (a
    #                                      torchrun rank > 0: the search phase only)
    genotype: object = None              # the space's architecture value
    derived_genotype: object = None      # before any hard-target repair
    test_acc: float | None = None
    test_loss: float | None = None
    test_n: int | None = None            # test images (the interval's n)
    predicted: dict = field(default_factory=dict)   # LUT cost of the deploy network
    expected: dict = field(default_factory=dict)    # E[cost] under the final alphas
    target: dict | None = None
    measured: dict | None = None
    params: dict = field(default_factory=dict)
    macs: dict = field(default_factory=dict)
    durations_s: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    deploy: dict = field(default_factory=dict)
    trained_network: dict = field(default_factory=dict)
    lut: dict = field(default_factory=dict)
    dataset: dict = field(default_factory=dict)
    epochs_done: int = 0
    references: list = field(default_factory=list)  # candidate records (role reference)
    started: str = ""
    finished: str = ""
    headline: str = ""                   # the method in words ("darts (first order)")
    space: str = ""
    visited: list = field(default_factory=list)   # what the searcher evaluated
    #: multi-trial --measure-top: the Pareto finalists' candidate records (role
    #: "finalist": search accuracy, predicted and measured or table latency)
    finalists: list = field(default_factory=list)
    table: dict | None = None            # nb201 with a benchmark dir: the cell's table row
    #: what makes figures of this run doubtful (a LUT measured under load, a machine
    #: slower than at profile time...), one line each; shown in the summary and report
    warnings: list = field(default_factory=list)

    @property
    def arch(self) -> Arch | None:
        """Returns the handle of the final architecture (None before it exists)."""
        return None if self.genotype is None else Arch.of(self.genotype, self.space or None)

    def derived_candidate(self) -> dict | None:
        """Returns the candidate record of the derived network (None before it exists)."""
        if self.genotype is None:
            return None
        tn = self.trained_network or {}
        return candidate(f"{self.method} (derived)", "derived", arch=self.arch,
                         test_acc=self.test_acc, predicted=self.predicted,
                         measured=self.measured, params=self.params, macs=self.macs,
                         train={"epochs": tn.get("epochs"), "steps": tn.get("steps")},
                         test_n=self.test_n, classes=(self.dataset or {}).get("classes")
                         if isinstance(self.dataset, dict) else None)

    def to_dict(self) -> dict:
        """Returns the JSON-ready result (the content of result.json): every field, plus
        ``candidates`` (the derived network and the reference networks, in the form
        reports read, see :mod:`nasbench.candidates`), ``run_id``, ``objective``,
        ``device`` and ``versions``."""
        d = asdict(self)
        d["schema"] = RESULT_SCHEMA
        d["run_dir"] = str(self.run_dir)
        d["run_id"] = Path(self.run_dir).name
        d["genotype"] = arch_dict(self.genotype, self.space or None)
        d["derived_genotype"] = arch_dict(self.derived_genotype, self.space or None)
        d["objective"] = self.config.get("objective")
        d["dataset"] = self.dataset.get("name") if isinstance(self.dataset, dict) else \
            self.dataset
        d["dataset_info"] = self.dataset
        dev = (self.measured or {}).get("device") or {}
        d["device"] = {"name": dev.get("name") or self.lut.get("device"),
                       "spec": self.config.get("device"), **dev}
        d["versions"] = _versions()
        if self.target:
            d["target"] = {**self.target, "metric": "latency",
                           "value": self.target.get("target_ms"), "unit": "ms"}
        d["candidates"] = ([c] if (c := self.derived_candidate()) else []) + \
            list(self.references) + list(self.finalists)
        return d


def _versions() -> dict:
    import platform
    out = {"python": platform.python_version(), "torch": torch.__version__}
    for mod in ("torchvision", "numpy", "pyopencl", "thop", "ptflops"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001 - absent or without a version: not recorded
            pass
    try:
        from importlib.metadata import version
        out["nasbench"] = version("nasbench")
    except Exception:  # noqa: BLE001
        pass
    return out


def load_result(run_dir: str | Path) -> dict:
    """Returns the parsed result.json of a run directory."""
    return json.loads((Path(run_dir) / "result.json").read_text())


def summary_lines(r: SearchResult) -> list[str]:
    """Returns the one-screen summary of a result, as lines."""
    cfg = r.config
    lines = [f"run: {r.run_dir}  [{r.status}]",
             f"method {r.headline or r.method}, objective {cfg.get('objective')},"
             f" preset {cfg.get('preset')}, dataset {cfg.get('dataset')}"]
    if r.genotype is not None:
        lines.append(f"architecture: {r.arch.summary()}")
    if r.test_acc is not None:
        tn = r.trained_network
        c = r.derived_candidate() or {}
        ci = c.get("accuracy_ci")
        lines.append(f"test accuracy {100 * r.test_acc:.2f} %"
                     + (f" (95 % CI {ci[0]:.1f}-{ci[1]:.1f} %, {c['accuracy_n']} images)"
                        if ci else "")
                     + (f" - NOT distinguishable from chance ({c['chance']:.0f} %)"
                        if c.get("at_chance") else "")
                     + f"; derived network retrained {tn.get('size', '')}"
                     f"{tn.get('epochs')} epoch(s), {tn.get('steps')} steps")
        for ref in r.references:
            if ref.get("accuracy") is None:
                continue
            rci = ref.get("accuracy_ci")
            lines.append(f"  reference {ref['name']}: {ref['accuracy']:.2f} %"
                         + (f" (95 % CI {rci[0]:.1f}-{rci[1]:.1f} %)" if rci else "")
                         + (" - not distinguishable from chance" if ref.get("at_chance")
                            else ""))
    p = r.predicted
    if p.get("latency_ms") is not None:
        lines.append(f"deploy network ({r.deploy.get('text', '')}, batch "
                     f"{r.deploy.get('batch')}): LUT latency {p['latency_ms']:.3f} ms"
                     + (f", energy {p['energy_j']:.4g} J" if p.get("energy_j") else ""))
    if r.table:
        t = r.table
        lines.append(f"NAS-Bench-201 index {t['index']}: 12-epoch {t['dataset']} test "
                     f"accuracy {t['test_acc']:.2f} % (validation {t['val_acc']:.2f} %)"
                     + (f", 200-epoch validation {t['val_acc_200']:.2f} %"
                        if t.get("val_acc_200") is not None else ""))
    if r.measured and (r.measured.get("latency_ms") or {}).get("median") is not None:
        lines.append(("table" if r.measured.get("source") else "measured")
                     + f" latency {r.measured['latency_ms']['median']:.3f} ms (median)"
                     + (f", {r.measured['latency_corrected_ms']:.3f} ms in the LUT's time "
                        f"base (drift anchor)" if "latency_corrected_ms" in r.measured else ""))
    for f in r.finalists:
        lat = f["latency_ms"]
        got = (lat["measured"] or {}).get("median")
        lines.append(f"  {f['name']} ({f['genotype_summary']}): "
                     f"{score_text(f['accuracy'], f['accuracy_kind'])} "
                     f"({f['accuracy_kind']}); latency predicted "
                     + (f"{lat['predicted']:.3f}" if lat["predicted"] is not None else "n/a")
                     + f" ms, {'table' if f['latency_source'] == 'table' else 'measured'} "
                     + (f"{got:.3f} ms" if got is not None else "n/a"))
    if r.target:
        lines.append(("hard target: " if r.target["hard"] else "target: ") + r.target["message"])
    if r.params:
        lines.append(f"params {r.params.get('torch'):,}; MACs thop {r.macs.get('thop')}, "
                     f"ptflops {r.macs.get('ptflops')}, conv+linear {r.macs.get('conv_linear')}")
    if r.durations_s:
        lines.append("time: " + ", ".join(f"{k} {v:.0f} s" for k, v in r.durations_s.items()))
    lines += [f"warning: {w}" for w in r.warnings]
    lines.append("settings: " + ", ".join(f"{k}={v}" for k, v in cfg.items()))
    return lines
