"""The multi-trial methods' settings and declarations (light: no torch, no optuna, so
``nasbench search --help`` reads them at once): :class:`TrialConfig` (random, evolution,
TPE), :class:`NSGA2Config` and :class:`PNASConfig`. The algorithms: :mod:`.trials`,
:mod:`.random_search`, :mod:`.evolution`, :mod:`.tpe`, :mod:`.nsga2`, :mod:`.pnas`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from nasbench.config import RunConfig, parse_memory
from nasbench.errors import UserError
from nasbench.options import option
from nasbench.proxies import DEFAULT_BATCH, DEFAULT_PROXY, proxy_names
from nasbench.registry import EVALUATORS, declare_searcher
from nasbench.searchers.pruning import PRUNERS


@dataclass
class TrialConfig(RunConfig):
    """The multi-trial settings on top of :class:`~nasbench.config.RunConfig`:
    ``trials`` (distinct evaluations), ``trials_per_epoch`` (one history record and
    checkpoint each), the evaluator (``table``: NAS-Bench-201's accuracy at
    ``fidelity`` epochs, needs ``benchmark_dir``), the study's ``storage`` (a database
    URL; "" for the run's own SQLite file) and its heartbeat settings (seconds)."""

    KIND: ClassVar[str] = "multi-trial"

    method: str = "random"
    space: str = "nb201"
    trials: int = option(100, "Distinct architectures to evaluate.", min=1)
    trials_per_epoch: int = 25
    evaluate: str = option("table", "The evaluator: table (NAS-Bench-201's accuracy; "
                           "--space nb201 --benchmark-dir), supernet (SPOS: a single-path "
                           "supernet trained on the data), train (each candidate "
                           "trained with the --train-epochs budget; any space) or zc "
                           "(zero-cost proxies on the data at initialisation; any "
                           "space, no training).",
                           choices=lambda: EVALUATORS.names())
    fidelity: int = option(12, "--evaluate table: the accuracy the search sees, 12 or "
                           "200 epochs (CIFAR-10).", group="--evaluate table")
    # --evaluate zc (zc_eval.py): the proxy score and its minibatch
    proxy: str = option(DEFAULT_PROXY, "A proxy (" + ", ".join(proxy_names()) + ") or "
                        "an aggregate of them joined by '+'.", group="--evaluate zc")
    zc_batch: int = option(DEFAULT_BATCH, "Training images in the proxies' minibatch.",
                           min=2, group="--evaluate zc")
    zc_seed: int = option(0, "Seed of the networks' initialisation, the minibatch and "
                          "the reference cells (not the search's: the cache serves "
                          "every seed).", group="--evaluate zc")
    zc_reference: int = option(50, "Valid cells the 0-100 score is standardised on "
                               "(50: their median).", min=2, group="--evaluate zc")
    memory_target_bytes: float | None = option(
        None, "Hard peak-memory target of the deploy network (8MiB, 512KiB, 8MB or "
        "bytes): a candidate whose buffer plan on --device exceeds it is never "
        "evaluated.", flag="--memory-target", parse=lambda text: parse_memory(text), gt=0)
    population: int = option(50, "evolution, nsga2: the population.", min=1)
    sample_size: int = option(10, "evolution, nsga2: the tournament size.", min=1)
    # --evaluate train: stop poor candidates between epochs (pruning.py; single objective)
    pruner: str = option("none", "Stop poor candidates early, judged on their held-out "
                         "accuracy after each epoch: none, median, halving (successive "
                         "halving) or hyperband (Optuna's pruners; single-objective "
                         "searches).", choices=PRUNERS, group="--evaluate train")
    soft_exponent: float = -0.07          # soft target: acc x (lat/target)^w (MnasNet)
    references: str = ""
    train_epochs: int = 0
    # the study's database (storage.py): "" is the run's own SQLite RUN/study.db
    storage: str = option("", "The study's database, postgresql://USER@HOST/DB, "
                          "mysql://... or sqlite:///PATH (default: the run's own "
                          "study.db); `nasbench worker` processes on any machine join it.")
    heartbeat_s: int = 10                 # a trial in flight records a heartbeat this often
    grace_s: int = 60                     # one silent this long is failed and asked again
    # --evaluate supernet (SPOS, spos.py): the supernet's size and training budget
    supernet_epochs: int = option(3, "Epochs of single-path training.", min=1,
                                  group="--evaluate supernet")
    supernet_steps: int | None = option(20, "Cap on steps per epoch.", min=1,
                                        group="--evaluate supernet")
    supernet_channels: int = option(8, "The supernet's channels.", min=1,
                                    group="--evaluate supernet")
    supernet_layers: int | None = option(None, "Its cells (default: nb201 2 per stage, "
                                         "darts 5).", min=1, group="--evaluate supernet")
    supernet_lr: float = option(0.05, "SGD learning rate, cosine to 0.", gt=0,
                                group="--evaluate supernet")
    # after the search: measure on the device up to this many finalists (the Pareto set
    # of the visited candidates by accuracy and predicted latency); 0: none
    measure_top: int = option(5, "After the search, measure on the device up to K "
                              "finalists (the Pareto set of the visited candidates by "
                              "accuracy and predicted latency; 0: none).", min=0)

    def check(self) -> None:
        super().check()
        if not 1 <= self.sample_size <= self.population:
            raise UserError(f"--sample-size must be in 1..population ({self.population}), "
                            f"got {self.sample_size}")
        if self.trials_per_epoch < 1:
            raise UserError(f"trials_per_epoch must be positive, got {self.trials_per_epoch}")
        if not 1 <= self.heartbeat_s < self.grace_s:
            raise UserError(f"heartbeat_s ({self.heartbeat_s}) must be at least 1 and less "
                            f"than grace_s ({self.grace_s})")
        if self.memory_target_bytes is not None and str(self.device).startswith(
                "hw-nas-bench"):
            raise UserError(f"--memory-target plans memory on a device nasbench runs "
                            f"networks on (cpu, cuda, opencl); {self.device} is a table "
                            f"with no memory figures")
        if self.memory_target_bytes is not None and self.method == "mobo":
            raise UserError("--memory-target: mobo scores every candidate's cost before "
                            "each proposal (all 15,625 nb201 cells, or a fresh pool of "
                            "thousands), and a memory plan costs 0.1-0.9 s per network; "
                            "use random, evolution, tpe, bo, nsga2 or pnas")
        if self.storage:
            from nasbench.searchers.storage import check_url
            check_url(self.storage)
        if self.evaluate == "table" and self.space != "nb201":
            raise UserError("--evaluate table reads NAS-Bench-201's accuracies: use "
                            "--space nb201 (and --benchmark-dir, or `nasbench data fetch "
                            "nb201` once)")
        evaluator = EVALUATORS.get(self.evaluate)
        if hasattr(evaluator, "check_config"):   # before any work
            evaluator.check_config(self)
        self.check_pruner(evaluator)

    def is_multi_objective(self) -> bool:
        """Returns whether the method's study has several objectives (accuracy and each
        cost; Optuna's pruners then do not apply): False, a single-objective search."""
        return False

    def check_pruner(self, evaluator) -> None:
        """Raises UserError (one line) when ``--pruner`` cannot apply: an evaluator that
        does not train epoch by epoch (``prunable``), a budget of one epoch (nothing to
        stop), or a multi-objective study. An unknown name is left to the declared
        choices (one line too)."""
        if self.pruner in ("", "none") or self.pruner not in PRUNERS:
            return
        if not getattr(evaluator, "prunable", False):
            raise UserError(f"--pruner stops training early: it needs --evaluate train, "
                            f"not --evaluate {self.evaluate} (or --pruner none)")
        if self.is_multi_objective():
            raise UserError(f"--pruner serves single-objective searches: --method "
                            f"{self.method} runs a multi-objective study (accuracy and "
                            f"cost); use random, evolution, tpe, or bo/mobo with a hard "
                            f"--latency-target, or --pruner none")
        if self.method == "pnas":
            raise UserError("--pruner does not serve pnas: its predictor learns from the "
                            "stages' fully trained cells; use random, evolution or tpe, "
                            "or --pruner none")
        if self.train_epochs < 2:
            raise UserError(f"--pruner stops a candidate between epochs: give "
                            f"--train-epochs 2 or more (got {self.train_epochs}), or "
                            f"--pruner none")

    @classmethod
    def budget_values(cls, space, queries: int) -> dict:
        """Returns the settings that fit the method to a budget of ``queries`` cells on
        ``space`` (``nasbench bench``; e.g. PNAS's beam), default none."""
        return {}

    def deploy(self, num_classes: int = 10, in_channels: int = 3):
        """Returns the space's default deploy network at the run's input, classes and
        batch (nb201: NAS-Bench-201's C=16, N=5)."""
        import dataclasses

        from nasbench.spaces import get_space
        d = get_space(self.space).default_deploy()
        want = {"input_size": self.input_size or 32, "num_classes": num_classes,
                "in_channels": in_channels, "batches": (self.deploy_batch,)}
        names = {f.name for f in dataclasses.fields(d)}
        return dataclasses.replace(d, **{k: v for k, v in want.items() if k in names})

    def headline(self) -> str:
        return f"{self.method} ({self.trials} trials, {self.evaluate} evaluator)"


