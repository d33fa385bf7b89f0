"""Data-parallel one-shot search under ``torchrun`` (torch.distributed, DDP).

Launch the same ``nasbench search`` command with torchrun::

    torchrun --nproc-per-node 2 -m nasbench search --method darts ...

Each process (rank) runs the whole search; the runner (:mod:`.runner`) joins the
process group when torchrun's ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` are set
(:func:`session`). Only rank 0 profiles a missing LUT (the others wait, then load it),
writes the run directory, the log and the report; the other ranks' logs are silent and
they stop after the search phase (the retrain, measurement and references are rank 0's).

The mechanism keeps a data-parallel search equal to one process with the same global
batch:

* every rank draws the *same* global batch (the loaders are seeded alike) and trains on
  its own slice of it (:func:`shard`);
* the weight step runs through :func:`data_parallel` (``DistributedDataParallel``,
  the architecture parameters excluded): the gradients are averaged, each rank weighed
  by its share of the global batch (exact also for an uneven last batch);
* the architecture step's data gradients go through :func:`average_grads` (the same
  weighted mean), so the alphas get one update, bit-identical on every rank;
* BatchNorm: the supernets normalise with batch statistics, and per-rank statistics of
  a slice differ from those of the whole batch. ``nn.SyncBatchNorm`` refuses CPU
  tensors in this torch (the search trains on the CPU), so :func:`sync_batchnorm` gives
  the supernet's BatchNorm layers the statistics of the global batch through a
  differentiable all-reduce (:class:`GlobalBatchNorm2d`), running statistics included;
* per-step figures (loss, accuracy) are summed over the ranks (:func:`global_sums`).

What stays different from one process is floating-point rounding (sums in another
order); tests/test_distributed.py measures it. The search trains on the CPU, so the
backend is gloo (nccl would need the training tensors on a GPU).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import os

import torch
import torch.distributed as dist
from torch import nn

from nasbench.errors import UserError
from nasbench.registry import SEARCHERS

#: how long a rank waits for the others at a collective: rank 0 may profile a LUT while
#: the others wait (torchrun ends every rank when one of them fails)
TIMEOUT = _dt.timedelta(hours=12)

_bn_group = None            # BatchNorm statistics travel on their own process group


def launched() -> bool:
    """Returns True when torchrun (or another launcher) started this process as one of
    several ranks (``WORLD_SIZE`` > 1 in the environment)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def is_distributed() -> bool:
    """Returns True inside a process group of more than one rank."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """Returns this process's rank (0 outside a process group)."""
    return dist.get_rank() if is_distributed() else 0


def world() -> int:
    """Returns the number of ranks (1 outside a process group)."""
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    """Returns True on rank 0 (and in a single process): the rank that writes."""
    return rank() == 0


def setup(backend: str = "gloo") -> bool:
    """Joins torchrun's process group (``backend`` gloo: the search trains on the CPU)
    when this process was launched as one of several ranks; returns whether it is now
    data-parallel. Idempotent."""
    global _bn_group
    if not launched() or is_distributed():
        return is_distributed()
    for var in ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        if var not in os.environ:
            raise UserError(f"WORLD_SIZE is set but {var} is not: launch data-parallel "
                            f"runs with torchrun --nproc-per-node N -m nasbench search ...")
    dist.init_process_group(backend, timeout=TIMEOUT)
    _bn_group = dist.new_group(backend=backend, timeout=TIMEOUT)
    return True


def teardown() -> None:
    """Leaves the process group (nothing outside one)."""
    global _bn_group
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    _bn_group = None


@contextlib.contextmanager
def session(backend: str = "gloo"):
    """Runs the block inside torchrun's process group when launched by it (see
    :func:`setup`), leaving the group afterwards; a plain block otherwise."""
    joined = not is_distributed() and setup(backend)
    try:
        yield
    finally:
        if joined:
            teardown()


@contextlib.contextmanager
def main_first():
    """Runs the block on rank 0 first, then on the other ranks (which wait on a barrier
    meanwhile): e.g. rank 0 profiles a missing LUT, the others load the file it wrote.
    Nothing waits outside a process group; a rank 0 that fails does not release the
    others (torchrun ends them)."""
    if not is_distributed():
        yield
        return
    if not is_main():
        dist.barrier()
    yield
    if is_main():
        dist.barrier()


def broadcast_object(obj):
    """Returns rank 0's ``obj`` on every rank (``obj`` itself outside a process group)."""
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


