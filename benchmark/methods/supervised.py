"""Supervised baseline: the same encoder trained with labels (the ceiling reference)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from benchmark.methods.base import Batch, Context, Method, register_method


@register_method("supervised")
class Supervised(Method):
    """Encoder + linear head trained with cross-entropy on the training split.

    On graphs (transductive, few labels) node features and embeddings get dropout
    ``dropout`` as in Kipf & Welling 2017 (0.5), without which a GCN memorises the 20
    labels per class; image and sequence encoders are regularised by augmentation.
    """

    data_kinds = ("image", "sequence", "graph")
    option_defaults = {"dropout": 0.5}

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.head = nn.Linear(ctx.encoder.out_dim, ctx.num_classes)
        self.full_graph = ctx.data_kind == "graph"

    def training_loss(self, batch: Batch) -> Tensor:
        if batch.edge_index is not None:  # transductive: all nodes in, train nodes scored
            p = float(self.options["dropout"])
            h = self.encoder(F.dropout(batch.x, p, self.training), batch.edge_index)
            logits = self.head(F.dropout(h, p, self.training))[batch.idx]
            return F.cross_entropy(logits, batch.y[batch.idx])
        return F.cross_entropy(self.head(self.encoder(self.augment(batch.x))), batch.y)