VARIATIONS = ("mutate", "optuna")


@dataclass
class NSGA2Config(TrialConfig):
    """NSGA-II's settings on top of the multi-trial ones: ``population`` (default 10),
    ``sample_size`` (the parents' tournament, default 2) and ``variation`` (the child
    operator: ``mutate`` or ``optuna``; see the module doc)."""

    method: str = "nsga2"
    population: int = 10
    sample_size: int = 2
    variation: str = option("mutate", "How children are made: mutate (the space's "
                            "one-decision mutation) or optuna (Optuna's uniform crossover "
                            "and resampling).", choices=VARIATIONS)

    def is_multi_objective(self) -> bool:
        """Returns True: NSGA-II's study has accuracy and each cost as objectives."""
        return True

    def check(self) -> None:
        super().check()
        if self.population < 2:
            raise UserError(f"--population must be at least 2 for nsga2, got "
                            f"{self.population}")


def planned_queries(space, beam: int) -> int:
    """Returns the most cells a PNAS search with ``beam`` evaluates on ``space`` (all
    valid 1-block cells, then at most ``beam`` per later stage)."""
    import itertools
    opts, blocks = space.choices(), space.blocks()
    sizes = [1]
    for b, blk in enumerate(blocks):
        if b == 0:              # the first stage: every valid cell of one block
            n = sum(1 for combo in itertools.product(*(opts[name] for name in blk))
                    if space.valid(space.complete(dict(zip(blk, combo, strict=True)))))
        else:
            n = 1
            for name in blk:
                n *= len(opts[name])
        sizes.append(n)
    total, kept = 0, 1
    for i, n in enumerate(sizes[1:]):
        stage = kept * n if i == 0 else min(beam, kept * n)
        total += stage
        kept = min(beam, stage)
    return total


