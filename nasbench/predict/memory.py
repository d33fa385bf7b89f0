"""Peak memory of a deploy network from its buffer schedule, not a sum of per-op peaks.

The network is traced with ``torch.fx`` and its shapes propagated; then its nodes are
walked in execution order as the device's allocator holds them (:class:`MemoryModel`):

* ``torch`` (CPU, CUDA: torch's eager allocator, which frees a tensor at its last use):
  each node's output is allocated when the node runs and freed after its last user;
  views (``view``, ``flatten``, ``getitem``...) and in-place ops (``ReLU(inplace=True)``,
  ``add_``) share their input's storage. While a node runs its inputs, its output and
  its **workspace** are live: the scratch memory the op's kernel allocates besides its
  output (CPU convolutions unfold their input, im2col: up to k x k x its size; max
  pooling keeps int64 indices). Workspaces depend on the kernels the device's torch
  picks, so they are *measured*, once per leaf module and input shape, on the device
  (:class:`Workspaces`; a lookup table of scratch memory, the way a LUT is one of
  latencies).
* ``opencl`` (nasbench's OpenCL executor): BatchNorm is folded into the convolution
  before it and ReLU into the reads of the next kernel, so both share their input's
  storage; every storage carries the executor's guard band; weights are the folded
  convolution/linear weights and biases; kernels need no workspace.

The peak is the largest live sum over the schedule, the input included, plus the
weights (resident throughout). What it leaves out, and the validation shows apart:
allocator rounding and caching, and memory a library allocates behind torch's back.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from kernels.fusion import FusionGraph
from nasbench.errors import UserError
from profilers.memory import measure_allocated

#: tensor methods and functions whose result shares its input's storage
VIEW_METHODS = {"view", "reshape", "flatten", "squeeze", "unsqueeze", "permute",
                "transpose", "expand", "narrow", "select", "chunk", "split", "unbind",
                "view_as", "detach", "t", "contiguous"}
VIEW_FUNCTIONS = {operator.getitem, torch.flatten, torch.reshape, torch.squeeze,
                  torch.unsqueeze, torch.transpose, torch.permute, torch.chunk,
                  torch.split, getattr}
#: the OpenCL executor's guard band: elements of slack on each side of every storage
OPENCL_GUARD = 64
#: modules the OpenCL executor passes through (no storage of their own); which
#: BatchNorms and ReLUs it folds away, its fusion analysis says
OPENCL_FOLDED = (nn.Identity, nn.Dropout)


@dataclass
class MemoryPlan:
    """The buffer schedule's figures (bytes): ``activation_peak`` (the largest live sum
    of activations and workspaces, input included), ``weights`` (parameters and
    buffers), ``input`` (the input tensor), ``naive`` (input plus every node's output,
    as if nothing were freed), ``at`` (the node running at the peak), ``model`` (the
    allocator model: torch or opencl)."""

    activation_peak: int
    weights: int
    input: int
    naive: int
    at: str
    model: str = "torch"

    @property
    def peak(self) -> int:
        """Returns the predicted peak of the whole network (bytes)."""
        return self.activation_peak + self.weights

    def to_dict(self) -> dict:
        """Returns the figures as a dict (bytes), ``peak`` included."""
        return {**self.__dict__, "peak": self.peak}


def _nbytes(meta) -> int:
    if meta is None:
        return 0
    if hasattr(meta, "shape") and hasattr(meta, "dtype"):   # (TensorMetadata is a tuple)
        n = 1
        for d in meta.shape:
            n *= int(d)
        return n * torch.empty((), dtype=meta.dtype).element_size()
    if isinstance(meta, (tuple, list)):
        return sum(_nbytes(m) for m in meta)
    return 0


def _numel(meta) -> int:
    return _nbytes(meta) // 4 if meta is not None else 0


class Workspaces:
    """Scratch memory of leaf modules on one torch device (bytes), measured once per
    (module, input shape and strides) with the device's allocator meter and kept for
    the process. ``measured`` counts the measurements made."""

    def __init__(self, device: str = "cpu"):
        self.device = device
        self.table: dict[str, int] = {}
        self.measured = 0

    def key(self, module: nn.Module, shape: tuple, stride: tuple) -> str:
        """Returns the table key of ``module`` on an input of ``shape`` and ``stride``
        (a strided view, e.g. a shifted slice, is copied by some kernels: it counts)."""
        return (f"{module!r}@{'x'.join(str(int(s)) for s in shape)}"
                f"/{'.'.join(str(int(s)) for s in stride)}")

    def __call__(self, module: nn.Module, shape: tuple, stride: tuple,
                 out_bytes: int) -> int:
        """Returns the workspace of ``module`` on an input of ``shape`` and ``stride``
        (bytes beyond its ``out_bytes`` output; measured on first use)."""
        k = self.key(module, shape, stride)
        if k not in self.table:
            self.table[k] = max(0, self._measure(module, shape, stride) - out_bytes)
            self.measured += 1
        return self.table[k]

    def _measure(self, module: nn.Module, shape: tuple, stride: tuple) -> int:
        dev = torch.device(self.device)
        m = module.to(dev)
        extent = 1 + sum((int(n) - 1) * int(s) for n, s in zip(shape, stride, strict=True))
        x = torch.randn(extent, device=dev).as_strided(shape, stride)

        def run():
            with torch.no_grad():
                return m(x)
        r = measure_allocated(dev.type, run, dev.index or 0)   # (a warm call)
        if r.peak_bytes is None:
            raise UserError(f"cannot measure workspaces on {self.device}: {r.reason}")
        return r.peak_bytes


def _trace(net: nn.Module, example: torch.Tensor) -> fx.GraphModule:
    try:
        gm = fx.symbolic_trace(net)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)     # small tensors: one thread is faster and quieter
        try:
            with torch.no_grad():
                ShapeProp(gm).propagate(example)
        finally:
            torch.set_num_threads(threads)
    except Exception as e:  # noqa: BLE001 - any tracing failure: one line
        raise UserError(f"cannot plan the memory of {type(net).__name__}: torch.fx "
                        f"cannot trace it ({e.__class__.__name__}: {e})") from None
    return gm


def _aliases(gm: fx.GraphModule, node: fx.Node, model: str) -> bool:
    """Returns whether ``node``'s result shares the storage of its first input."""
    if node.op == "call_method":
        return node.target in VIEW_METHODS or str(node.target).endswith("_")
    if node.op == "call_function":
        return node.target in VIEW_FUNCTIONS or bool(node.kwargs.get("inplace"))
    if node.op == "call_module":
        m = gm.get_submodule(node.target)
        if model == "opencl" and isinstance(m, OPENCL_FOLDED):
            return True
        return bool(getattr(m, "inplace", False)) or isinstance(m, (nn.Identity,
                                                                    nn.Flatten))
    return False


