"""``nasbench proxy``: score sampled cells of a space with zero-cost proxies on your
images and, with NAS-Bench-201's tables, measure how well each proxy ranks them
(:mod:`nasbench.diagnostics.proxy_study`)."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

import typer

from nasbench.cli.app import JsonOut, Quiet
from nasbench.errors import UserError, ensure_writable


def _dataset(dataset: str | None, data_dir: str | None) -> str:
    """Returns the data set to load: as given, else cifar10 for a folder holding
    cifar-10-batches-py, folder for any other --data-dir, digits without one."""
    if dataset:
        return dataset
    if not data_dir:
        return "digits"
    from nasbench.data import find_cifar_dir
    return "cifar10" if find_cifar_dir(data_dir) is not None else "folder"


def _fmt(c: dict | None, key: str, ci: bool = True) -> str:
    if not c or c.get(key) is None:
        return "n/a"
    lo, hi = c[f"{key}_ci95"]
    return f"{c[key]:.3f}" + (f" ({lo:.2f}-{hi:.2f})" if ci and lo is not None else "")


def proxy(
    space: str = typer.Option("nb201", help="The search space whose cells are scored."),
    sample: int = typer.Option(100, help="Distinct cells sampled uniformly (cells whose "
                               "output ignores the input are scored as the worst)."),
    seed: int = typer.Option(0, help="Seed of the sample."),
    dataset: str | None = typer.Option(None, help="cifar10, digits, synthetic or folder "
                                          "(default: cifar10 or folder from --data-dir, "
                                          "else digits)."),
    data_dir: str | None = typer.Option(None, help="Your images: a cifar-10-batches-py "
                                           "folder, or a folder of class folders."),
    input_size: int = typer.Option(32, "--input", help="Input height = width the images "
                                   "are resized to and the network is built at."),
    proxy_text: str = typer.Option("all", "--proxy", help="Comma-separated proxies and "
                                   "aggregates (a+b+c), or all: every proxy and the "
                                   "default aggregate."),
    zc_batch: int = typer.Option(64, help="Training images in the minibatch."),
    zc_seed: int = typer.Option(0, help="Seed of the initialisation and the minibatch."),
    benchmark_dir: Path | None = typer.Option(None, "--benchmark-dir",  # noqa: UP007
                                              help="NAS-Bench-201's tables: also rank "
                                              "correlations with every accuracy they "
                                              "hold (--space nb201)."),
    table_dataset: str = typer.Option("cifar10", help="The tables' data set to "
                                      "correlate with."),
    sample_table: bool = typer.Option(False, help="With --benchmark-dir: draw the sample "
                                      "from the cells that have a 200-epoch validation "
                                      "accuracy (9,445 on CIFAR-10)."),
    boot: int = typer.Option(1000, help="Bootstrap resamples of each interval."),
    threads: int | None = typer.Option(None, help="Torch CPU threads."),
    torch_device: str = typer.Option("cpu", help="The torch device the networks run on "
                                     "(cpu, cuda, cuda:1...)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write one row per cell "
                                       "here (CSV: arch, valid, one column per score)."),
    quiet: Quiet = False,
    json_out: JsonOut = False,
):
    """Score N sampled cells of a space with zero-cost proxies on your images (one
    minibatch, untrained networks), and with --benchmark-dir how well each proxy ranks
    them: Spearman and Kendall with bootstrap intervals, and cells per second."""
    import time

    from nasbench.diagnostics.proxy_study import (
        PUBLISHED,
        PUBLISHED_SOURCE,
        columns,
        correlate,
        sample_cells,
        table_pool,
    )
    from nasbench.spaces import get_space
    cols = columns(proxy_text)
    if boot < 0:
        raise UserError(f"--boot must be >= 0, got {boot}")
    if input_size < 8:
        raise UserError(f"--input must be at least 8 pixels, got {input_size}")
    if zc_batch < 2:
        raise UserError(f"--zc-batch must be at least 2 images, got {zc_batch}")
    if threads is not None and threads < 1:
        raise UserError(f"--threads must be positive, got {threads}")
    if out is not None:
        ensure_writable(out, "--out")
    cls = get_space(space)
    bench = None
    if benchmark_dir is not None:
        if space != "nb201":
            raise UserError(f"--benchmark-dir correlates with NAS-Bench-201's tables: use "
                            f"--space nb201, not {space!r}")
        from nasbench.benchmarks.nb201 import NB201Bench, check_dataset
        check_dataset(table_dataset)
        bench = NB201Bench(benchmark_dir)
    import torch

    from nasbench.data import load_dataset
    from nasbench.proxies.scorer import ProxyScorer
    try:
        dev = torch.device(torch_device)
    except RuntimeError:
        raise UserError(f"--torch-device {torch_device!r} is not a torch device") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserError("--torch-device cuda: torch sees no CUDA device here")
    if threads:
        torch.set_num_threads(threads)
    data = load_dataset(_dataset(dataset, data_dir), data_dir, False, input_size)
    deploy = cls.deploy_from_options(input_size=input_size, num_classes=data.num_classes)
    if hasattr(deploy, "in_channels"):
        import dataclasses
        deploy = dataclasses.replace(deploy, in_channels=data.in_channels)
    sp = cls(deploy)
    if sample_table and bench is None:
        raise UserError("--sample-table draws from NAS-Bench-201's table: give "
                        "--benchmark-dir")
    cells = sample_cells(sp, sample, seed,
                         table_pool(bench, table_dataset) if sample_table else None)
    scorer = ProxyScorer(sp, data, batch=zc_batch, seed=zc_seed, device=str(dev))
    from nasbench.diagnostics.proxy_study import score_cells
    from nasbench.progress import progress_bar
    t0 = time.time()
    with progress_bar(f"scoring {len(cells)} {space} cells", quiet or json_out) as cb:
        rows = score_cells(scorer, cells, cols,
                           lambda i, rate: cb(i, len(cells), f"{rate:.2f} cells/s"))
    wall = time.time() - t0
    speed = {"cells": len(cells), "computed": scorer.computed,
             "cached": scorer.cache_hits, "wall_s": wall,
             "compute_s": scorer.seconds,
             "cells_per_s": (scorer.computed / scorer.seconds if scorer.seconds else None),
             "threads": torch.get_num_threads(), "device": str(dev)}
    result = {"space": space, "sample": sample, "seed": seed, "columns": cols,
              "scorer": scorer.describe(), "speed": speed,
              "degenerate": sum(not r["valid"] for r in rows)}
    if bench is not None:
        result["correlations"] = correlate(rows, cols, bench, table_dataset, boot=boot)
        result["published"] = {"source": PUBLISHED_SOURCE,
                               "spearman_val_200": {k: v[0] for k, v in PUBLISHED.items()},
                               "kendall_val_200": {k: v[1] for k, v in PUBLISHED.items()},
                               "spearman_val_12": {k: v[2] for k, v in PUBLISHED.items()}}
    if out is not None:
        from profilers.lut import atomic_write_text
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["arch", "valid", *cols])
        for r in rows:
            w.writerow([r["arch"], int(r["valid"]), *(repr(float(r[c])) for c in cols)])
        atomic_write_text(out, buf.getvalue())
        result["out"] = str(out)
    if json_out:
        sys.stdout.write(json.dumps(result, indent=1, default=str) + "\n")
        return
    _print(result, cols)


def _print(result: dict, cols: list[str]) -> None:
    from rich.table import Table

    from nasbench.cli.app import out as console
    sp = result["speed"]
    rate = f"{sp['cells_per_s']:.2f} cells/s" if sp["cells_per_s"] else "all cached"
    console.print(f"{sp['cells']} cells scored in {sp['wall_s']:.1f} s ({sp['computed']} "
                  f"computed at {rate} on {sp['device']}, {sp['threads']} thread(s); "
                  f"{sp['cached']} from the cache); {result['degenerate']} degenerate "
                  f"(output ignores the input)", highlight=False)
    if "correlations" in result:
        corr = result["correlations"]
        fids = sorted(next(iter(corr.values())).keys(), key=lambda f: "val_200" not in f)
        best = fids[0]
        t = Table(title=f"rank correlation with the tables' accuracy over the valid cells "
                        f"(95 % bootstrap interval), n = {corr[cols[0]][best]['n']} for "
                        f"{best}", title_justify="left")
        t.add_column("score")
        t.add_column(f"Spearman {best}")
        t.add_column(f"Kendall {best}")
        for f in fids[1:]:
            t.add_column(f"Spearman {f}")
        t.add_column("NASLib's Spearman val_200")
        pub = result["published"]["spearman_val_200"]
        for c in cols:
            t.add_row(c, _fmt(corr[c][best], "spearman"), _fmt(corr[c][best], "kendall"),
                      *(_fmt(corr[c][f], "spearman", False) for f in fids[1:]),
                      f"{pub[c]:.3f}" if c in pub else "n/a")
        console.print(t)
    if "out" in result:
        console.print(f"wrote {result['out']}", highlight=False)
