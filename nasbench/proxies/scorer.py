"""Scoring architectures of a space with zero-cost proxies, cached on disk, and the
aggregate of several proxies.

:class:`ProxyScorer` builds a space's network for an architecture (initialised from
``seed``), takes one fixed minibatch of the data's *training* split (``batch`` images
drawn with ``seed``; never the test split) and returns the proxies' scores
(:mod:`nasbench.proxies.measures`). Scores are cached on disk, one JSON per
architecture and setting (``<cache dir>/proxies/<key>.json``: the architecture's id,
the space's network, the data set, the batch size, the seed, the torch version and
device type), so every run, seed and worker shares them; a later request for another
proxy of the same cell adds to its file.

An architecture the space calls invalid (nb201: the output ignores the input), or that
gives the same logits for every image of the minibatch, is **degenerate**: every proxy scores it
:data:`WORST`, the lowest finite float64, and no network is run for it when the space
can tell.

An **aggregate** (``--proxy jacob_cov+naswot+params``) combines proxies without any
accuracy data: each proxy's value (its logarithm for the ``log_scale`` ones) becomes a
robust z-score against a reference sample (median, and the interquartile range / 1.349
as the scale), clipped to +-6 (jacob_cov's tail reaches z of -1000: one member must not
swamp the others), the z-scores are averaged, and the mean is mapped to 0-100 through
the normal CDF (:class:`Aggregate`). 0 is the worst possible; 50 is the reference's
median. The reference is the scored sample itself in ``nasbench proxy``, and a seeded
sample of the space's valid cells for the ``zc`` evaluator.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from nasbench.errors import UserError, warn_damaged
from nasbench.proxies import DEFAULT_BATCH
from nasbench.proxies.measures import Probe, get_proxy
from nasbench.registry import PROXIES
from nasbench.stats import robust_scale
from profilers.lut import atomic_write_text

CACHE_FOLDER = "proxies"
#: the score of a degenerate network (its output ignores the input), for every proxy
WORST = float(np.finfo(np.float64).min)
#: each member's z-score is clipped to +-Z_CLIP in an aggregate
Z_CLIP = 6.0


def is_worst(value: float) -> bool:
    """Returns whether ``value`` is the degenerate network's score."""
    return value <= WORST


@dataclass
class Aggregate:
    """The aggregate of ``members`` (see the module doc): ``centre`` and ``scale`` per
    member, in the transformed (log where ``log_scale``) units, from a reference
    sample."""

    members: list[str]
    centre: dict
    scale: dict

    @staticmethod
    def transform(name: str, value: float) -> float:
        """Returns the value an aggregate compares: log for ``log_scale`` proxies."""
        if getattr(get_proxy(name), "log_scale", False):
            return math.log(max(value, 1e-300))
        return value

    @classmethod
    def fit(cls, members: list[str], reference: Iterable[dict]) -> Aggregate:
        """Returns the aggregate standardised on ``reference`` (score dicts; degenerate
        ones are left out); raises UserError with fewer than 2 usable cells."""
        rows = [r for r in reference if not any(is_worst(r[m]) for m in members)]
        if len(rows) < 2:
            raise UserError("an aggregate of proxies needs a reference of at least 2 "
                            "working networks")
        centre, scale = {}, {}
        for m in members:
            med, s = robust_scale([cls.transform(m, r[m]) for r in rows])
            centre[m], scale[m] = float(med), float(s)
        return cls(members, centre, scale)

    def __call__(self, scores: dict) -> float:
        """Returns the aggregate score (0-100; 0 for a degenerate network)."""
        if any(is_worst(scores[m]) for m in self.members):
            return 0.0
        z = np.mean([np.clip((self.transform(m, scores[m]) - self.centre[m])
                             / self.scale[m], -Z_CLIP, Z_CLIP) for m in self.members])
        return float(50.0 * math.erfc(-z / math.sqrt(2.0)))

    def to_dict(self) -> dict:
        """Returns the JSON form."""
        return {"members": self.members, "centre": self.centre, "scale": self.scale}


