"""The accuracy predictor: a surrogate that ranks architectures before they are trained.

PNAS (Liu et al., ECCV 2018) ranks the cells it could train next with a learned
predictor; every multi-trial searcher can use the same one. The model is an ensemble
over the space's feature vector (:meth:`~nasbench.spaces.base.SearchSpace.features`: the
one-hot of each decision, plus what the space knows of its topology, e.g. nb201's live
paths), built from scikit-learn regressors:

* ``mlp``: ``members`` multi-layer perceptrons (two hidden layers of 64), each from its
  own seed; the PNAS paper's MLP ensemble;
* ``forest``: a random forest (its trees are the ensemble);
* ``ensemble`` (the default): the MLPs, a random forest and a gradient-boosted tree
  model together - it ranked best on NAS-Bench-201 (see the README's predictor table).

Extra features (``extra_names``, an ``extra`` array per call) join the space's: e.g.
zero-cost proxy scores, computed by the caller (a space never imports evaluators; the
prediction layer only combines the columns it is given).

Targets are standardised per fit; predictions come back in the units they were given
(accuracy, %). The uncertainty is the spread (standard deviation) of the members'
predictions, in the same units.

:func:`rank_study` measures a predictor as NAS predictor papers do: trained on ``n``
architectures sampled at random, Kendall's tau and Spearman's rho on all the rest,
repeated; and again on the *distinct* test cells: one per structural feature vector,
none sharing its vector with a training cell (on nb201 many cells share their features:
a twin of a training cell in the test set flatters the predictor).
"""

from __future__ import annotations

import pickle
import time
from pathlib import Path

import numpy as np

from nasbench.errors import UserError, read_state
from nasbench.stats import robust_scale
from profilers.lut import atomic_write_bytes

KINDS = ("ensemble", "mlp", "forest")


def _members(kind: str, members: int, seed: int) -> list:
    """Returns the unfitted regressors of an ensemble ``kind`` seeded from ``seed``."""
    from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
    from sklearn.neural_network import MLPRegressor

    mlps = [MLPRegressor(hidden_layer_sizes=(64, 64), alpha=1e-3, max_iter=2000,
                         random_state=seed * 1000 + k) for k in range(members)]
    forest = RandomForestRegressor(n_estimators=300, random_state=seed)
    if kind == "mlp":
        return mlps
    if kind == "forest":
        return [forest]
    boost = HistGradientBoostingRegressor(max_iter=300, learning_rate=0.05,
                                          min_samples_leaf=5, random_state=seed)
    return mlps + [forest, boost]


