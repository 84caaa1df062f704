"""Deep Graph Infomax (Velickovic et al. 2019): real vs feature-shuffled graph."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from benchmark.methods.base import SCORE_OBJECTIVES, Batch, Context, Method, register_method


class BilinearCritic(nn.Module):
    """D(h, s) = h^T W s (Velickovic et al. 2019, eq. 7), for every (summary, node) pair."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(dim, dim))
        nn.init.xavier_uniform_(self.weight)

    def forward(self, summaries: Tensor, nodes: Tensor) -> Tensor:
        return summaries @ self.weight.T @ nodes.T  # (S, N)


@register_method("dgi")
class DGI(Method):
    """Summary s = sigmoid(mean of node embeddings) is the anchor; the real graph's nodes
    are its positives, the nodes of the corrupted graph (rows of X shuffled, same edges)
    its negatives, scored by a learned bilinear critic."""

    objectives = SCORE_OBJECTIVES
    default_objective = "jsd"
    data_kinds = ("graph",)
    full_graph = True

    def build_objective(self, ctx: Context, **overrides):
        self.critic = BilinearCritic(ctx.encoder.out_dim)
        return super().build_objective(ctx, similarity=self.critic, normalize=False, **overrides)

    def training_loss(self, batch: Batch) -> Tensor:
        x, edge_index = batch.x, batch.edge_index
        h = self.encoder(x, edge_index)
        h_corrupt = self.encoder(x[torch.randperm(len(x), device=x.device)], edge_index)
        s = torch.sigmoid(h.mean(0, keepdim=True))
        n = len(x)
        labels = torch.cat([torch.zeros(n, dtype=torch.long), torch.ones(n, dtype=torch.long)])
        return self.objective(
            s,
            torch.zeros(1, dtype=torch.long, device=x.device),
            torch.cat([h, h_corrupt]),
            labels.to(x.device),
        )

    def effective_negatives(self, batch_size: int) -> int:
        return self.num_negatives or batch_size  # the corrupted graph's nodes