# ---- data -------------------------------------------------------------------------------


def shard(*tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Returns this rank's slice (along dim 0) of each tensor of a global batch:
    contiguous slices whose sizes differ by at most one. A batch with fewer samples
    than ranks is given whole to every rank (each then weighs 1/ranks). Outside a
    process group: the tensors themselves."""
    if not is_distributed():
        return tensors
    w, r = world(), rank()
    return tuple(t if t.shape[0] < w else t.tensor_split(w)[r] for t in tensors)


def global_sums(*values: float) -> list[float]:
    """Returns the sums over the ranks of ``values`` (e.g. loss x samples, correct,
    samples of this rank's slice); the values themselves outside a process group."""
    if not is_distributed():
        return [float(v) for v in values]
    t = torch.tensor([float(v) for v in values], dtype=torch.float64)
    dist.all_reduce(t)
    return t.tolist()


def average_grads(grads, n: int) -> list[torch.Tensor]:
    """Returns the gradients of the global batch from this rank's ``grads`` (of the mean
    loss over its ``n`` samples): the mean over the ranks weighed by their samples, in
    one all-reduce (float64 sums); the gradients themselves outside a process group."""
    grads = list(grads)
    if not is_distributed():
        return grads
    flat = torch.cat([g.detach().reshape(-1).double() * n for g in grads]
                     + [torch.tensor([float(n)], dtype=torch.float64)])
    dist.all_reduce(flat)
    flat = flat[:-1] / flat[-1]
    out, i = [], 0
    for g in grads:
        out.append(flat[i:i + g.numel()].view_as(g).to(g.dtype))
        i += g.numel()
    return out


def grad_reducer():
    """Returns :func:`average_grads` in a data-parallel run, else None (the hook of the
    architecture steps: ``reduce(grads, n) -> grads``)."""
    return average_grads if is_distributed() else None


# ---- BatchNorm ---------------------------------------------------------------------------


class _AllReduceSum(torch.autograd.Function):
    """The sum over the ranks (on the BatchNorm group), differentiable: the gradient of
    a sum shared by every rank is the sum of the ranks' gradients."""

    @staticmethod
    def forward(ctx, x):
        x = x.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(x, group=_bn_group)
        return x

    @staticmethod
    def backward(ctx, grad):
        grad = grad.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(grad, group=_bn_group)
        return grad


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training-mode statistics are those of the global batch (all the
    ranks' slices): mean and variance through a differentiable all-reduce, running
    statistics updated as one process would (unbiased variance). Outside training or a
    process group it is a plain BatchNorm2d. :func:`sync_batchnorm` turns a network's
    BatchNorm2d layers into it in place."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and is_distributed()):
            return super().forward(x)
        c, dims = x.shape[1], (0, 2, 3)
        n = x.numel() / c
        # one all-reduce per layer: each rank's sum and centred sum of squares (stable in
        # float32), combined in float64 (Chan et al.'s parallel variance)
        local_mean = x.mean(dims)
        m2 = ((x - local_mean.view(1, c, 1, 1)) ** 2).sum(dims).double()
        local_mean = local_mean.double()
        part = torch.cat([n * local_mean, m2 + n * local_mean ** 2,
                          local_mean.new_tensor([n])])
        total = _AllReduceSum.apply(part)
        count = total[-1].detach()
        mean64 = total[:c] / count
        var64 = (total[c:2 * c] - count * mean64 ** 2).clamp_min(0.0) / count
        mean, var = mean64.to(x.dtype), var64.to(x.dtype)
        y = (x - mean.view(1, c, 1, 1)) * torch.rsqrt(var + self.eps).view(1, c, 1, 1)
        if self.affine:
            y = y * self.weight.view(1, c, 1, 1) + self.bias.view(1, c, 1, 1)
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = (self.momentum if self.momentum is not None
                     else 1.0 / float(self.num_batches_tracked))
                unbiased = var * (count / (count - 1).clamp_min(1.0))
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(unbiased.detach(), alpha=m)
        return y


def sync_batchnorm(model: nn.Module) -> nn.Module:
    """Makes every ``nn.BatchNorm2d`` of ``model`` a :class:`GlobalBatchNorm2d` in place
    (same object, parameters and buffers: modules shared elsewhere, such as the DARTS
    supernet's shared ReLU tails, keep working; the state dict is unchanged); returns
    ``model``."""
    for m in model.modules():
        if type(m) is nn.BatchNorm2d:
            m.__class__ = GlobalBatchNorm2d
    return model


# ---- the weight step's wrapper ------------------------------------------------------------


class _ShareWeightedDDP(nn.parallel.DistributedDataParallel):
    """DistributedDataParallel whose gradient mean weighs each rank by its share of the
    global batch (set at each forward from the batch sizes), so an uneven last batch
    averages like one process."""

    def forward(self, *inputs, **kwargs):
        n = inputs[0].shape[0]
        self._share[0] = n / global_sums(n)[0]
        return super().forward(*inputs, **kwargs)


def _weighted_allreduce(share: list[float], bucket):
    buf = bucket.buffer()
    buf.mul_(share[0])
    fut = dist.all_reduce(buf, async_op=True).get_future()
    return fut.then(lambda f: f.value()[0])


def data_parallel(model: nn.Module, find_unused: bool = False,
                  sync_bn: bool = False) -> nn.Module:
    """Returns the module the weight step runs its forward through: in a data-parallel
    run ``model`` (with BatchNorm of the whole batch given ``sync_bn``, see
    :func:`sync_batchnorm`), rank 0's weights and architecture parameters broadcast to
    every rank, wrapped in DistributedDataParallel over its weights only
    (``model.arch_parameters()`` are left out: the architecture step averages its own
    gradients, see :func:`average_grads`); ``model`` itself outside a process group.
    ``find_unused``: paths that may not run in a step (ProxylessNAS's sampled path)."""
    if not is_distributed():
        return model
    if sync_bn:
        sync_batchnorm(model)
    arch = model.arch_parameters()
    with torch.no_grad():
        for p in arch:
            dist.broadcast(p.data, src=0)
    # DDP keeps the parameters that require grad when it is built: the weights only
    for p in arch:
        p.requires_grad_(False)
    try:
        # BatchNorm's running statistics: the same on every rank with sync_bn, else
        # rank 0's (broadcast before each forward, as DDP does by default)
        ddp = _ShareWeightedDDP(model, find_unused_parameters=find_unused,
                                forward_sync_buffers=not sync_bn)
    finally:
        for p in arch:
            p.requires_grad_(True)
    ddp._share = [1.0 / world()]
    ddp.register_comm_hook(ddp._share, _weighted_allreduce)
    return ddp


# ---- checks ------------------------------------------------------------------------------


def state_digest(module: nn.Module) -> str:
    """Returns the sha256 of ``module``'s parameters and buffers (names, dtypes, shapes
    and bytes): equal on two ranks exactly when their states are bit-identical."""
    h = hashlib.sha256()
    for name, t in module.state_dict().items():
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def check_replicas(module: nn.Module) -> str:
    """Returns the state digest of ``module`` (:func:`state_digest`) after checking it is
    the same on every rank; raises RuntimeError naming the ranks that diverged. Without
    synchronised BatchNorm the ranks' running statistics are first set to rank 0's."""
    if is_distributed() and not any(isinstance(m, GlobalBatchNorm2d)
                                    for m in module.modules()):
        # per-rank BatchNorm: the running statistics are rank 0's (DDP broadcasts them
        # before each forward; the last forward moved each rank's own)
        with torch.no_grad():
            for b in module.buffers():
                dist.broadcast(b, src=0)
    mine = state_digest(module)
    if not is_distributed():
        return mine
    every = [None] * world()
    dist.all_gather_object(every, mine)
    odd = [r for r, d in enumerate(every) if d != every[0]]
    if odd:
        raise RuntimeError(f"data-parallel ranks {odd} hold other weights or architecture "
                           f"parameters than rank 0")
    return mine


def check_searcher(searcher_cls) -> None:
    """Raises UserError unless ``searcher_cls`` runs data-parallel (its ``data_parallel``
    attribute: the one-shot searchers), naming those that do."""
    if getattr(searcher_cls, "data_parallel", False):
        return
    ok = ", ".join(m for m, c in SEARCHERS.load_all().items()
                   if getattr(c, "data_parallel", False))
    raise UserError(f"--method {', '.join(searcher_cls.methods)} does not run "
                    f"data-parallel: launch it without torchrun (torchrun runs {ok})")


def describe(batch_size: int) -> str:
    """Returns the log line of a data-parallel run with global batch ``batch_size``."""
    return (f"data-parallel over {world()} processes (torchrun, gloo): each trains on its "
            f"slice of every batch of {batch_size}, gradients averaged (DDP), BatchNorm "
            f"statistics of the whole batch")
