"""Rotation prediction pretext task (Gidaris et al. 2018)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmark.methods.base import Augment, Batch, Method, Objective, register_method


@register_method("rotation")
class Rotation(Method):
    """Every image is shown at 0, 90, 180 and 270 degrees in the same batch (the paper's
    best setting, sec. 3.2); a linear head predicts which. Label k is the image rotated
    counter-clockwise by k * 90 degrees (``torch.rot90(x, k)`` on the (H, W) plane)."""

    views = 4
    data_kinds = ("image",)

    def __init__(
        self,
        encoder: nn.Module,
        augment: Augment,
        objective: Objective | None = None,
        *,
        input_shape: tuple[int, ...],
    ) -> None:
        super().__init__(encoder, augment, objective)
        h, w = input_shape[-2:]
        if h != w:
            raise ValueError(f"rotation needs square images, got {h}x{w}")
        self.head = nn.Linear(encoder.out_dim, 4)

    @staticmethod
    def rotations(x: Tensor) -> tuple[Tensor, Tensor]:
        """(B, C, H, W) -> (4B, C, H, W) rotated copies (all of k = 0, then 1, 2, 3) and
        their labels k (4B,)."""
        rotated = torch.cat([torch.rot90(x, k, dims=(-2, -1)) for k in range(4)])
        target = torch.arange(4, device=x.device).repeat_interleave(len(x))
        return rotated, target

    def training_loss(self, batch: Batch) -> Tensor:
        rotated, target = self.rotations(self.augment(batch.x))
        return F.cross_entropy(self.head(self.encoder(rotated)), target)

    def effective_negatives(self, batch_size: int) -> int:
        return 0  # a classification over 4 rotations: no negative samples
