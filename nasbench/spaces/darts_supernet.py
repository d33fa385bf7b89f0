"""The DARTS search network (supernet) on the op registry, with PC-DARTS as an option.

Every edge of a cell is a :class:`MixedOp`: the softmax(alpha)-weighted sum of every
candidate op. Normal cells share ``alphas_normal``, reduction cells ``alphas_reduce``.
With ``partial_k > 1`` the network is PC-DARTS (Xu et al., ICLR 2020): an edge runs its
ops on 1/K of the channels, passes the rest through, and shuffles channels; each node
weighs its incoming edges by softmax(beta) (edge normalisation).

Exact speed-ups over the reference code (same maths, measured in the benchmarks):

* ``none`` is never computed: its output is zero, so its term vanishes from the sum
  (its alpha still enters the softmax, so the weights of the other ops are unchanged).
* The ReLU that opens every conv op (sep / dil convs) is computed once per cell state
  and shared by all the edges that read that state, instead of once per op and edge.
* The architecture step differentiates with respect to the alphas only (see
  ``architect.py``), and the weight step treats the softmax weights as constants, so
  no op output is kept for an alpha gradient nobody asks for.

**Single paths** (SPOS, ENAS): given an architecture, ``supernet(x, arch=arch)`` runs
only that architecture's ops on the shared weights: each edge gets an op index into
``primitives`` (-1: the edge is not used) and :meth:`MixedOp.path` runs that one op. It
is the mixed forward with one-hot weights (an unused edge: one-hot on ``none``), minus
the ops whose weight is 0, so the other ops get no gradient and no compute.
:meth:`Supernet.path_accuracy` scores a path with the shared weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nasbench.ops import OPS, PRIMITIVES, FactorizedReduce
from nasbench.spaces.darts_cells import cell_edges, cell_plan, num_edges


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Returns x with its channels interleaved across ``groups`` (ShuffleNet)."""
    b, c, h, w = x.shape
    return x.view(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)


class _UnitStrideFactorizedReduce(FactorizedReduce):
    """FactorizedReduce (same parameters, same maths) whose two 1x1 stride-2 convs run
    as stride-1 convs on the subsampled input, ``x[::2, ::2]`` and ``x[1::2, 1::2]``.

    Why: for a strided 1x1 conv on a channels_last input whose size is the output's
    times the stride (even H, W here), oneDNN's AVX2 kernel (``jit_1x1:avx2``) computes
    the weight gradient via a per-thread "reduce to unit stride" scratch copy of the
    input that is sized for C channels but written with C rounded up to 8: with
    C % 8 != 0 (PC-DARTS's C/K, e.g. 4) it writes past its buffer, a heap corruption
    (SIGABRT) on one thread and wrong weight gradients or a hang on several. A 1x1
    conv with stride 1 never takes that path."""

    def forward(self, x):
        x = self.relu(x)
        out = torch.cat([F.conv2d(x[:, :, ::2, ::2], self.conv_1.weight, self.conv_1.bias),
                         F.conv2d(x[:, :, 1::2, 1::2], self.conv_2.weight, self.conv_2.bias)],
                        dim=1)
        return self.bn(out)


def _unit_stride(op: nn.Module) -> nn.Module:
    """Returns ``op``, made a :class:`_UnitStrideFactorizedReduce` in place (same object,
    parameters and state dict) if it is a FactorizedReduce."""
    if type(op) is FactorizedReduce:
        op.__class__ = _UnitStrideFactorizedReduce
    return op


def _relu_tail(module: nn.Module) -> nn.Module | None:
    """Returns the layers after the leading ReLU of a registry conv op, or None."""
    seq = getattr(module, "op", None)
    if isinstance(seq, nn.Sequential) and isinstance(seq[0], nn.ReLU):
        return seq[1:]
    return None