def beam_for(space, queries: int) -> int:
    """Returns the largest beam whose PNAS search evaluates at most ``queries`` cells (at
    least 1)."""
    beam = 1
    while planned_queries(space, beam + 1) <= queries and beam < 100_000:
        beam += 1
    return beam


@dataclass
class PNASConfig(TrialConfig):
    """PNAS's settings on top of the multi-trial ones: the ``beam`` K (8 quick, 256
    paper) and the accuracy predictor's ``predictor_kind`` / ``predictor_members``.
    ``trials`` caps the cells evaluated (the search also ends when the cell is
    complete: :func:`planned_queries`)."""

    method: str = "pnas"
    beam: int = option(8, "Cells kept per stage, the beam K (paper 256).", min=1)
    predictor_kind: str = option("ensemble", "The accuracy predictor: ensemble, mlp or "
                                 "forest.")
    predictor_members: int = 5

    @classmethod
    def preset_values(cls, preset: str, method: str) -> dict:
        return {"beam": 256, "trials": 1160} if preset == "paper" else {}

    @classmethod
    def budget_values(cls, space, queries: int) -> dict:
        """Returns the beam whose search spends at most ``queries`` cells."""
        return {"beam": beam_for(space, queries)}

    def check(self) -> None:
        super().check()
        from nasbench.predict.surrogate import KINDS
        from nasbench.spaces import get_space
        space = get_space(self.space)
        space(space.default_deploy()).blocks()    # no block structure: one line, now
        if self.predictor_kind not in KINDS:
            raise UserError(f"--predictor-kind must be one of {', '.join(KINDS)}, got "
                            f"{self.predictor_kind!r}")
        if self.predictor_members < 1:
            raise UserError(f"--predictor-members must be positive, got "
                            f"{self.predictor_members}")

    def headline(self) -> str:
        return f"pnas (beam {self.beam}, {self.evaluate} evaluator)"


declare_searcher("random", config=TrialConfig,
                 impl="nasbench.searchers.random_search:RandomSearcher",
                 summary="Random search: uniform samples of the space (a multi-trial "
                         "study).")
declare_searcher("evolution", config=TrialConfig,
                 impl="nasbench.searchers.evolution:EvolutionSearcher",
                 summary="Regularized evolution (Real et al.): tournament, mutate, the "
                         "oldest dies.")
declare_searcher("tpe", config=TrialConfig, impl="nasbench.searchers.tpe:TPESearcher",
                 summary="Optuna's Tree-structured Parzen Estimator.")
declare_searcher("nsga2", config=NSGA2Config, impl="nasbench.searchers.nsga2:NSGA2Searcher",
                 summary="NSGA-II over accuracy and cost (Deb's crowded comparison).")
declare_searcher("pnas", config=PNASConfig, impl="nasbench.searchers.pnas:PNASSearcher",
                 summary="PNAS: cells grown block by block, a learnt accuracy predictor "
                         "picks the beam.")
