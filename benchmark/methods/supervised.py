"""Supervised baseline: the same encoder trained with labels (the ceiling reference)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from benchmark.methods.base import Augment, Batch, Method, Objective, register_method


@register_method("supervised")
class Supervised(Method):
    """Encoder + linear head trained with cross-entropy on the training split.

    On graphs (transductive, few labels) node features and embeddings get dropout
    ``dropout`` as in Kipf & Welling 2017 (0.5), without which a GCN memorises the 20
    labels per class; image and sequence encoders are regularised by augmentation.
    """

    data_kinds = ("image", "sequence", "graph")

    def __init__(
        self,
        encoder: nn.Module,
        augment: Augment,
        objective: Objective | None = None,
        *,
        num_classes: int,
        data_kind: str,
        dropout: float = 0.5,
    ) -> None:
        super().__init__(encoder, augment, objective)
        self.head = nn.Linear(encoder.out_dim, num_classes)
        self.full_graph = data_kind == "graph"
        self.dropout = dropout

    def training_loss(self, batch: Batch) -> Tensor:
        if batch.edge_index is not None:  # transductive: all nodes in, train nodes scored
            p = float(self.dropout)
            h = self.encoder(F.dropout(batch.x, p, self.training), batch.edge_index)
            logits = self.head(F.dropout(h, p, self.training))[batch.idx]
            return F.cross_entropy(logits, batch.y[batch.idx])
        return F.cross_entropy(self.head(self.encoder(self.augment(batch.x))), batch.y)
