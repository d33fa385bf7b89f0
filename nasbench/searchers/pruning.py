"""``--pruner``: early stopping of ``--evaluate train`` candidates with Optuna's pruners.

The train evaluator (:mod:`.train_eval`) measures a candidate's held-out validation
accuracy (%) after each training epoch but the last and hands it to a reporter
(:func:`reporter`), which records it as the trial's intermediate value at step
``epoch`` (1-based) and stops the candidate (``optuna.TrialPruned``) when the study's
pruner (:func:`make_pruner`) judges it poor. Optuna's pruners serve single-objective
studies only: a multi-objective search refuses ``--pruner``
(:meth:`~nasbench.searchers.trials_config.TrialConfig.check`).

Light at import (the config reads :data:`PRUNERS` for ``--help``): optuna is imported
inside the functions.
"""

from __future__ import annotations

from collections.abc import Callable

#: the ``--pruner`` names: none (train every candidate fully), median, halving
#: (successive halving), hyperband
PRUNERS = ("none", "median", "halving", "hyperband")


def make_pruner(cfg):
    """Returns the ``optuna.pruners.BasePruner`` of ``cfg.pruner`` (``cfg.train_epochs``
    bounds Hyperband's resource): ``NopPruner`` for none (or ""), ``MedianPruner``,
    ``SuccessiveHalvingPruner`` or ``HyperbandPruner``; raises ValueError for another
    name (the config refuses it first)."""
    import optuna
    name = cfg.pruner or "none"
    if name == "none":
        return optuna.pruners.NopPruner()
    if name == "median":
        # Small budgets: the median of fewer than 5 learning curves is noise, so nothing
        # is stopped before 5 trials have completed, and a step is judged only when 5
        # completed trials reported it (n_min_trials: a candidate answered from the
        # cache completes without a curve, and must not leave a median of one). Epochs
        # are 1-based steps and a step below n_warmup_steps is never judged: 2 spares the
        # first epoch, whose accuracy (at the schedule's peak learning rate, just off the
        # initialisation) ranks candidates worst.
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2,
                                           n_min_trials=5)
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1,
                                              max_resource=max(1, cfg.train_epochs),
                                              reduction_factor=3)
    raise ValueError(f"unknown pruner {name!r}: one of {', '.join(PRUNERS)}")


def reporter(trial) -> Callable[[int, float], None]:
    """Returns ``report(epoch, accuracy)`` for an Optuna ``trial``: it records
    ``accuracy`` (held-out %, 0-100) as the trial's intermediate value at step ``epoch``
    (1-based) and raises ``optuna.TrialPruned`` when the study's pruner says stop;
    otherwise it returns None."""
    import optuna

    def report(epoch: int, accuracy: float) -> None:
        trial.report(float(accuracy), int(epoch))
        if trial.should_prune():
            raise optuna.TrialPruned(f"stopped after epoch {epoch}: held-out accuracy "
                                     f"{accuracy:.2f} %")

    return report
