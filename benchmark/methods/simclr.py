"""SimCLR (Chen et al. 2020): two augmented views, in-batch negatives, an MLP projector."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from benchmark import distributed
from benchmark.encoders import mlp_head
from benchmark.methods.base import (
    ALL_OBJECTIVES,
    Augment,
    Batch,
    Method,
    Objective,
    instance_labels,
    register_method,
)


@register_method("simclr")
class SimCLR(Method):
    objectives = ALL_OBJECTIVES
    views = 2
    default_objective = "ntxent"

    def __init__(
        self,
        encoder: nn.Module,
        augment: Augment,
        objective: Objective | None = None,
        *,
        proj_dim: int = 64,
        proj_hidden: int = 256,
    ) -> None:
        super().__init__(encoder, augment, objective)
        self.projector = mlp_head(encoder.out_dim, proj_hidden, proj_dim)

    def training_loss(self, batch: Batch) -> Tensor:
        views = torch.cat([self.augment(batch.x), self.augment(batch.x)])
        z = self.projector(self.encoder(views))
        labels = instance_labels(len(batch.x), 2, z.device)
        if distributed.is_distributed():  # local anchors vs every process's views
            labels = labels + distributed.offset(len(batch.x))
            return distributed.gathered_loss(self.objective, z, labels)
        return self.objective(z, labels)

    def effective_negatives(self, batch_size: int) -> int:
        return min(2 * batch_size - 2, self.num_negatives or 2 * batch_size)
