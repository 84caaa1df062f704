"""MoCo (He et al. 2020; v2 projector): a momentum key encoder and a queue of K negatives."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmark.encoders import mlp_head
from benchmark.methods.base import (
    ALL_OBJECTIVES,
    Batch,
    Context,
    Method,
    ema_update,
    momentum_copy,
    register_method,
)


@register_method("moco")
class MoCo(Method):
    """Queries are anchors; candidates are this batch's keys (one positive each, the others
    negatives) followed by the queue of K older keys (all negatives)."""

    objectives = ALL_OBJECTIVES
    views = 2
    default_objective = "infonce"
    option_defaults = {"queue_size": 1024, "momentum": 0.99, "proj_dim": 64, "proj_hidden": 256}

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        o = self.options
        self.projector = mlp_head(ctx.encoder.out_dim, o["proj_hidden"], o["proj_dim"])
        self.key_encoder = momentum_copy(nn.Sequential(self.encoder, self.projector))
        queue = F.normalize(torch.randn(o["queue_size"], o["proj_dim"]), dim=1)
        self.register_buffer("queue", queue)
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))

    def training_loss(self, batch: Batch) -> Tensor:
        b = len(batch.x)
        q = self.projector(self.encoder(self.augment(batch.x)))
        with torch.no_grad():
            k = F.normalize(self.key_encoder(self.augment(batch.x)), dim=1)
        ids = torch.arange(b, device=q.device)
        queue_labels = torch.full((len(self.queue),), -1, device=q.device)
        loss = self.objective(
            q, ids, torch.cat([k, self.queue.clone()]), torch.cat([ids, queue_labels])
        )
        self._enqueue(k)
        return loss

    @torch.no_grad()
    def _enqueue(self, keys: Tensor) -> None:
        """Replace the oldest entries (a ring buffer); a batch larger than K keeps its last K."""
        k = len(self.queue)
        keys = keys[-k:]
        pos = (self.queue_ptr + torch.arange(len(keys), device=keys.device)) % k
        self.queue[pos] = keys
        self.queue_ptr.copy_((self.queue_ptr + len(keys)) % k)

    @torch.no_grad()
    def after_step(self, progress: float) -> None:
        ema_update(
            self.key_encoder, nn.Sequential(self.encoder, self.projector), self.options["momentum"]
        )

    def effective_negatives(self, batch_size: int) -> int:
        available = self.options["queue_size"] + batch_size - 1
        return min(available, self.num_negatives or available)