class AccuracyPredictor:
    """An ensemble surrogate of accuracy over a space's features (see the module doc).

    ``space`` is a bound :class:`~nasbench.spaces.base.SearchSpace`; ``kind`` one of
    :data:`KINDS`; ``members`` the number of MLPs; ``seed`` makes the fit repeatable."""

    def __init__(self, space, kind: str = "ensemble", members: int = 5, seed: int = 0,
                 extra_names: tuple[str, ...] = ()):
        if kind not in KINDS:
            raise UserError(f"--kind must be one of {', '.join(KINDS)}, got {kind!r}")
        if members < 1:
            raise UserError(f"--members must be positive, got {members}")
        self.space, self.kind, self.members, self.seed = space, kind, members, seed
        #: the names of the extra feature columns every call must give (e.g. proxies)
        self.extra_names = tuple(extra_names)
        #: the extra columns' robust standardisation (median, IQR / 1.349), fitted
        self.extra_centre = self.extra_scale = None
        self.models: list = []
        self.mean = self.scale = 0.0
        self.n_train = 0
        #: the stable ids of the architectures of the last fit (held apart in eval)
        self.trained_on: list[str] = []

    def featurize(self, archs, extra=None) -> np.ndarray:
        """Returns the feature matrix [architectures x features] of ``archs``: the
        space's features, then the ``extra`` columns [architectures x extra_names]."""
        x = np.asarray([self.space.features(a) for a in archs], dtype=np.float64)
        if not self.extra_names:
            return x
        e = np.asarray(extra, dtype=np.float64) if extra is not None else None
        if e is None or e.shape != (len(archs), len(self.extra_names)):
            raise UserError(f"the predictor reads {', '.join(self.extra_names)} beside "
                            f"the space's features: give those {len(self.extra_names)} "
                            f"column(s) for every architecture")
        if self.extra_centre is None:               # fitting: the training columns' scale
            self.extra_centre, self.extra_scale = robust_scale(e)
        # robust z-scores, clipped: an MLP must not see a proxy's far tail (jacob_cov's
        # reaches z of -1000) as a thousand times a one-hot feature
        z = np.clip((e - self.extra_centre) / self.extra_scale, -6.0, 6.0)
        return np.hstack([x, z])

    def fit(self, archs, accuracy, extra=None) -> AccuracyPredictor:
        """Fits the ensemble on ``archs`` (and their ``extra`` columns) and their
        accuracies (%); returns self. Needs at least 2 architectures with finite
        accuracies (others are dropped)."""
        y = np.asarray(accuracy, dtype=np.float64)
        keep = np.isfinite(y)
        self.extra_centre = self.extra_scale = None     # refitted on these columns
        if self.extra_names and extra is not None:
            extra = np.asarray(extra, dtype=np.float64)[keep]
        x = self.featurize([a for a, k in zip(archs, keep, strict=True) if k], extra)
        archs = [a for a, k in zip(archs, keep, strict=True) if k]
        y = y[keep]
        if len(y) < 2:
            raise UserError(f"the predictor needs at least 2 evaluated architectures, got "
                            f"{len(y)}")
        self.mean, self.scale = float(y.mean()), float(y.std()) or 1.0
        t = (y - self.mean) / self.scale
        import warnings

        from sklearn.exceptions import ConvergenceWarning
        self.models = _members(self.kind, self.members, self.seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            for m in self.models:
                m.fit(x, t)
        self.n_train = len(y)
        self.trained_on = [self.space.arch_id(a) for a in archs]
        return self

    def predict(self, archs, extra=None) -> tuple[np.ndarray, np.ndarray]:
        """Returns (mean, std) per architecture, in the fitted accuracy's units (%): the
        ensemble's mean prediction and its members' spread (the uncertainty)."""
        if not self.models:
            raise UserError("the predictor is not fitted")
        x = self.featurize(archs, extra)
        p = np.stack([m.predict(x) for m in self.models]) * self.scale + self.mean
        return p.mean(0), p.std(0)

    def save(self, path) -> None:
        """Writes the fitted predictor (pickle, atomically) to ``path``."""
        state = {"format": "nasbench-accuracy-predictor/1", "space": self.space.name,
                 "deploy": self.space.deploy, "kind": self.kind, "members": self.members,
                 "seed": self.seed, "models": self.models, "mean": self.mean,
                 "scale": self.scale, "n_train": self.n_train,
                 "trained_on": self.trained_on, "extra_names": list(self.extra_names),
                 "extra_centre": self.extra_centre, "extra_scale": self.extra_scale}
        atomic_write_bytes(Path(path), pickle.dumps(state))

    @classmethod
    def load(cls, path) -> AccuracyPredictor:
        """Returns the predictor saved by :meth:`save`; raises UserError (one line) for a
        missing or damaged file."""
        from nasbench.spaces import get_space
        p = Path(path)
        if not p.is_file():
            raise UserError(f"predictor file not found: {p}")
        state = read_state(p, lambda q: pickle.loads(q.read_bytes()), "predictor file",
                           "fit it again with nasbench surrogate fit")
        if not isinstance(state, dict) or state.get("format") != \
                "nasbench-accuracy-predictor/1":
            raise UserError(f"predictor file {p} is not a nasbench accuracy predictor")
        space = get_space(state["space"])(state["deploy"])
        out = cls(space, state["kind"], state["members"], state["seed"],
                  tuple(state.get("extra_names", ())))
        out.models, out.mean, out.scale = state["models"], state["mean"], state["scale"]
        out.n_train, out.trained_on = state["n_train"], list(state.get("trained_on", []))
        out.extra_centre = state.get("extra_centre")
        out.extra_scale = state.get("extra_scale")
        return out


def rank_scores(pred, truth) -> dict:
    """Returns Kendall's tau and Spearman's rho of ``pred`` against ``truth`` (the
    ranking agreement, -1..1)."""
    from scipy.stats import kendalltau, spearmanr
    return {"kendall_tau": float(kendalltau(pred, truth)[0]),
            "spearman": float(spearmanr(pred, truth)[0])}


def distinct_test(features: np.ndarray, train: np.ndarray, test: np.ndarray
                  ) -> np.ndarray:
    """Returns the entries of ``test`` (row indices of ``features``) that keep one cell
    per distinct feature vector and none whose vector a ``train`` row has. (Cells that
    compute the same function under a relabelling of nodes can still have different
    vectors: this removes exact twins of the features, not every isomorphic cell.)"""
    seen = {features[i].tobytes() for i in train}
    out = []
    for i in test:
        key = features[i].tobytes()
        if key not in seen:
            seen.add(key)
            out.append(i)
    return np.asarray(out, dtype=int)


def rank_study(space, archs, accuracy, sizes=(50, 100, 200, 500), repeats: int = 3,
               seed: int = 0, kind: str = "ensemble", members: int = 5,
               progress=None, extra=None, extra_names: tuple[str, ...] = ()) -> list[dict]:
    """Returns one row per training size: the predictor fitted on ``n`` architectures
    sampled at random from ``archs`` (with the ``extra`` columns named ``extra_names``,
    e.g. proxy scores) and scored on all the others (Kendall's tau, Spearman's rho: mean,
    standard deviation and each repeat) and on the distinct others
    (:func:`distinct_test`, the ``*_distinct`` keys), with the fit's seconds.
    ``progress(text)`` is called after each fit."""
    y = np.asarray(accuracy, dtype=np.float64)
    keep = np.flatnonzero(np.isfinite(y))
    if len(keep) < 3:
        raise UserError("the rank study needs at least 3 architectures with accuracies")
    e = None if extra is None else np.asarray(extra, dtype=np.float64)
    structural = np.asarray([space.features(a) for a in archs], dtype=np.float64)
    rng = np.random.default_rng(seed)
    rows = []
    for n in sizes:
        if not 2 <= n < len(keep):
            raise UserError(f"training size {n} must be in 2..{len(keep) - 1} (the "
                            f"architectures with an accuracy, minus one to score on)")
        got: dict[str, list] = {k: [] for k in ("tau", "rho", "tau_d", "rho_d", "n_d")}
        secs = []
        for r in range(repeats):
            idx = rng.permutation(keep)
            tr, te = idx[:n], idx[n:]
            t0 = time.perf_counter()
            model = AccuracyPredictor(space, kind, members, seed=seed * 100 + r,
                                      extra_names=extra_names)
            model.fit([archs[i] for i in tr], y[tr], None if e is None else e[tr])
            secs.append(time.perf_counter() - t0)
            pred = model.predict([archs[i] for i in te], None if e is None else e[te])[0]
            s = rank_scores(pred, y[te])
            got["tau"].append(s["kendall_tau"])
            got["rho"].append(s["spearman"])
            d = distinct_test(structural, tr, te)
            pos = {int(i): k for k, i in enumerate(te)}
            sd = rank_scores(pred[[pos[int(i)] for i in d]], y[d]) if len(d) > 2 else \
                {"kendall_tau": float("nan"), "spearman": float("nan")}
            got["tau_d"].append(sd["kendall_tau"])
            got["rho_d"].append(sd["spearman"])
            got["n_d"].append(len(d))
            if progress:
                progress(f"n={n} repeat {r + 1}/{repeats}: tau {got['tau'][-1]:.3f}, "
                         f"distinct {got['tau_d'][-1]:.3f}")
        rows.append({"n_train": n, "n_test": len(keep) - n, "repeats": repeats,
                     "kendall_tau": float(np.mean(got["tau"])),
                     "kendall_tau_std": float(np.std(got["tau"])),
                     "spearman": float(np.mean(got["rho"])),
                     "spearman_std": float(np.std(got["rho"])),
                     "kendall_taus": got["tau"],
                     "n_test_distinct": float(np.mean(got["n_d"])),
                     "kendall_tau_distinct_std": float(np.nanstd(got["tau_d"])),
                     "kendall_tau_distinct": float(np.nanmean(got["tau_d"])),
                     "spearman_distinct": float(np.nanmean(got["rho_d"])),
                     "spearman_distinct_std": float(np.nanstd(got["rho_d"])),
                     "extra": list(extra_names),
                     "fit_seconds": float(np.mean(secs))})
    return rows
