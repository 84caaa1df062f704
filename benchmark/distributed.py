"""One cell on several processes (DDP), negatives gathered: equal to one process.

Everything here is inert unless ``torch.distributed`` is initialised with more than one
process (:func:`is_distributed`); the single-process path never calls into it.

Semantics. ``CellConfig.batch_size`` stays the *global* batch: every step, each of the W
processes takes its contiguous 1/W of the same global batch (same seeded order on every
rank), so a cell run on W processes is the cell run on one, with the same row (batch
size, negatives 2B - 2, config hash). W must divide the batch size.

Gather with gradient (:func:`gather`). ``all_gather`` itself has no backward. The
autograd function here puts the process's *own* tensor back into its slice of the
gathered result (pytorch-metric-learning issue #10: a plain gather drops the local
slice's gradient) and, in backward, sums the gradient of the whole gathered tensor over
processes (``all_reduce`` SUM) and returns this process's slice: every process's loss
reads this process's embeddings as candidates, so each of those losses contributes.
Summing a *loss* over ranks with ``all_reduce`` (scaled by 1/W or not) is no substitute:
that collective has no backward (lightly #1920/#1977), so each rank would only ever see
its own terms.

Scaling. Each process computes its *local anchors* against the *gathered candidates*
(labels offset by ``rank * B_local`` so that instance i of rank r is global instance
r B_local + i -- lightly #1176; the anchor's own column is excluded by position, not by
label), and its loss is the mean over its local anchors, L_r. With equal local batches
and a reduction that is a mean over anchors (ntxent, infonce, npair; triplet, whose
anchors all have the same number of valid triplets), the global loss is
L = (1/W) sum_r L_r. The gradient reaching rank r's embeddings is sum_s dL_s/dz_r (the
gather's backward), DDP averages parameter gradients over ranks, so the DDP gradient is
(1/W) sum_r sum_s dL_s/dz_r dz_r/dtheta = dL/dtheta: the single-process gradient on the
concatenated batch. No extra factor W is needed (it would be, had every rank computed
the full loss over all anchors). Reductions that normalise by a batch-wide statistic
(``nce``'s per-batch Z, triplet with ``semihard``) are estimated per process: close to,
but not equal to, the single-process value. ``num_negatives`` subsampling draws per rank.

BatchNorm is synchronised (global statistics, as in SimCLR): ``torch.nn.SyncBatchNorm``
on CUDA; on CPU (gloo) :class:`GatheredBatchNorm` normalises the gathered input, exactly
the single-process computation. MoCo keeps per-process BN (``sync_batchnorm = False``):
its Shuffling BN normalises groups of each process's batch by design.

Method state stays identical on every rank: MoCo enqueues the gathered keys (global batch
order, as one process would), BYOL's / MoCo's EMA runs on identical parameters, NPID
shares one negative draw (broadcast from rank 0), estimates its fixed NCE normaliser
from every rank's pairs and updates its bank once per global batch from the gathered
indices and features. DDP's buffer broadcast is off for that reason (a bank broadcast per
step would be the largest transfer of the step).

Launch: ``torchrun --nproc_per_node 2 -m benchmark.distributed run --method simclr
--dataset digits --batch-size 256 --epochs 20`` (every ``python -m benchmark run`` flag;
rank 0 prints the row), or :func:`train_cell` from a cluster executor.
"""

from __future__ import annotations

import contextlib
import os
import sys

import torch
import torch.distributed as dist
from torch import Tensor, nn

RANK_SEED_STRIDE = 1_000_003  # per-rank augmentation seeds: seed + stride * rank


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


class _Gather(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        parts[dist.get_rank()] = x  # the local slice is this process's own tensor
        ctx.n = len(x)
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)  # every rank's loss reads this slice
        r = dist.get_rank()
        return grad[r * ctx.n : (r + 1) * ctx.n]


def gather(x: Tensor) -> Tensor:
    """Concatenation over ranks (rank order) of equal-shaped tensors, gradient kept."""
    if not is_distributed():
        return x
    if x.requires_grad:
        return _Gather.apply(x)
    return gather_nograd(x)


