"""BYOL (Grill et al. 2020): an online network predicts a momentum target; no negatives."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmark.encoders import mlp_head
from benchmark.methods.base import (
    Batch,
    Context,
    Method,
    ema_update,
    momentum_copy,
    register_method,
)


@register_method("byol")
class BYOL(Method):
    views = 2
    option_defaults = {"proj_dim": 64, "proj_hidden": 256, "momentum": 0.99}

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        o = self.options
        self.projector = mlp_head(ctx.encoder.out_dim, o["proj_hidden"], o["proj_dim"])
        self.predictor = mlp_head(o["proj_dim"], o["proj_hidden"], o["proj_dim"])
        self.target = momentum_copy(nn.Sequential(self.encoder, self.projector))

    def training_loss(self, batch: Batch) -> Tensor:
        v1, v2 = self.augment(batch.x), self.augment(batch.x)
        p = self.predictor(self.projector(self.encoder(torch.cat([v1, v2]))))
        with torch.no_grad():
            z = self.target(torch.cat([v2, v1]))  # swapped: view 1 predicts view 2's target
        # 2 - 2 cos(p, z), averaged over both directions (Grill et al. eq. 2)
        return (2 - 2 * F.cosine_similarity(p, z, dim=-1)).mean()

    @torch.no_grad()
    def after_step(self, progress: float) -> None:
        # tau rises from tau_base to 1 with a cosine schedule (Grill et al. sec. 3.2)
        base = self.options["momentum"]
        tau = 1 - (1 - base) * (math.cos(math.pi * progress) + 1) / 2
        ema_update(self.target, nn.Sequential(self.encoder, self.projector), tau)
