"""Rotation prediction pretext task (Gidaris et al. 2018)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmark.methods.base import Batch, Context, Method, register_method


@register_method("rotation")
class Rotation(Method):
    """Every image is shown at 0, 90, 180 and 270 degrees; a linear head predicts which."""

    views = 4
    data_kinds = ("image",)

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.head = nn.Linear(ctx.encoder.out_dim, 4)

    def training_loss(self, batch: Batch) -> Tensor:
        x = self.augment(batch.x)
        rotated = torch.cat([torch.rot90(x, k, dims=(-2, -1)) for k in range(4)])
        target = torch.arange(4, device=x.device).repeat_interleave(len(x))
        return F.cross_entropy(self.head(self.encoder(rotated)), target)