class MixedOp(nn.Module):
    """One edge: ``sum_o w_o * op_o(x)`` over the candidate ops (``none`` skipped).

    ``forward(x, relu_x, weights)`` takes the edge input, its ReLU (shared per state) and
    the edge's weights over all ``primitives`` (``none`` included); returns the output.
    With ``partial_k = K > 1`` (PC-DARTS) the ops have C/K channels and ``x``/``relu_x``
    are the first C/K channels of the state; :meth:`passthrough` gives the rest.
    """

    def __init__(self, C: int, stride: int, primitives=PRIMITIVES, partial_k: int = 1):
        super().__init__()
        self.k = partial_k
        self.stride = stride
        c = C // partial_k
        self._ops = nn.ModuleList()
        self._index = []                     # position of each built op in `primitives`
        for i, name in enumerate(primitives):
            if name == "none":
                continue
            op = _unit_stride(OPS[name].build(c, c, stride, affine=False))
            if "pool" in name:
                op = nn.Sequential(op, nn.BatchNorm2d(c, affine=False))
            self._ops.append(op)
            self._index.append(i)
        # plain list: not registered twice as submodules
        self._tails = [_relu_tail(op) for op in self._ops]
        #: index in `primitives` -> position in `_ops` (single paths)
        self._position = {i: pos for pos, i in enumerate(self._index)}
        self.pool = nn.MaxPool2d(2, 2) if partial_k > 1 and stride == 2 else None

    def forward(self, x, relu_x, weights):
        """Returns the mixed output ``sum_o weights[o] * op_o(x)`` (``none`` skipped)."""
        out = None
        for i, op, tail in zip(self._index, self._ops, self._tails, strict=False):
            y = tail(relu_x) if tail is not None else op(x)
            y = weights[i] * y
            out = y if out is None else out + y
        return out

    def path(self, x, relu_x, index: int):
        """Returns the output of the one op ``primitives[index]`` (single path), or None
        where the edge contributes nothing (``index`` -1: not used, or ``none``)."""
        pos = self._position.get(index)
        if pos is None:
            return None
        tail = self._tails[pos]
        return tail(relu_x) if tail is not None else self._ops[pos](x)

    def zeros(self, x: torch.Tensor) -> torch.Tensor:
        """Returns the zero output of this edge for input ``x`` (a node no used edge
        feeds: what ``none`` computes)."""
        b, c, h, w = x.shape
        s = self.stride
        return x.new_zeros(b, c, -(-h // s), -(-w // s))

    def passthrough(self, x: torch.Tensor) -> torch.Tensor:
        """Returns the channels PC-DARTS does not process (max-pooled when striding)."""
        rest = x[:, x.shape[1] // self.k:]
        return self.pool(rest) if self.pool is not None else rest


def path_node(edges, ins, relus) -> torch.Tensor:
    """Returns a node of a single path: the sum of ``op.path(ins[i], relus[i], index)``
    over ``edges``, (MixedOp, input state i, op index) triples; the zeros of the first
    edge where none of them contributes (every op ``none`` or unused)."""
    s = None
    for op, i, index in edges:
        y = op.path(ins[i], relus[i], index)
        if y is not None:
            s = y if s is None else s + y
    if s is None:
        op, i, _ = edges[0]
        s = op.zeros(ins[i])
    return s


class SearchCell(nn.Module):
    """A search cell: two preprocessed inputs, ``steps`` nodes each summing a MixedOp on
    every earlier state; output the concatenation of the last ``multiplier`` states."""

    def __init__(self, steps, multiplier, c_pp, c_p, c, reduction, reduction_prev,
                 primitives=PRIMITIVES, partial_k=1):
        super().__init__()
        self.reduction = reduction
        if reduction_prev:
            self.preprocess0 = _unit_stride(
                OPS["factorized_reduce"].build(c_pp, c, 2, affine=False))
        else:
            self.preprocess0 = OPS["relu_conv_bn_1x1"].build(c_pp, c, 1, affine=False)
        self.preprocess1 = OPS["relu_conv_bn_1x1"].build(c_p, c, 1, affine=False)
        self._steps, self._multiplier = steps, multiplier
        self._ops = nn.ModuleList()
        for i in range(steps):
            for j in range(2 + i):
                stride = 2 if reduction and j < 2 else 1
                self._ops.append(MixedOp(c, stride, primitives, partial_k))

    def forward(self, s0, s1, weights=None, edge_weights=None, path=None):
        """Returns the cell output: the mixed cell under ``weights`` [edges x ops] (and
        PC-DARTS's ``edge_weights`` [edges]), or, given ``path`` (an op index into the
        primitives per edge, -1 for an unused edge; ``partial_k`` 1), that single path."""
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        k = self._ops[0].k
        # the edge inputs: the whole state (DARTS) or its first C/K channels (PC-DARTS),
        # and their ReLU, computed once per state and shared by every edge reading it
        ins = [s if k == 1 else s[:, :s.shape[1] // k].contiguous() for s in states]
        relus = [F.relu(s) for s in ins]
        offset = 0
        for _i in range(self._steps):
            n = len(states)
            if path is not None:
                s = path_node([(self._ops[offset + j], j, path[offset + j])
                               for j in range(n)], ins, relus)
            elif edge_weights is None:
                s = None
                for j in range(n):
                    y = self._ops[offset + j](ins[j], relus[j], weights[offset + j])
                    s = y if s is None else s + y
            else:
                # PC-DARTS: the channel shuffle is a fixed permutation and every term is
                # linear, so sum_j beta_j * shuffle(cat(op_j, rest_j)) is computed as
                # shuffle(cat(sum_j op_j(beta_j w_j), sum_j beta_j rest_j)): one cat and
                # one shuffle per node instead of per edge (same value, less memory).
                ew = edge_weights[offset:offset + n]
                w = weights[offset:offset + n] * ew.unsqueeze(1)
                part = rest = None
                for j in range(n):
                    op = self._ops[offset + j]
                    y = op(ins[j], relus[j], w[j])
                    r = ew[j] * op.passthrough(states[j])
                    part = y if part is None else part + y
                    rest = r if rest is None else rest + r
                s = channel_shuffle(torch.cat([part, rest], dim=1), k)
            offset += n
            states.append(s)
            ins.append(s if k == 1 else s[:, :s.shape[1] // k].contiguous())
            relus.append(F.relu(ins[-1]))
        return torch.cat(states[-self._multiplier:], dim=1)



def node_softmax(betas: torch.Tensor, steps: int) -> torch.Tensor:
    """Returns PC-DARTS edge weights: softmax of ``betas`` over each node's inputs."""
    parts, start = [], 0
    for i in range(steps):
        n = 2 + i
        parts.append(F.softmax(betas[start:start + n], dim=-1))
        start += n
    return torch.cat(parts)


class Supernet(nn.Module):
    """What every one-shot supernet shares: its parameters split into architecture
    parameters (``arch_parameters()``, defined by the subclass) and network weights."""

    def arch_parameters(self) -> list[nn.Parameter]:
        """Returns the architecture parameters (subclasses)."""
        raise NotImplementedError

    def weights(self) -> list[nn.Parameter]:
        """Returns the network weights (every parameter that is not architecture)."""
        arch = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch]

    def named_weights(self) -> list[tuple[str, nn.Parameter]]:
        """Returns (name, parameter) of the network weights."""
        arch = {id(p) for p in self.arch_parameters()}
        return [(n, p) for n, p in self.named_parameters() if id(p) not in arch]

    # ---- single paths (SPOS, ENAS) ------------------------------------------------------

    def path_of(self, arch) -> dict:
        """Returns the single path of a space architecture: {cell kind: an op index into
        ``primitives`` per edge, -1 for an unused edge}; raises ValueError for an
        architecture this network cannot run (subclasses)."""
        raise NotImplementedError

    def path_forward(self, x: torch.Tensor, arch) -> torch.Tensor:
        """Returns the logits of the single path ``arch`` (``self(x, arch=arch)``)."""
        return self(x, arch=arch)

    @torch.no_grad()
    def path_accuracy(self, arch, batches, calibrate=None) -> float:
        """Returns the top-1 accuracy (%) of the single path ``arch`` with the shared
        weights on ``batches`` ((images, labels) pairs), leaving the network as it was
        (BatchNorm buffers and train/eval mode restored).

        BatchNorm: given ``calibrate`` (batches of training images), its statistics are
        recomputed for this path on them first and the path is scored in eval mode
        (SPOS's recalibration); without, every batch is normalised by its own statistics
        (train-mode BatchNorm, as ENAS scores its samples), updating nothing."""
        bns = [m for m in self.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        saved = [(m.momentum, m.track_running_stats,
                  {k: b.clone() for k, b in m.named_buffers(recurse=False)}) for m in bns]
        mode = self.training
        try:
            self.train()
            if calibrate is not None:
                for m in bns:            # the cumulative average over the batches
                    m.reset_running_stats()
                    m.momentum = None
                for x, _ in calibrate:
                    self(x, arch=arch)
                self.eval()
            else:
                for m in bns:            # batch statistics, no running-stat update
                    m.track_running_stats = False
            correct = n = 0
            for x, y in batches:
                correct += int((self(x, arch=arch).argmax(1) == y).sum())
                n += int(y.shape[0])
        finally:
            for m, (momentum, track, buffers) in zip(bns, saved, strict=True):
                m.momentum, m.track_running_stats = momentum, track
                for k, b in buffers.items():
                    getattr(m, k).copy_(b)
            self.train(mode)
        return 100.0 * correct / max(n, 1)


class SearchNetwork(Supernet):
    """The DARTS (``partial_k == 1``) or PC-DARTS search network.

    ``forward(x)`` returns logits. Architecture parameters: ``alphas_normal`` and
    ``alphas_reduce`` ([edges x ops]), plus ``betas_normal`` / ``betas_reduce`` ([edges])
    for PC-DARTS; :meth:`arch_parameters` lists them, :meth:`weights` the rest.
    """

    def __init__(self, C=16, num_classes=10, layers=8, steps=4, multiplier=4,
                 stem_multiplier=3, in_channels=3, input_size=32, primitives=PRIMITIVES,
                 partial_k=1):
        super().__init__()
        self.primitives = list(primitives)
        self._steps, self._multiplier, self.partial_k = steps, multiplier, partial_k
        self._hparams = dict(C=C, num_classes=num_classes, layers=layers, steps=steps,
                             multiplier=multiplier, stem_multiplier=stem_multiplier,
                             in_channels=in_channels, input_size=input_size,
                             primitives=self.primitives, partial_k=partial_k)
        plan = cell_plan(C, layers, input_size, multiplier, stem_multiplier)
        self.stem = OPS["stem"].build(in_channels, stem_multiplier * C, 1)
        self.cells = nn.ModuleList(
            SearchCell(steps, multiplier, g.c_prev_prev, g.c_prev, g.c, g.reduction,
                       g.reduction_prev, self.primitives, partial_k) for g in plan)
        self.head = OPS["gap_linear"].build(multiplier * plan[-1].c, num_classes, 1)
        k, n = num_edges(steps), len(self.primitives)
        self.alphas_normal = nn.Parameter(1e-3 * torch.randn(k, n))
        self.alphas_reduce = nn.Parameter(1e-3 * torch.randn(k, n))
        self.betas_normal = nn.Parameter(1e-3 * torch.randn(k)) if partial_k > 1 else None
        self.betas_reduce = nn.Parameter(1e-3 * torch.randn(k)) if partial_k > 1 else None

    def new(self) -> SearchNetwork:
        """Returns a fresh network of the same shape, with this one's alphas copied."""
        other = SearchNetwork(**self._hparams)
        for a, b in zip(other.arch_parameters(), self.arch_parameters(), strict=False):
            a.data.copy_(b.data)
        return other

    def arch_parameters(self) -> list[nn.Parameter]:
        """Returns the architecture parameters (alphas, then PC-DARTS betas)."""
        out = [self.alphas_normal, self.alphas_reduce]
        if self.partial_k > 1:
            out += [self.betas_normal, self.betas_reduce]
        return out

    def arch_weights(self) -> dict[str, torch.Tensor]:
        """Returns the softmaxed architecture weights: ``normal``/``reduce`` op weights
        [edges x ops] and, for PC-DARTS, ``edge_normal``/``edge_reduce`` [edges]."""
        out = {"normal": F.softmax(self.alphas_normal, dim=-1),
               "reduce": F.softmax(self.alphas_reduce, dim=-1)}
        if self.partial_k > 1:
            out["edge_normal"] = node_softmax(self.betas_normal, self._steps)
            out["edge_reduce"] = node_softmax(self.betas_reduce, self._steps)
        return out

    def slot_logits(self) -> torch.Tensor:
        """Returns the cost table's slot logits: normal then reduce alphas [28 x ops]."""
        return torch.cat([self.alphas_normal, self.alphas_reduce])

    def slot_weights(self) -> torch.Tensor | None:
        """Returns the cost table's slot weights: PC-DARTS's 2 x softmax(beta) per node
        (the expected survival of each edge); None for DARTS (the space's 2/inputs)."""
        if self.partial_k <= 1:
            return None
        return 2.0 * torch.cat([node_softmax(self.betas_normal, self._steps),
                                node_softmax(self.betas_reduce, self._steps)])

    def forward(self, x, arch=None):
        """Returns the logits of the mixed network under the alphas, or, given ``arch``
        (a Genotype), of its single path on the shared weights."""
        w, path = ({}, self.path_of(arch)) if arch is not None else (self.arch_weights(), {})
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            kind = "reduce" if cell.reduction else "normal"
            s0, s1 = s1, cell(s0, s1, w.get(kind), w.get("edge_" + kind), path.get(kind))
        return self.head(s1)

    def path_of(self, arch) -> dict:
        """Returns the single path of a Genotype: ``{"normal", "reduce"}``, each an op
        index into ``primitives`` per edge (the order of ``alphas_normal``'s rows), -1
        for the edges the genotype does not use; raises ValueError for a genotype of
        another node count or concatenation, one that reads a state twice in a node, or
        a PC-DARTS network (single paths run on all channels)."""

        if self.partial_k > 1:
            raise ValueError("single paths need a DARTS supernet (partial_k 1)")
        steps, mult = self._steps, self._multiplier
        edges = cell_edges(steps)
        out = {}
        for kind in ("normal", "reduce"):
            cell = getattr(arch, kind)
            concat = list(getattr(arch, kind + "_concat"))
            if len(cell) != 2 * steps or concat != list(range(2 + steps - mult, 2 + steps)):
                raise ValueError(f"the supernet has {steps} nodes concatenating the last "
                                 f"{mult}; the genotype's {kind} cell does not fit")
            path = [-1] * len(edges)
            for k, (op, j) in enumerate(cell):
                e = edges.index((k // 2, j))
                if path[e] != -1:
                    raise ValueError(f"{kind} node {k // 2} reads state {j} twice")
                path[e] = self.primitives.index(op)
            out[kind] = path
        return out

    def genotype(self):
        """Returns the genotype derived by the DARTS rule from the current weights."""
        from nasbench.spaces.darts_derive import derive_genotype

        with torch.no_grad():
            w = self.arch_weights()
        return derive_genotype(w["normal"], w["reduce"], self._steps, self._multiplier,
                               w.get("edge_normal"), w.get("edge_reduce"), self.primitives)