class ProxyScorer:
    """Scores architectures of ``space`` on ``data`` (see the module doc).
    ``space`` is bound to the network to score (its deploy config at the data's input
    size, classes and channels); ``device`` a torch device name."""

    def __init__(self, space, data, *, batch: int = DEFAULT_BATCH, seed: int = 0,
                 device: str = "cpu", cache_dir: Path | None = None):
        if batch < 2:
            raise UserError(f"--zc-batch must be at least 2 images, got {batch}")
        if len(data.train) < batch:
            raise UserError(f"the training split has {len(data.train)} images, fewer than "
                            f"the proxies' minibatch of {batch}")
        self.space, self.data, self.batch, self.seed = space, data, batch, seed
        self.device = torch.device(device)
        g = torch.Generator().manual_seed(seed)
        idx = torch.randperm(len(data.train), generator=g)[:batch]
        x = data.train.images[idx]
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
        mean = torch.tensor(data.mean, dtype=torch.float32).view(1, -1, 1, 1)
        std = torch.tensor(data.std, dtype=torch.float32).view(1, -1, 1, 1)
        self.images = ((x - mean) / std).to(self.device)
        self.labels = data.train.labels[idx].to(self.device)
        if cache_dir is None:
            from nasbench.luts import cache_dir as user_cache
            cache_dir = user_cache()
        self.folder = Path(cache_dir) / CACHE_FOLDER
        self.ident = {"space": space.describe(), "data": data.describe(), "batch": batch,
                      "seed": seed, "torch": torch.__version__,
                      "device": self.device.type}
        # networks run, cells answered from the cache, degenerate cells (not run when
        # the space can tell)
        self.computed = self.cache_hits = self.degenerate = 0
        self.seconds = 0.0                      # spent running networks

    def key(self, arch) -> str:
        """Returns the cache key of ``arch`` under these settings (24 hex digits)."""
        ident = {**self.ident, "arch": self.space.arch_id(arch)}
        text = json.dumps(ident, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:24]

    def _path(self, key: str) -> Path:
        return self.folder / f"{key}.json"

    def _read(self, key: str) -> dict:
        path = self._path(key)
        if not path.is_file():
            return {}

        try:
            rec = json.loads(path.read_text())
            versions = rec.get("versions", {})
            # a score of another definition of its proxy is computed again
            return {k: float(v) for k, v in rec["scores"].items()
                    if k in PROXIES and versions.get(k) == get_proxy(k).version}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            # a lost cache entry costs a second of scoring: warn and rebuild it
            warn_damaged(path, "proxy cache entry", "the cell is scored again", e)
            return {}

    def _write(self, key: str, arch, scores: dict) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        rec = {"arch": self.space.arch_to_dict(arch), "arch_id": self.space.arch_id(arch),
               "settings": self.ident, "scores": scores,
               "versions": {k: get_proxy(k).version for k in scores}}
        atomic_write_text(self._path(key), json.dumps(rec, indent=1) + "\n")

    def build(self, arch) -> Callable[[], torch.nn.Module]:
        """Returns a builder of ``arch``'s network, initialised from the scorer's seed."""
        def make():
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                net = self.space.build(arch)
            return net.to(self.device)
        return make

    def compute(self, arch, names: list[str]) -> dict:
        """Returns {proxy: score} of ``arch``, computed now (uncached)."""
        if not self.space.valid(arch):
            self.degenerate += 1
            return dict.fromkeys(names, WORST)
        t0 = time.perf_counter()
        probe = Probe(self.build(arch), self.images, self.labels)
        for n in names:                 # the shared passes first, each once
            for attr in get_proxy(n).passes:
                getattr(probe, attr)
        if probe.ignores_input:
            self.degenerate += 1
            out = dict.fromkeys(names, WORST)
        else:
            out = {n: float(get_proxy(n)(probe)) for n in names}
            # a score that is not finite would break every comparison: count it worst
            out = {n: v if math.isfinite(v) else WORST for n, v in out.items()}
        self.seconds += time.perf_counter() - t0
        self.computed += 1
        return out

    def scores(self, arch, names: list[str]) -> dict:
        """Returns {proxy: score} of ``arch`` for ``names``, from the cache where it has
        them (the rest are computed and added to the cache)."""
        key = self.key(arch)
        have = self._read(key)
        todo = [n for n in names if n not in have]
        if todo:
            have = {**have, **self.compute(arch, todo)}
            self._write(key, arch, have)
        else:
            self.cache_hits += 1
        return {n: have[n] for n in names}

    def describe(self) -> dict:
        """Returns the scorer's settings (JSON-ready)."""
        return {**self.ident, "cache": str(self.folder)}
