"""Genotype JSON round trip and the DARTS reference parameter count."""

import json

import pytest

from nasbench import DARTS_V1, DARTS_V2, PC_DARTS, build_network_from_genotype
from nasbench.genotypes import (
    genotype_from_dict,
    genotype_from_json,
    genotype_to_json,
    load_genotype,
)
from nasbench.spaces.darts_network import count_parameters


@pytest.mark.parametrize("g", [DARTS_V1, DARTS_V2, PC_DARTS])
def test_json_round_trip(g, tmp_path):
    assert genotype_from_json(genotype_to_json(g)) == g
    p = tmp_path / "g.json"
    p.write_text(json.dumps({"genotype": json.loads(genotype_to_json(g))}))
    assert load_genotype(str(p)) == g


def test_bad_genotype_rejected():
    with pytest.raises(ValueError):
        genotype_from_dict({"normal": [["conv_9x9", 0]] * 2, "normal_concat": [2],
                            "reduce": [["skip_connect", 0]] * 2, "reduce_concat": [2]})


def test_darts_v2_parameter_count_matches_reference():
    net = build_network_from_genotype(DARTS_V2, C=36, num_cells=20, num_classes=10,
                                      auxiliary=False)
    assert count_parameters(net) == 3_349_342
