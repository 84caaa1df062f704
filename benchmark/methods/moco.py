"""MoCo (He et al. 2020; v2 projector): a momentum key encoder and a queue of K negatives."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmark import distributed
from benchmark.encoders import Head
from benchmark.methods.base import (
    ALL_OBJECTIVES,
    COUNT,
    FLAG,
    UNIT,
    Augment,
    Batch,
    Method,
    Objective,
    ema_update,
    momentum_copy,
    register_method,
)

# shuffling BN never makes a group smaller than this (BN statistics of fewer samples are
# noise); the paper's per-GPU batch was 32
MIN_GROUP = 16


@register_method("moco")
class MoCo(Method):
    """Queries q = g(f(x')) are the anchors; keys k = g'(f'(x'')) come from a momentum copy
    of the encoder and projector (Alg. 1 of He et al. 2020).

    Candidates of query i (the paper's logits ``[l_pos, l_neg]``): its own key k_i (the
    positive) and the K keys of the queue (negatives). Options:

    - ``queue_size`` K (>= 1): a ring buffer of the last K keys, each stored with its
      instance id (``Batch.idx``); the initial random keys have no owner (id -1). A queued
      key of the anchor's *own* instance (its key from an earlier step, met whenever the
      queue spans an epoch boundary or K approaches the training-set size) is neither a
      positive nor a negative: it is masked out of that anchor's candidates only.
    - ``batch_negatives`` (default false, the paper): true adds the other B - 1 keys of
      the batch as negatives (the behaviour before the paper-faithful default).
    - ``shuffle_bn_groups`` G (default 4; 1 = no shuffling): Shuffling BN (sec. 3.3) on
      one process. The official code splits the batch over GPUs and BN normalises per GPU;
      the keys are computed on a shuffled batch, so a query and its positive key are never
      normalised with the same statistics. Here the query encoder runs on G contiguous
      sub-batches (the "GPUs"), the key encoder on G sub-batches of a random permutation
      of the batch, each sub-batch with its own BN statistics, and the keys are put back in
      batch order. G is lowered so that a group holds at least ``MIN_GROUP`` = 16 samples
      (batch 128 -> 4 groups of 32, the paper's 32 per GPU). Encoders without BN get
      identical results either way (up to rounding).
    - ``momentum`` m in [0, 1): key parameters <- m key + (1 - m) query after every step.
    - projector: MoCo v2's head, Linear-ReLU-Linear (no BN), ``proj_hidden``/``proj_dim``.
    """

    objectives = ALL_OBJECTIVES
    views = 2
    default_objective = "infonce"
    sync_batchnorm = False  # several processes: Shuffling BN stays per process (its design)
    option_rules = {
        **dict.fromkeys(("queue_size", "proj_dim", "proj_hidden", "shuffle_bn_groups"), COUNT),
        "momentum": UNIT,
        "batch_negatives": FLAG,
    }

    def __init__(
        self,
        encoder: nn.Module,
        augment: Augment,
        objective: Objective | None = None,
        *,
        queue_size: int = 1024,
        momentum: float = 0.99,
        proj_dim: int = 64,
        proj_hidden: int = 256,
        batch_negatives: bool = False,
        shuffle_bn_groups: int = 4,
    ) -> None:
        super().__init__(encoder, augment, objective)
        self.queue_size, self.momentum = queue_size, momentum
        self.batch_negatives, self.shuffle_bn_groups = batch_negatives, shuffle_bn_groups
        d, h = encoder.out_dim, proj_hidden
        self.projector = Head([(d, h, False, True), (h, proj_dim, False, False)])
        self.key_encoder = momentum_copy(nn.Sequential(self.encoder, self.projector))
        queue = F.normalize(torch.randn(queue_size, proj_dim), dim=1)
        self.register_buffer("queue", queue)
        self.register_buffer("queue_ids", torch.full((queue_size,), -1, dtype=torch.long))
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))

    def groups(self, batch_size: int) -> int:
        """Number of BN groups used for a batch (``shuffle_bn_groups``, lowered so that
        every group has at least ``MIN_GROUP`` samples)."""
        return max(1, min(self.shuffle_bn_groups, batch_size // MIN_GROUP))

    def training_loss(self, batch: Batch) -> Tensor:
        q, k = self.encode(self.augment(batch.x), self.augment(batch.x))
        loss = self.contrast(q, k, batch.idx)
        if distributed.is_distributed():  # every process enqueues the global batch's keys
            self._enqueue(distributed.gather_nograd(k), distributed.gather_nograd(batch.idx))
        else:
            self._enqueue(k, batch.idx)
        return loss

    def encode(self, x_query: Tensor, x_key: Tensor) -> tuple[Tensor, Tensor]:
        """Queries (with gradient) and normalised keys (without), Shuffling BN applied."""
        g = self.groups(len(x_query))
        q = in_groups(nn.Sequential(self.encoder, self.projector), x_query, g)
        with torch.no_grad():
            order = torch.randperm(len(x_key), device=x_key.device) if g > 1 else None
            k = F.normalize(in_groups(self.key_encoder, x_key, g, order), dim=1)
        return q, k

    def contrast(self, q: Tensor, k: Tensor, ids: Tensor) -> Tensor:
        """The objective over candidates [k (B), queue (K)]: k_i is query i's positive, the
        queue its negatives except the keys of its own instance; with ``batch_negatives``
        the other keys of the batch are negatives too."""
        b = len(q)
        queue, queue_ids = self.queue.clone(), self.queue_ids.clone()
        if distributed.is_distributed() and self.batch_negatives:
            k = distributed.gather_nograd(k)  # every process's keys; k_i at column offset + i
            rows = distributed.offset(b) + torch.arange(b, device=q.device)
            eye = torch.arange(len(k), device=q.device)[None, :] == rows[:, None]
        else:
            eye = torch.eye(b, dtype=torch.bool, device=q.device)
        pos = torch.cat([eye, torch.zeros(b, len(queue), dtype=torch.bool, device=q.device)], 1)
        batch_neg = ~eye if self.batch_negatives else torch.zeros_like(eye)
        queue_neg = ids[:, None] != queue_ids[None, :]  # never the anchor's own stale key
        neg = torch.cat([batch_neg, queue_neg], 1)
        return self.objective.masked(q, torch.cat([k, queue]), pos, neg)

    @torch.no_grad()
    def _enqueue(self, keys: Tensor, ids: Tensor) -> None:
        """Replace the oldest entries (a ring buffer); a batch larger than K keeps its last K."""
        k = len(self.queue)
        keys, ids = keys[-k:], ids[-k:]
        pos = (self.queue_ptr + torch.arange(len(keys), device=keys.device)) % k
        self.queue[pos] = keys
        self.queue_ids[pos] = ids.to(self.queue_ids)
        self.queue_ptr.copy_((self.queue_ptr + len(keys)) % k)

    @torch.no_grad()
    def after_step(self, progress: float) -> None:
        ema_update(self.key_encoder, nn.Sequential(self.encoder, self.projector), self.momentum)

    def effective_negatives(self, batch_size: int) -> int:
        """K (the queue), plus B - 1 with ``batch_negatives``; at most ``num_negatives``.

        The anchor's own stale keys are not subtracted: with K < the training-set size an
        anchor meets at most one or two of them, and on average fewer than one."""
        available = self.queue_size
        if self.batch_negatives:
            available += batch_size - 1
        return min(available, self.num_negatives or available)


def in_groups(module: nn.Module, x: Tensor, groups: int, order: Tensor | None = None) -> Tensor:
    """``module`` applied to ``groups`` sub-batches of ``x`` (each its own BN statistics),
    taken in ``order`` (a permutation; None = as they come), returned in ``x``'s order."""
    if groups == 1:
        return module(x)
    if order is None:
        return torch.cat([module(chunk) for chunk in x.tensor_split(groups)])
    out = torch.cat([module(x[chunk]) for chunk in order.tensor_split(groups)])
    return out[torch.argsort(order)]  # out[j] belongs to sample order[j]
