"""A process for tests/test_storage.py: registers ``--evaluate slowtable`` (the
NAS-Bench-201 table, ``NASBENCH_TEST_EVAL_DELAY`` seconds per evaluation: a stand-in for
training, so several processes overlap), then either runs a search from a config JSON
(``search CONFIG_JSON``) or the ``nasbench`` command line (``cli ARGS...``)."""

from __future__ import annotations

import json
import os
import sys
import time

from nasbench.searchers.evaluate import EVALUATORS, TableEvaluator, register_evaluator


class SlowTable(TableEvaluator):
    """The table evaluator, slowed down by ``NASBENCH_TEST_EVAL_DELAY`` seconds (0.1)
    per evaluation."""

    def __call__(self, arch) -> dict:
        time.sleep(float(os.environ.get("NASBENCH_TEST_EVAL_DELAY", "0.1")))
        return super().__call__(arch)


if "slowtable" not in EVALUATORS:        # imported by the tests and run as a script
    register_evaluator("slowtable")(SlowTable)


def main(argv: list[str]) -> int:
    """Runs ``search CONFIG_JSON`` or ``cli ARGS...``; returns the exit status."""
    if argv[0] == "search":
        from nasbench.run.runner import run_search
        from nasbench.searchers import TrialConfig
        res = run_search(TrialConfig.from_dict(json.loads(argv[1])), quiet=True)
        return 0 if res.status == "complete" else 130
    from nasbench.cli import main as cli
    return cli(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
