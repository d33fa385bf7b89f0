"""Genotypes: the discrete architecture a DARTS-space search derives.

``Genotype`` has the DARTS code's fields: ``normal`` and ``reduce`` are lists of
``(op_name, input_index)`` pairs, two per intermediate node, and ``*_concat`` lists the
states concatenated into the cell output.
"""

from __future__ import annotations

import json
from collections import namedtuple
from pathlib import Path

from nasbench.ops import OPS

Genotype = namedtuple("Genotype", "normal normal_concat reduce reduce_concat")


def genotype_to_dict(g: Genotype) -> dict:
    """Returns a JSON-ready dict of the genotype."""
    return {
        "normal": [[op, int(i)] for op, i in g.normal],
        "normal_concat": [int(i) for i in g.normal_concat],
        "reduce": [[op, int(i)] for op, i in g.reduce],
        "reduce_concat": [int(i) for i in g.reduce_concat],
    }


def genotype_from_dict(d: dict) -> Genotype:
    """Returns the Genotype of a dict made by :func:`genotype_to_dict`; validates it."""
    try:
        g = Genotype(
            normal=[(str(op), int(i)) for op, i in d["normal"]],
            normal_concat=[int(i) for i in d["normal_concat"]],
            reduce=[(str(op), int(i)) for op, i in d["reduce"]],
            reduce_concat=[int(i) for i in d["reduce_concat"]],
        )
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"not a genotype: {e}") from None
    validate_genotype(g)
    return g


def validate_genotype(g: Genotype) -> None:
    """Raises ValueError when ``g`` names unknown ops or impossible inputs."""
    for cell in ("normal", "reduce"):
        edges = getattr(g, cell)
        if len(edges) % 2:
            raise ValueError(f"{cell} cell needs two inputs per node, got {len(edges)} edges")
        for k, (op, idx) in enumerate(edges):
            if op not in OPS or OPS[op].kind != "primitive":
                raise ValueError(f"{cell} cell: unknown operation {op!r}")
            node = k // 2
            if not 0 <= idx < node + 2:
                raise ValueError(f"{cell} cell: node {node} cannot read state {idx}")
        steps = len(edges) // 2
        for i in getattr(g, cell + "_concat"):
            if not 0 <= i < steps + 2:
                raise ValueError(f"{cell}_concat: state {i} does not exist")


def genotype_to_json(g: Genotype) -> str:
    """Returns the genotype as a JSON string."""
    return json.dumps(genotype_to_dict(g))


def genotype_from_json(text: str) -> Genotype:
    """Returns the Genotype encoded in a JSON string."""
    return genotype_from_dict(json.loads(text))


def load_genotype(spec: str) -> Genotype:
    """Returns a named genotype (``DARTS_V2``...) or the one in a JSON file."""
    if spec.upper() in NAMED:
        return NAMED[spec.upper()]
    p = Path(spec)
    if not p.is_file():
        raise ValueError(f"no genotype named {spec!r} and no such file "
                         f"(named ones: {', '.join(NAMED)})")
    data = json.loads(p.read_text())
    return genotype_from_dict(data.get("genotype", data))


def summarize(g: Genotype) -> str:
    """Returns a one-line human summary: op counts of the normal and reduction cells."""
    def count(edges):
        c: dict[str, int] = {}
        for op, _ in edges:
            c[op] = c.get(op, 0) + 1
        return ", ".join(f"{n}x{op}" for op, n in sorted(c.items(), key=lambda t: -t[1]))
    return f"normal: {count(g.normal)} | reduce: {count(g.reduce)}"


# Published genotypes (DARTS paper code, and PC-DARTS paper code).
DARTS_V1 = Genotype(
    normal=[("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 0), ("sep_conv_3x3", 1),
            ("skip_connect", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 2)],
    normal_concat=[2, 3, 4, 5],
    reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 0),
            ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("avg_pool_3x3", 0)],
    reduce_concat=[2, 3, 4, 5],
)
DARTS_V2 = Genotype(
    normal=[("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2)],
    normal_concat=[2, 3, 4, 5],
    reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1),
            ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1)],
    reduce_concat=[2, 3, 4, 5],
)
PC_DARTS = Genotype(
    normal=[("sep_conv_3x3", 1), ("skip_connect", 0), ("sep_conv_3x3", 0), ("dil_conv_3x3", 1),
            ("sep_conv_5x5", 0), ("sep_conv_3x3", 1), ("avg_pool_3x3", 0), ("dil_conv_3x3", 1)],
    normal_concat=[2, 3, 4, 5],
    reduce=[("sep_conv_5x5", 1), ("max_pool_3x3", 0), ("sep_conv_5x5", 1), ("sep_conv_5x5", 2),
            ("sep_conv_3x3", 0), ("sep_conv_3x3", 3), ("sep_conv_3x3", 1), ("sep_conv_3x3", 2)],
    reduce_concat=[2, 3, 4, 5],
)
DARTS = DARTS_V2
NAMED = {"DARTS_V1": DARTS_V1, "DARTS_V2": DARTS_V2, "PC_DARTS": PC_DARTS}
