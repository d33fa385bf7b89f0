"""Fusion analysis of a traced module for the OpenCL executor: which BatchNorms fold
into which convolutions, which ReLUs and adds fuse into them, which ReLUs are applied by
their consumers on load, and which producers write straight into a concat's slice."""

from __future__ import annotations

import operator

import torch
import torch.nn.functional as F
from torch import fx, nn

_RELU_FUNCS = {torch.relu, F.relu}
_ADD_FUNCS = {operator.add, torch.add}
_MUL_FUNCS = {operator.mul, torch.mul}
_CAT_FUNCS = {torch.cat, torch.concat}
FLATTEN_FUNCS = {torch.flatten}


class FusionGraph:
    """Node classification and fusion decisions for one traced module."""

    def __init__(self, gm: fx.GraphModule):
        self.gm = gm
        self.modules = dict(gm.named_modules())
        self.nodes = list(gm.graph.nodes)
        self.bn_into: dict = {}        # folded bn node -> conv node
        self.cat_bn: dict = {}         # bn node -> cat node (bn folded into member convs)
        self.bn_slice: dict = {}       # member conv -> (bn module, channel offset)
        self.group_end: dict = {}      # conv node -> node whose value the group produces
        self.group_of_end: dict = {}   # end node -> conv node
        self.post_relu: set = set()    # conv nodes with ReLU epilogue
        self.add_of: dict = {}         # conv node -> fused add node
        self.inner: set = set()        # nodes folded into a group (no own value)
        self.lazy_relu: set = set()    # relu nodes applied by their consumers on load
        self.cat_slot: dict = {}       # node -> (cat node, channel offset)
        self._analyse()

    # -- classification --
    def mod(self, n):
        return self.modules.get(n.target) if n.op == "call_module" else None

    def is_mod(self, n, cls) -> bool:
        return isinstance(self.mod(n), cls)

    def is_relu(self, n) -> bool:
        return (self.is_mod(n, nn.ReLU) or (n.op == "call_function" and n.target in _RELU_FUNCS)
                or (n.op == "call_method" and n.target == "relu"))

    def is_add(self, n) -> bool:
        tensor_args = len(n.args) == 2 and all(isinstance(a, fx.Node) for a in n.args)
        plain = tensor_args and not n.kwargs
        if n.op == "call_function" and n.target in _ADD_FUNCS:
            return plain
        return n.op == "call_method" and n.target == "add" and plain

    def is_cat(self, n) -> bool:
        return n.op == "call_function" and n.target in _CAT_FUNCS

    def foldable_bn(self, n) -> bool:
        m = self.mod(n)
        return isinstance(m, nn.BatchNorm2d) and m.running_mean is not None

    @staticmethod
    def only_user(n):
        return next(iter(n.users)) if len(n.users) == 1 else None

    @staticmethod
    def shape(n) -> tuple:
        return tuple(n.meta["tensor_meta"].shape)

    def cat_dim(self, n) -> int:
        dim = n.args[1] if len(n.args) > 1 else n.kwargs.get("dim", 0)
        rank = len(self.shape(n))
        return dim + rank if dim < 0 else dim

    # -- analysis --
    def _analyse(self) -> None:
        for n in self.nodes:  # BN after a concat of single-use convs: fold per slice
            if not self.foldable_bn(n):
                continue
            cat = n.args[0]
            if not (isinstance(cat, fx.Node) and self.is_cat(cat) and len(cat.users) == 1
                    and self.cat_dim(cat) == 1):
                continue
            members = list(cat.args[0])
            if (len(set(members)) == len(members)
                    and all(self.is_mod(m, nn.Conv2d) and len(m.users) == 1 for m in members)):
                self.cat_bn[n] = cat
                off = 0
                for m in members:
                    self.bn_slice[m] = (self.mod(n), off)
                    off += self.shape(m)[1]
        for n in self.nodes:
            if self.is_mod(n, nn.Conv2d):
                self._group(n)
        for n in self.nodes:
            if self.is_relu(n) and n not in self.inner and n not in self.group_of_end:
                if n.users and all(self._conv_reader(u, n) for u in n.users):
                    self.lazy_relu.add(n)
        for n in self.nodes:  # producers of a channel concat write into their slice
            if self.is_cat(n) and self.cat_dim(n) == 1 and len(self.shape(n)) in (2, 4):
                members = list(n.args[0])
                off = 0
                for m in members:
                    if (members.count(m) == 1 and m not in self.cat_slot
                            and self.is_producer(m)):
                        self.cat_slot[m] = (n, off)
                    off += self.shape(m)[1]

    def _group(self, conv) -> None:
        end = conv
        if conv not in self.bn_slice:
            u = self.only_user(end)
            if u is not None and self.foldable_bn(u) and u.args[0] is end:
                self.bn_into[u] = conv
                self.inner.add(end)
                end = u
            u = self.only_user(end)
            if u is not None and self.is_relu(u) and u.args[0] is end:
                self.post_relu.add(conv)
                self.inner.add(end)
                end = u
            u = self.only_user(end)
            if (u is not None and self.is_add(u) and u not in self.group_of_end
                    and self.shape(u.args[0]) == self.shape(u.args[1])
                    and u.args[0] is not u.args[1]):
                self.add_of[conv] = (u, end)
                self.inner.add(end)
                end = u
        self.group_end[conv] = end
        self.group_of_end[end] = conv

    def _conv_reader(self, u, src) -> bool:
        if self.is_mod(u, nn.Conv2d) and u.args[0] is src:
            return True
        if u.op == "call_function" and u.target is operator.getitem and u.args[0] is src:
            return bool(u.users) and all(self.is_mod(w, nn.Conv2d) for w in u.users)
        return False

    def is_producer(self, n) -> bool:
        """True when ``n``'s value is written fresh by one kernel (so it may be placed in
        a concat slice): not an alias, view, input or concat."""
        if n.op not in ("call_module", "call_function", "call_method"):
            return False
        if n in self.inner or n in self.lazy_relu or self.is_cat(n) or n in self.cat_bn:
            return False
        if n in self.group_of_end:
            return True
        m = self.mod(n)
        if m is not None:
            return isinstance(m, (nn.BatchNorm2d, nn.ReLU, nn.MaxPool2d, nn.AvgPool2d,
                                  nn.AdaptiveAvgPool2d, nn.Linear))
        return self.is_relu(n) or self.is_add(n) or self.is_mul(n)

    def is_mul(self, n) -> bool:
        return ((n.op == "call_function" and n.target in _MUL_FUNCS)
                or (n.op == "call_method" and n.target == "mul"))
