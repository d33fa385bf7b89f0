"""The search-space protocol, its registry and the architecture handle.

A space owns its topology once (timm-style registry: one decorator registers it, every
consumer looks it up with :func:`get_space`)::

    @register_space("toy")
    class ToySpace(SearchSpace):
        candidate_ops = ("a", "b")
        ...

A space object is bound to one deploy network (``space = get_space("darts")(deploy)``)
and answers, for that network:

* its **decision slots** (:meth:`SearchSpace.slots`): each a key, the candidate op names
  a derived network may hold there, and a weight (the expected number of times the slot
  is used, e.g. DARTS's expected edge survival 2/(inputs of the node));
* the op instances a slot/candidate places in the deploy network
  (:meth:`~SearchSpace.slot_instances`), the fixed instances, the instances of a whole
  architecture (:meth:`~SearchSpace.instances`: what a cost prediction sums), the
  deployable network built from those same instances (:meth:`~SearchSpace.build`) and
  the drift-anchor instance;
* an architecture's picks (slot, candidate) for the predictor, and back;
* ``sample``, ``mutate``, a categorical encoding per decision (surrogates, Optuna), and
  JSON with a stable id.

:class:`Arch` is the one architecture handle of the runner, the candidates and the
reports: a space name and the space's own value (a DARTS ``Genotype``, a
``ProxylessArch``...).
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from typing import Any, ClassVar

from nasbench.errors import UserError
from nasbench.ops import OPS
from nasbench.registry import SPACES as _SPACES

#: the space registry (:mod:`nasbench.registry`)
SPACES = _SPACES


def register_space(name: str):
    """Class decorator that registers a :class:`SearchSpace` subclass under ``name``;
    returns the class unchanged."""

    def decorate(cls):
        cls.name = name
        SPACES.add((name,), cls)
        return cls

    return decorate


def get_space(name: str) -> type[SearchSpace]:
    """Returns the registered space class ``name``; raises UserError naming the known
    spaces."""
    if name not in SPACES:
        raise UserError(f"unknown search space {name!r} (available: "
                        f"{', '.join(sorted(SPACES.names()))})")
    return SPACES.get(name)


def supernet_spaces() -> list[str]:
    """Returns the names of the registered spaces with a supernet (imports them)."""
    return [n for n in space_names() if get_space(n).has_supernet()]


def space_names() -> list[str]:
    """Returns the registered space names, sorted."""
    return sorted(SPACES.names())


@dataclass(frozen=True)
class OpInstance:
    """One distinct operation placement: op name, input (c_in, h, w), c_out, stride.

    ``attrs`` carries extra key fields for spaces that need them (e.g. expansion).
    """

    op: str
    c_in: int
    c_out: int
    h: int
    w: int
    stride: int = 1
    attrs: tuple = field(default=())

    @property
    def key(self) -> str:
        """Returns the LUT key of this instance without batch and dtype."""
        extra = "".join(f"/{k}{v}" for k, v in self.attrs)
        return f"{self.op}/c{self.c_in}-{self.c_out}/h{self.h}w{self.w}/s{self.stride}{extra}"

    def output_shape(self) -> tuple[int, int, int]:
        """Returns (C, H, W) of the op's output, by the registry's shape rule."""
        return OPS[self.op].shape(self.c_in, self.c_out, self.h, self.w, self.stride)

    def build(self):
        """Returns a fresh module of this instance (registry constructor)."""
        return OPS[self.op].build(self.c_in, self.c_out, self.stride, affine=True)


@dataclass(frozen=True)
class Slot:
    """One decision of a space: ``key`` (stable, e.g. ``normal/2/1``), the candidate op
    names a derived network may hold there, and ``weight``: how many times the slot is
    expected to be used by a derived network (1 for a block; DARTS: 2/(inputs of the
    node), as derivation keeps two inputs)."""

    key: str
    candidates: tuple[str, ...]
    weight: float = 1.0


class SearchSpace:
    """Base class of the search spaces (see the module doc). Subclasses set
    ``candidate_ops`` (the column order of every slot x candidate table, and of a
    supernet's architecture parameters), ``arch_type`` (the class of the space's
    architecture value) and implement the topology methods."""

    name: ClassVar[str] = ""
    candidate_ops: ClassVar[tuple[str, ...]] = ()
    arch_type: ClassVar[type] = object
    #: whether the supernet derives an architecture from any [slots x candidates]
    #: scores (``supernet.derive(scores)``; DARTS-PT's perturbation scores need it)
    derives_from_scores: ClassVar[bool] = False

    #: what every deploy config holds (the LUT keys and the data depend on them)
    DEPLOY_FIELDS: ClassVar[tuple[str, ...]] = ("batches", "dtype", "input_size",
                                                 "in_channels", "num_classes", "describe")

    def __init__(self, deploy):
        missing = [f for f in self.DEPLOY_FIELDS if not hasattr(deploy, f)]
        if missing:
            raise UserError(f"the {self.name or type(self).__name__} space's deploy config "
                            f"{type(deploy).__name__} lacks {', '.join(missing)} (a deploy "
                            f"config holds {', '.join(self.DEPLOY_FIELDS)})")
        self.deploy = deploy

    # ---- topology (subclasses) ----------------------------------------------------------

    def slots(self) -> list[Slot]:
        """Returns the decision slots, in a fixed order."""
        raise NotImplementedError

    def slot_instances(self, slot: int, op: str) -> list:
        """Returns every op instance candidate ``op`` places in the deploy network at slot
        index ``slot`` (with repetitions: a DARTS edge recurs in every cell of its kind)."""
        raise NotImplementedError

    def fixed_instances(self) -> list:
        """Returns the architecture-independent op instances, with repetitions."""
        raise NotImplementedError

    def picks(self, arch) -> list[tuple[int, str]]:
        """Returns the (slot index, op name) decisions ``arch`` makes."""
        raise NotImplementedError

    def with_picks(self, arch, picks: list[tuple[int, str]]):
        """Returns ``arch`` with the ops of ``picks`` (same slots as :meth:`picks`)."""
        raise NotImplementedError

    def build(self, arch):
        """Returns the deployable network of ``arch`` (a torch module, eval mode), made of
        the registry modules of :meth:`instances`."""
        raise NotImplementedError

    def supernet(self, channels: int, layers: int, partial_k: int = 1, *,
                 num_classes: int | None = None, in_channels: int | None = None,
                 input_size: int | None = None):
        """Returns the space's DARTS-style one-shot network (a torch module with
        ``arch_parameters``/``weights``/``arch_weights``/``slot_logits``/
        ``slot_weights``/``genotype``) at ``channels`` and ``layers`` (the space's
        meaning), for DARTS (``partial_k`` 1) or PC-DARTS; the classes, input channels
        and size default to the deploy network's. Raises UserError where the space has
        none."""
        raise UserError(f"the {self.name} space has no DARTS supernet (use darts or nb201)")

    @classmethod
    def has_supernet(cls) -> bool:
        """Returns whether the space has a DARTS-style supernet (:meth:`supernet`)."""
        return cls.supernet is not SearchSpace.supernet

    def anchor_instance(self):
        """Returns the drift-anchor op instance (a real op of the deploy network)."""
        raise NotImplementedError

    def sample(self, rng: random.Random):
        """Returns a uniformly sampled architecture."""
        raise NotImplementedError

    def valid(self, arch) -> bool:
        """Returns whether ``arch`` is a usable network (nb201: its output depends on its
        input). Every derivation, repair and sampler keeps to valid architectures; a
        space whose every encoding is a network (darts, proxyless) keeps this default."""
        return True

    def sample_valid(self, rng: random.Random, tries: int = 1000):
        """Returns a uniformly sampled valid architecture (rejection sampling: uniform
        over the valid ones)."""
        for _ in range(tries):
            arch = self.sample(rng)
            if self.valid(arch):
                return arch
        raise RuntimeError(f"no valid architecture of {self.name} in {tries} samples")

    def sample_distinct(self, rng: random.Random, n: int, valid: bool = False) -> list:
        """Returns up to ``n`` distinct architectures (by id) drawn with ``rng``: uniform
        samples, or valid ones (:meth:`sample_valid`) with ``valid``; fewer when 50 x n
        draws do not find n (a small space)."""
        draw = self.sample_valid if valid else self.sample
        seen, out = set(), []
        for _ in range(50 * n):
            a = draw(rng)
            k = self.arch_id(a)
            if k not in seen:
                seen.add(k)
                out.append(a)
                if len(out) == n:
                    break
        return out

    def enumerate_picks(self):
        """Returns every architecture of an enumerable space as ``(archs, columns,
        valid)``: the list, a LongTensor [archs x slots] of each pick's column in
        :attr:`candidate_ops`, and a BoolTensor of :meth:`valid`; None for a space too
        large to enumerate (the default). Exact constrained derivation uses it."""
        return None

    def choices(self) -> dict[str, list]:
        """Returns the categorical decisions {name: options} of :meth:`encode`."""
        raise NotImplementedError

    def encode(self, arch) -> dict[str, Any]:
        """Returns ``arch`` as one categorical value per decision (see :meth:`choices`)."""
        raise NotImplementedError

    def decode(self, values: dict[str, Any]):
        """Returns the architecture of :meth:`encode`'s values; raises ValueError."""
        raise NotImplementedError

    @classmethod
    def arch_to_dict(cls, arch) -> dict:
        """Returns the JSON form of an architecture (with ``"space"``)."""
        raise NotImplementedError

    @classmethod
    def arch_from_dict(cls, d: dict):
        """Returns the architecture stored by :meth:`arch_to_dict`; raises ValueError."""
        raise NotImplementedError

    @classmethod
    def summary(cls, arch) -> str:
        """Returns a one-line text of an architecture."""
        return json.dumps(cls.arch_to_dict(arch))

    def profile_options(self) -> dict:
        """Returns the ``nasbench profile`` options that describe this deploy network."""
        return {}

    def profile_command(self, device: str, out=None) -> str:
        """Returns the ``nasbench profile`` command that measures this deploy network."""
        opts = "".join(f" --{k} {v}" for k, v in self.profile_options().items())
        cmd = f"nasbench profile --space {self.name} --device {device}{opts}"
        return cmd + (f" --out {out} --resume" if out else "")

    @classmethod
    def deploy_from_lut(cls, lut, batch: int | None = None):
        """Returns the deploy network a LUT of this space describes, at ``batch``."""
        raise NotImplementedError

    @classmethod
    def default_deploy(cls):
        """Returns the space's default deploy network (the one its papers evaluate)."""
        raise NotImplementedError

    # ---- the deploy network from options (profile) and for a supernet search ----------

    @classmethod
    def deploy_from_options(cls, *, channels=None, layers=None, input_size=None,
                            num_classes=None, layout=None, width_mult=None,
                            batches=(1,), dtype="float32"):
        """Returns the deploy network ``nasbench profile`` describes with these options
        (None: not given, the space's default); raises UserError (one line) for an
        option this space does not take. Default: the space's default network at the
        given input, classes, batches and dtype."""
        import dataclasses
        given = {"channels": channels, "layers": layers, "layout": layout,
                 "width_mult": width_mult}
        extra = [f"--{k.replace('_', '-')}" for k, v in given.items() if v is not None]
        if extra:
            raise UserError(f"{', '.join(extra)} do not describe the {cls.name} space's "
                            f"network")
        d = cls.default_deploy()
        want = {"input_size": input_size, "num_classes": num_classes,
                "batches": tuple(batches), "dtype": dtype}
        names = {f.name for f in dataclasses.fields(d)}
        return dataclasses.replace(d, **{k: v for k, v in want.items()
                                         if v is not None and k in names})

    #: a supernet search retrains the deploy network itself (else a smaller copy)
    retrains_deploy: ClassVar[bool] = True
    #: a supernet's fewest cells, and its cells when a searcher is not told (SPOS)
    supernet_min_layers: ClassVar[int] = 1
    supernet_default_layers: ClassVar[int] = 5

    @classmethod
    def supernet_deploy(cls, *, channels: int, cells: int, input_size: int | None,
                        in_channels: int, num_classes: int, batch: int, **geometry):
        """Returns the deploy network of a supernet search (``channels``/``cells`` its
        size; ``geometry`` the space's own cell settings, e.g. DARTS's ``steps``);
        raises UserError for a space without a supernet."""
        raise UserError(f"the {cls.name} space has no supernet (use a method that "
                        f"searches it, e.g. its multi-trial searches)")

    @classmethod
    def supernet_settings(cls, preset: str, method: str) -> dict:
        """Returns the settings this space changes in a supernet searcher's config for
        ``preset`` and ``method`` (e.g. NAS-Bench-201's network size), {} by default."""
        return {}

    @classmethod
    def check_supernet(cls, layers: int, eval_layers: int) -> None:
        """Raises UserError (one line) when a supernet of ``layers`` cells or a deploy
        network of ``eval_layers`` cannot be built in this space."""

    # ---- derived from the above ---------------------------------------------------------

    @classmethod
    def parse_arch(cls, text: str):
        """Returns the architecture a user wrote: a JSON file, or JSON text, of
        :meth:`arch_to_dict` (spaces add their own short forms); raises ValueError."""
        import json as _json
        from pathlib import Path
        p = Path(str(text)).expanduser()
        try:
            d = _json.loads(p.read_text()) if p.is_file() else _json.loads(str(text))
        except (OSError, ValueError):
            raise ValueError(f"not a {cls.name} architecture (JSON or a JSON file): "
                             f"{text!r}") from None
        if isinstance(d, dict) and isinstance(d.get("genotype"), dict):
            d = d["genotype"]                  # a run's genotype.json
        return cls.arch_from_dict(d)

    def draw(self, arch) -> list[str]:
        """Returns the architecture drawn as text lines (one per decision)."""
        return [f"{k:>16}  {v}" for k, v in self.encode(arch).items()]

    def describe(self) -> dict:
        """Returns the deploy network's identifying fields (LUT provenance)."""
        return {"space": self.name, **self.deploy.describe()}

    def deploy_text(self) -> str:
        """Returns the deploy network in a few words, for logs and summaries."""
        return ", ".join(f"{k} {v}" for k, v in self.deploy.describe().items()
                         if k != "space")

    def instances(self, arch) -> list:
        """Returns every op instance the deploy network of ``arch`` runs, with
        repetitions: the fixed parts and each pick's instances."""
        out = list(self.fixed_instances())
        for s, op in self.picks(arch):
            out += self.slot_instances(s, op)
        return out

    def prediction_instances(self, arch, lut) -> tuple[list, list]:
        """Returns (the instances a prediction from ``lut`` sums at their LUT value, the
        node sums a fusing backend folds into a conv epilogue: the calibration's
        ``fused_add`` feature); spaces without such sums: ``(instances(arch), [])``."""
        return list(self.instances(arch)), []

    def fixed_extra(self, lut, val) -> float:
        """Returns a LUT-dependent architecture-independent cost beyond the fixed
        instances (``val(key)`` reads the LUT; DARTS: its node sums), default 0."""
        return 0.0

    def cost_extra(self, scale: float, val):
        """Returns the cost table's extra term for a calibrated ``fused_add`` scale (an
        object with ``expected(probs, weights)`` and ``exact(picks)``), None without
        fused sums (the default)."""
        return None

    def swap_where(self, pick: int, slot: int) -> dict:
        """Returns where a hard-target swap of pick ``pick`` at ``slot`` happened."""
        return {"slot": self.slots()[slot].key}

    def enumerate_instances(self) -> list:
        """Returns the distinct op instances the space can place in the deploy network
        (fixed parts and every candidate at every slot), in first-use order."""
        seen: dict = {}
        insts = list(self.fixed_instances())
        for s, slot in enumerate(self.slots()):
            for op in slot.candidates:
                insts += self.slot_instances(s, op)
        for inst in insts:
            seen.setdefault(inst.key, inst)
        return list(seen.values())

    def mutate(self, arch, rng: random.Random, tries: int = 100):
        """Returns ``arch`` with one decision changed to another of its options, the
        result a valid architecture (:meth:`valid`; redrawn when not)."""
        opts = self.choices()
        for _ in range(tries):
            values = self.encode(arch)
            names = [k for k in values if len(opts[k]) > 1]
            k = rng.choice(names)
            values[k] = rng.choice([o for o in opts[k] if o != values[k]])
            out = self.decode(values)
            if self.valid(out):
                return out
        return out

    def features(self, arch) -> list[float]:
        """Returns the surrogate's input vector of ``arch`` (floats): by default the
        one-hot of :meth:`encode` over :meth:`choices`, decision by decision (spaces add
        features that know their topology, e.g. nb201's live paths)."""
        values, out = self.encode(arch), []
        for k, opts in self.choices().items():
            out += [1.0 if values[k] == o else 0.0 for o in opts]
        return out

    def cost_features(self, arch) -> dict[str, float]:
        """Returns the structural terms a device's cost may depend on beyond the sum of
        its ops (the learned latency model's inputs, :mod:`nasbench.predict.learned`):
        by default the op of each decision (``slot=op``, one-hot; slots are stage and
        position) and the count of each op (``n:op``). Spaces add their topology (nb201:
        which ops reach the output, ops that share an input). Names are stable for a
        space; values are counts (unitless)."""
        out: dict[str, float] = {}
        values = self.encode(arch)
        for k, opts in self.choices().items():
            for o in opts:
                out[f"{k}={o}"] = 1.0 if values[k] == o else 0.0
        for _, op in self.picks(arch):
            out[f"n:{op}"] = out.get(f"n:{op}", 0.0) + 1.0
        return out

    def blocks(self) -> list[list[str]]:
        """Returns the decisions of :meth:`choices` grouped into PNAS's blocks, in the
        order a progressive search adds them (one list of decision names per block);
        raises UserError where the space has no block structure."""
        raise UserError(f"the {self.name} space has no block structure for progressive "
                        f"search (use nb201 or darts)")

    def complete(self, partial: dict):
        """Returns the architecture of a partial cell: ``partial`` holds the decisions of
        the first b :meth:`blocks`; the space fills the rest so that the cell computes
        those b blocks (its output is the last one)."""
        raise UserError(f"the {self.name} space has no block structure for progressive "
                        f"search (use nb201 or darts)")

    def arch_id(self, arch) -> str:
        """Returns a stable id of an architecture (12 hex digits of the sha256 of its
        canonical JSON, space included)."""
        return Arch(self.name, arch).id

    def size(self) -> int:
        """Returns the number of architectures of the encoding (a Python int)."""
        n = 1
        for opts in self.choices().values():
            n *= len(opts)
        return n