@torch.no_grad()
def gather_nograd(x: Tensor) -> Tensor:
    if not is_distributed():
        return x
    parts = [torch.empty_like(x) for _ in range(world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts)


def offset(n_local: int) -> int:
    """Global index of this rank's first sample when every rank holds ``n_local``."""
    return rank() * n_local


def gathered_loss(objective, z: Tensor, labels: Tensor) -> Tensor:
    """``objective(z, labels)`` over the global batch: local anchors ``z`` (labels already
    global, i.e. offset by rank) against every rank's ``z``; each anchor's own column is
    neither positive nor negative (the single-process ``objective(Z, Y)`` convention)."""
    all_z, all_labels = gather(z), gather_nograd(labels)
    n = len(z)
    cols = torch.arange(len(all_z), device=z.device)
    own = cols[None, :] == (offset(n) + torch.arange(n, device=z.device))[:, None]
    same = labels[:, None] == all_labels[None, :]
    return objective.masked(z, all_z, same & ~own, ~same)


@torch.no_grad()
def mean(value: Tensor) -> Tensor:
    """The mean of a (detached) scalar over ranks; the value itself on one process."""
    if not is_distributed():
        return value
    out = value.detach().clone().to(torch.float64)
    dist.all_reduce(out)
    return (out / world_size()).to(value.dtype)


@torch.no_grad()
def broadcast(x: Tensor) -> Tensor:
    """Rank 0's ``x`` on every rank (in place)."""
    if is_distributed():
        dist.broadcast(x, src=0)
    return x


# --- BatchNorm with global statistics ---------------------------------------------------


class GatheredBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm over the gathered batch of every rank (CPU stand-in for SyncBatchNorm):
    ``F.batch_norm`` on the gathered input -- the single-process computation, running
    statistics included -- then this rank's rows. Gradients flow through :func:`gather`."""

    def _check_input_dim(self, x: Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2D input, got {x.dim()}D")

    def forward(self, x: Tensor) -> Tensor:
        if not (self.training and is_distributed()):
            return super().forward(x)
        full = gather(x)
        out = super().forward(full)
        r = rank()
        return out[r * len(x) : (r + 1) * len(x)]


def _to_gathered(module: nn.Module) -> nn.Module:
    out = module
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        out = GatheredBatchNorm(
            module.num_features, module.eps, module.momentum, module.affine,
            module.track_running_stats,
        )  # fmt: skip
        if module.affine:
            out.weight, out.bias = module.weight, module.bias
        if module.track_running_stats:
            out.running_mean, out.running_var = module.running_mean, module.running_var
            out.num_batches_tracked = module.num_batches_tracked
        out.train(module.training)
    for name, child in module.named_children():
        out.add_module(name, _to_gathered(child))
    return out


def sync_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """Every BatchNorm of ``module`` with global statistics (same parameters and buffers)."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return _to_gathered(module)


# --- the training hooks ------------------------------------------------------------------


class _Step(nn.Module):
    """DDP needs a ``forward``: the method's training loss."""

    def __init__(self, method: nn.Module) -> None:
        super().__init__()
        self.method = method

    def forward(self, batch) -> Tensor:
        return self.method.training_loss(batch)


def prepare(method: nn.Module, seed: int):
    """Synchronised BN, the method wrapped in DDP, per-rank augmentation seeds; returns the
    callable ``batch -> loss`` that :func:`benchmark.train.fit` steps with."""
    device = next(method.parameters()).device
    if getattr(method, "sync_batchnorm", True):
        for name, child in list(method.named_children()):
            setattr(method, name, sync_batchnorm(child, device))
    ddp = nn.parallel.DistributedDataParallel(
        _Step(method),
        device_ids=[device] if device.type == "cuda" else None,
        broadcast_buffers=False,
        find_unused_parameters=True,
    )
    torch.manual_seed(seed + RANK_SEED_STRIDE * rank())
    return ddp


def shard(rows: Tensor) -> Tensor:
    """This rank's contiguous share of the global batch ``rows``."""
    w = world_size()
    if len(rows) % w:
        raise ValueError(f"batch size {len(rows)} is not divisible by {w} processes")
    return rows.tensor_split(w)[rank()]


def init(backend: str | None = None) -> torch.device:
    """``init_process_group`` from torchrun's environment; the device of this rank."""
    if not dist.is_initialized():
        backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
        dist.init_process_group(backend)
    if torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return torch.device("cuda", local)
    return torch.device("cpu")


def train_cell(cfg, *, data=None, test: bool = True, backend: str | None = None):
    """Train one cell on every process of the job (call it on each; torchrun or a
    submitit task sets RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT). Rank 0 returns the
    results row, the others None."""
    from benchmark.train import run_cell

    init(backend)
    r = rank()
    try:
        row = run_cell(cfg, data=data, test=test, progress=r == 0)
    finally:
        dist.destroy_process_group()
    return row if r == 0 else None


def main(argv: list[str] | None = None) -> int:
    """``torchrun ... -m benchmark.distributed <subcommand> ...``: the subcommand (``run``)
    with the process group up; the other ranks' standard output is discarded."""
    from benchmark import cli

    init()
    r = rank()
    try:
        with contextlib.redirect_stdout(open(os.devnull, "w")) if r else contextlib.nullcontext():
            return cli.main(sys.argv[1:] if argv is None else argv)
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
