"""Jigsaw puzzle pretext task (Noroozi & Favaro 2016), for images and sequences."""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmark.methods.base import Batch, Context, Method, register_method


@register_method("jigsaw")
class Jigsaw(Method):
    """Cut each sample into 4 tiles (a 2x2 grid for images, 4 segments for sequences),
    shuffle them by one of the 24 permutations, encode every tile with the shared encoder
    and predict the permutation from the concatenated tile features."""

    views = 4  # tiles

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        perms = torch.tensor(list(itertools.permutations(range(4))))
        self.register_buffer("perms", perms)
        d = ctx.encoder.out_dim
        self.head = nn.Sequential(
            nn.Linear(4 * d, 256), nn.ReLU(inplace=True), nn.Linear(256, len(perms))
        )

    @staticmethod
    def tiles(x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, 4, C, H/2, W/2); (B, C, L) -> (B, 4, C, L/4)."""
        if x.ndim == 4:
            h, w = x.shape[-2] // 2, x.shape[-1] // 2
            rows = [
                x[..., i * h : (i + 1) * h, j * w : (j + 1) * w] for i in (0, 1) for j in (0, 1)
            ]
            return torch.stack(rows, 1)
        s = x.shape[-1] // 4
        return torch.stack([x[..., i * s : (i + 1) * s] for i in range(4)], 1)

    def training_loss(self, batch: Batch) -> Tensor:
        t = self.tiles(self.augment(batch.x))
        b = len(t)
        target = torch.randint(len(self.perms), (b,), device=t.device)
        order = self.perms[target]  # (B, 4)
        shuffled = t[torch.arange(b, device=t.device)[:, None], order]
        feats = self.encoder(shuffled.flatten(0, 1)).reshape(b, -1)
        return F.cross_entropy(self.head(feats), target)
