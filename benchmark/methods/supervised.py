"""Supervised baseline: the same encoder trained with labels (the ceiling reference)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from benchmark.methods.base import Batch, Context, Method, register_method


@register_method("supervised")
class Supervised(Method):
    data_kinds = ("image", "sequence", "graph")

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.head = nn.Linear(ctx.encoder.out_dim, ctx.num_classes)
        self.full_graph = ctx.data_kind == "graph"

    def training_loss(self, batch: Batch) -> Tensor:
        if batch.edge_index is not None:  # transductive: all nodes in, train nodes scored
            logits = self.head(self.encoder(batch.x, batch.edge_index))[batch.idx]
            return F.cross_entropy(logits, batch.y[batch.idx])
        return F.cross_entropy(self.head(self.encoder(self.augment(batch.x))), batch.y)