def _opencl_weights(net: nn.Module) -> int:
    """Returns the bytes of the OpenCL executor's weights: convolution and linear
    weights, and one bias per output channel (BatchNorm folded into it)."""
    total = 0
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            total += 4 * (m.weight.numel() + m.weight.shape[0])
    return total


def _torch_storages(gm: fx.GraphModule, nodes: list) -> tuple[dict, dict]:
    """Returns ({node: the node owning its storage}, {node: the step it runs at}) under
    torch's eager allocator (every node runs in order)."""
    storage: dict[fx.Node, fx.Node] = {}
    for n in nodes:
        if n.op == "output":
            continue
        first = next((a for a in n.all_input_nodes if a in storage), None)
        if first is not None and _aliases(gm, n, "torch"):
            storage[n] = storage[first]
        elif n.op in ("placeholder", "call_module", "call_function", "call_method"):
            storage[n] = n
    return storage, {n: i for i, n in enumerate(nodes)}


def _opencl_storages(gm: fx.GraphModule, nodes: list) -> tuple[dict, dict]:
    """Returns ({node: the node owning its storage}, {node: the step it runs at}) as the
    OpenCL executor lays values out and orders its launches (its own fusion analysis):
    a convolution's group (BatchNorm, ReLU and add fused into it) writes one storage,
    owned by the group's end, in one launch at the end's place; a ReLU its consumers
    apply on load, a view and a folded module share their input's; a producer feeding a
    channel concat writes into the concat's storage."""
    g = FusionGraph(gm)
    storage: dict[fx.Node, fx.Node] = {}
    at = {n: i for i, n in enumerate(nodes)}
    end_of = {}
    for conv, end in g.group_end.items():
        end_of[conv] = end
        n = conv
        while n is not end:                   # the group runs where its end is
            at[n] = at[end]
            n = next(iter(n.users))
    for n in nodes:
        if n.op == "output":
            continue
        first = next((a for a in n.all_input_nodes if a in storage), None)
        if n in g.cat_slot:
            storage[n] = g.cat_slot[n][0]
        elif n in end_of:                     # the conv writes its group's value
            end = end_of[n]
            storage[n] = g.cat_slot[end][0] if end in g.cat_slot else end
        elif n in g.group_of_end and g.group_of_end[n] in storage:
            storage[n] = storage[g.group_of_end[n]]
        elif n in g.inner or n in g.lazy_relu or (
                first is not None and _aliases(gm, n, "opencl")):
            storage[n] = storage[first] if first is not None else n
        elif n.op in ("placeholder", "call_module", "call_function", "call_method"):
            storage[n] = n
    return storage, at


