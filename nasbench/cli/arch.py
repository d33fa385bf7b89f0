"""``nasbench arch --space S ARCH``: how big and how fast is one architecture?"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from nasbench.cli.app import BenchmarkDir, JsonOut
from nasbench.errors import UserError
from profilers.lut import LUT


def arch(
    architecture: str = typer.Argument(..., metavar="ARCH",
                                       help="nb201: a NAS-Bench-201 string or index; "
                                            "darts: DARTS_V2, PC_DARTS... or a genotype "
                                            "JSON (file); proxyless: comma-separated "
                                            "block ops or JSON."),
    space: str = typer.Option("darts", help="Search space (a registered one)."),
    lut: Path | None = typer.Option(None, help="LUT of a device: predicted latency, "
                                       "energy and memory (its deploy network is used)."),
    benchmark_dir: BenchmarkDir = None,
    dataset: str = typer.Option("cifar10", help="nb201 tables: cifar10, cifar100 or "
                                "ImageNet16-120."),
    json_out: JsonOut = False,
):
    """Describe one architecture: parameters, MACs (thop, ptflops), the LUT's predicted
    cost, the benchmark's values, and the cell drawn."""
    from nasbench.benchmarks import hwnas as _hwnas  # noqa: F401 - registers table priors
    from nasbench.predict.predictor import predict_costs
    from nasbench.run.measure import count_complexity
    from nasbench.spaces import get_space
    cls = get_space(space)
    bench = None
    if benchmark_dir is not None:
        if space != "nb201":
            raise UserError("--benchmark-dir holds NAS-Bench-201 tables: use --space nb201")
        from nasbench.benchmarks import NB201Bench
        from nasbench.benchmarks.nb201 import check_dataset
        check_dataset(dataset)                # before any work
        bench = NB201Bench(benchmark_dir)
    lut_obj = LUT.load(lut) if lut is not None else None
    if lut_obj is not None:
        from nasbench.cli.lut import check_lut_space
        check_lut_space(lut_obj, space)
        deploy = cls.deploy_from_lut(lut_obj)
    else:
        deploy = cls.default_deploy()
    sp = cls(deploy)
    text = architecture.strip()
    try:
        if space == "nb201" and text.isdigit():
            if bench is None:
                raise UserError("an index needs the tables: pass --benchmark-dir")
            a = bench.arch(int(text))
        else:
            a = cls.parse_arch(text)
        sp.instances(a)                       # checks the architecture fits the network
    except (ValueError, KeyError) as e:
        raise UserError(f"{space} architecture {architecture!r}: {e}") from None
    params, macs = count_complexity(sp.build(a), deploy)
    out = {"space": space, "arch": sp.arch_to_dict(a), "id": sp.arch_id(a),
           "summary": sp.summary(a), "deploy": sp.describe(),
           "params": params, "macs": macs}
    if lut_obj is not None:
        out["predicted"] = predict_costs(sp, lut_obj, a)
        out["lut"] = {"path": str(lut), "device": lut_obj.device_name}
    # peak memory from the buffer schedule: on the LUT's device, else this CPU
    from nasbench.predict.memory import MemoryPlanner
    mem_device = ((lut_obj.provenance.get("device") or {}).get("spec") or "cpu") \
        if lut_obj is not None else "cpu"
    try:
        planner = MemoryPlanner(sp, mem_device)
        out["memory"] = {**planner.plan(a).to_dict(), "device": mem_device,
                         "note": planner.note}
    except UserError:                          # a table device: no memory to plan
        pass
    if bench is not None:
        out["benchmark"] = bench.lookup(a, dataset)
    if json_out:
        print(json.dumps(out, indent=1, default=str))
        return
    from rich.console import Console
    console = Console()                           # stdout: this is the command's output
    console.print(f"[bold]{space}[/] {out['summary']}  [dim](id {out['id']})[/]",
                  highlight=False)
    for line in sp.draw(a):
        console.print("  " + line, highlight=False, markup=False)
    console.print(f"deploy network {sp.deploy_text()}, batch {deploy.batches[0]}: "
                  f"{params['torch']:,} parameters; MACs thop {macs.get('thop')}, "
                  f"ptflops {macs.get('ptflops')}, conv+linear {macs['conv_linear']}",
                  highlight=False)
    p = out.get("predicted")
    if p:
        sd = p.get("latency_sd_ms")
        parts = [f"latency {p['latency_ms']:.3f}" + (f" ± {sd:.3f}" if sd else "") + " ms"
                 if p["latency_ms"] is not None else "latency -"]
        if p.get("energy_j") is not None:
            parts.append(f"energy {p['energy_j']:.4g} J")
        if p.get("memory_bytes") is not None:
            parts.append(f"sum of op memory peaks {p['memory_bytes'] / 2**20:.1f} MiB")
        console.print(f"predicted on {out['lut']['device']}: " + ", ".join(parts)
                      + f" [dim]({p['source']})[/]", highlight=False)
    mem = out.get("memory")
    if mem:
        console.print(f"peak memory on {mem['device']} (buffer plan, {mem['model']} "
                      f"allocator): {mem['peak'] / 2**20:.2f} MiB = activations "
                      f"{mem['activation_peak'] / 2**20:.2f} MiB (at {mem['at']}) + "
                      f"weights {mem['weights'] / 2**20:.2f} MiB"
                      + (f" [dim]({mem['note']})[/]" if mem.get("note") else ""),
                      highlight=False)
    b = out.get("benchmark")
    if b:
        console.print(f"NAS-Bench-201 #{b['index']} on {dataset}: 12-epoch accuracy "
                      f"val {b['val_acc']:.2f} % / test {b['test_acc']:.2f} %"
                      + (f", 200-epoch val {b['val_acc_200']:.2f} %"
                         if b.get("val_acc_200") is not None else ""), highlight=False)
        unit = {"ms": "ms", "mj": "mJ"}
        hw = ", ".join(f"{k.split('_')[0]} {k.split('_')[1]} {v:.3g} "
                       f"{unit[k.rsplit('_', 1)[1]]}"
                       for k, v in b.items() if k.endswith(("_ms", "_mj")) and v is not None)
        console.print(f"HW-NAS-Bench (measured): {hw}", highlight=False)