def space_for(deploy) -> SearchSpace:
    """Returns ``deploy`` as a bound space: a space as is, a deploy config as the space
    its ``describe()["space"]`` names (``darts`` for configs that predate spaces)."""
    if isinstance(deploy, SearchSpace):
        return deploy
    return get_space(str(deploy.describe().get("space", "darts")))(deploy)


def lut_space(lut) -> str:
    """Returns the space a LUT's deploy network belongs to (its provenance's
    ``deploy.space``; ``darts`` for LUTs that predate spaces)."""
    return str((lut.provenance.get("deploy") or {}).get("space") or "darts")


def arch_id(d: dict) -> str:
    """Returns the stable id of an architecture's JSON form (summary/id keys ignored)."""
    core = {k: v for k, v in d.items() if k not in ("summary", "id")}
    return hashlib.sha256(json.dumps(core, sort_keys=True).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Arch:
    """An architecture of a registered space: the space name and the space's value."""

    space: str
    value: Any

    @classmethod
    def of(cls, value: Any, space: str | None = None) -> Arch:
        """Returns the handle of ``value`` (an Arch is returned as is); the space is
        ``space`` or the registered space whose ``arch_type`` the value is."""
        if isinstance(value, Arch):
            return value
        if space is None:
            space = next((n for n, c in SPACES.load_all().items()
                          if isinstance(value, c.arch_type)),
                         None)
            if space is None:
                raise TypeError(f"no registered space has architectures of type "
                                f"{type(value).__name__}")
        return cls(space, value)

    @classmethod
    def from_dict(cls, d: dict, space: str | None = None) -> Arch:
        """Returns the handle of an architecture's JSON form (space from ``d["space"]``
        unless given); raises ValueError."""
        name = space or d.get("space")
        if not name:
            raise ValueError("an architecture's JSON needs its 'space'")
        return cls(name, get_space(name).arch_from_dict(d))

    @property
    def space_class(self) -> type[SearchSpace]:
        return get_space(self.space)

    def to_dict(self) -> dict:
        """Returns the JSON form (the space's, with ``space``)."""
        d = self.space_class.arch_to_dict(self.value)
        return {**d, "space": d.get("space", self.space)} if isinstance(d, dict) else d

    def summary(self) -> str:
        """Returns the space's one-line text of the architecture."""
        return self.space_class.summary(self.value)

    @property
    def id(self) -> str:
        """Returns the stable id (:func:`arch_id`)."""
        return arch_id(self.to_dict())