def plan_memory(net: nn.Module, example: torch.Tensor, model: str = "torch",
                workspaces: Workspaces | None = None) -> MemoryPlan:
    """Returns the :class:`MemoryPlan` of ``net`` (in eval mode, no autograd) on an
    input like ``example`` under the allocator ``model`` (``torch`` or ``opencl``, see
    the module doc); ``workspaces`` (torch) gives each leaf module's scratch memory
    (none: 0). Raises UserError when the network cannot be traced."""
    net = net.eval()
    gm = _trace(net, example)
    nodes = list(gm.graph.nodes)
    pos = {n: i for i, n in enumerate(nodes)}
    storage, at = (_opencl_storages if model == "opencl" else _torch_storages)(gm, nodes)
    guard = 4 * 2 * OPENCL_GUARD if model == "opencl" else 0
    first = {}
    for n, s in storage.items():              # allocated at its first write
        first[s] = min(first.get(s, at[n]), at[n])
    # storages in the order they are created (allocation and frees within a step
    # follow it, and a best-fit arena depends on that order)
    owners = sorted(set(storage.values()), key=lambda s: (first[s], pos[s]))
    size = {s: _nbytes(s.meta.get("tensor_meta")) for s in owners}
    size = {s: b + (guard if b else 0) for s, b in size.items()}
    last = dict(first)
    for n, s in storage.items():
        for u in n.users:
            # the output node keeps what it returns alive to the end
            last[s] = max(last[s], len(nodes) if u.op == "output" else at[u])
    scratch: dict[fx.Node, int] = {}
    if workspaces is not None and model == "torch":
        for n in nodes:
            src = n.args[0] if n.args and isinstance(n.args[0], fx.Node) else None
            if n.op == "call_module" and src is not None:
                meta = src.meta["tensor_meta"]
                own = _nbytes(n.meta.get("tensor_meta")) if storage[n] is n else 0
                scratch[n] = workspaces(gm.get_submodule(n.target), tuple(meta.shape),
                                        tuple(meta.stride), own)
    starts: dict[int, list] = {}
    frees: dict[int, list] = {}
    for s in size:
        starts.setdefault(first[s], []).append(s)
        frees.setdefault(last[s], []).append(s)
    arena: list[list] = []         # OpenCL: physical buffers [bytes, busy], best fit
    held: dict = {}
    live = peak = 0
    at = ""
    for i, n in enumerate(nodes):
        for s in starts.get(i, []):
            live += size[s]
            if model == "opencl" and s.op != "placeholder":
                free = [b for b in arena if not b[1] and b[0] >= size[s]]
                slot = min(free, key=lambda b: b[0]) if free else [size[s], True]
                if not free:
                    arena.append(slot)
                slot[1] = True
                held[s] = slot
        if live + scratch.get(n, 0) > peak:
            peak, at = live + scratch.get(n, 0), n.name
        for s in frees.get(i, []):
            live -= size[s]
            if s in held:
                held[s][1] = False
    naive = sum(_nbytes(n.meta.get("tensor_meta")) for n in nodes
                if n.op in ("placeholder", "call_module", "call_function", "call_method"))
    inp = example.numel() * example.element_size()
    if model == "opencl":
        # the executor holds its arena whole: the input plus every physical buffer
        peak = sum(b[0] for b in arena) + inp + guard
        weights = _opencl_weights(net)
    else:
        weights = sum(p.numel() * p.element_size() for p in net.parameters()) + \
            sum(b.numel() * b.element_size() for b in net.buffers())
    return MemoryPlan(int(peak), int(weights), int(inp), int(naive), at, model)


def allocator_model(device: str) -> tuple[str, str | None]:
    """Returns (allocator model, torch device whose workspaces are measured, or None) of
    a device spec: ``cpu`` -> torch on cpu; ``cuda[:i]``/``rocm[:i]`` -> torch on that
    GPU (None when torch sees none here: no workspaces); ``opencl...`` -> opencl."""
    spec = str(device).lower()
    if spec.startswith("opencl"):
        return "opencl", None
    if spec.startswith(("cuda", "rocm")):
        idx = spec.partition(":")[2] or "0"
        ok = torch.cuda.is_available() and idx.isdigit() and \
            int(idx) < torch.cuda.device_count()
        return "torch", f"cuda:{idx}" if ok else None
    if spec == "cpu":
        return "torch", "cpu"
    raise UserError(f"cannot plan the memory of device {device!r} (use cpu, cuda[:i], "
                    f"rocm[:i] or an opencl device)")


class MemoryPlanner:
    """The peak memory of ``space``'s deploy networks on ``device`` (a device spec): a
    :class:`MemoryPlan` per architecture, cached. ``note`` says what the plan lacks
    (a GPU that is not here: no measured workspaces)."""

    def __init__(self, space, device: str = "cpu"):
        self.space, self.device = space, str(device)
        self.model, ws_device = allocator_model(device)
        self.workspaces = Workspaces(ws_device) if ws_device else None
        self.note = None if self.model == "opencl" or ws_device else \
            f"{device} is not reachable here: its kernels' workspaces are not counted"
        self._plans: dict[str, MemoryPlan] = {}

    def plan(self, arch) -> MemoryPlan:
        """Returns the memory plan of ``arch``'s deploy network (the deploy batch,
        float32)."""
        key = self.space.arch_id(arch)
        if key not in self._plans:
            d = self.space.deploy
            net = self.space.build(arch)
            x = torch.zeros(d.batches[0], d.in_channels, d.input_size, d.input_size)
            self._plans[key] = plan_memory(net, x, self.model, self.workspaces)
        return self._plans[key]

    def __call__(self, arch) -> float:
        """Returns the predicted peak memory of ``arch``'s deploy network (bytes)."""
        return float(self.plan(arch).peak)
