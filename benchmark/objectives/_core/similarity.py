"""Similarities: the (N, M) score of every anchor against every candidate.

Euclidean metrics are returned as the negative distance, so that for every metric a larger
score means more similar; :func:`to_distance` inverts that for the margin losses.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

METRICS = ("cosine", "dot", "euclidean", "sqeuclidean")
# a learned critic (for example DIM/DGI's bilinear map): (N, D), (M, D) -> (N, M) scores
Similarity = Callable[[Tensor, Tensor], Tensor]


def pairwise_similarity(x: Tensor, y: Tensor, metric: str) -> Tensor:
    """(N, D), (M, D) -> (N, M) similarity; for euclidean metrics it is the negative distance."""
    if metric == "cosine":
        return F.normalize(x, dim=-1) @ F.normalize(y, dim=-1).T
    if metric == "dot":
        return x @ y.T
    if metric in ("euclidean", "sqeuclidean"):
        # ||x||^2 + ||y||^2 - 2 x.y in one multiply-add (scaling by -2 is exact)
        sq = torch.addmm((x * x).sum(-1, keepdim=True) + (y * y).sum(-1), x, y.T, alpha=-2.0)
        # clamps written as in-place fills: autograd then keeps a bool mask, not a copy of sq
        if metric == "sqeuclidean":
            return sq.masked_fill_(sq < 0.0, 0.0).neg_()
        # clamping at 1e-12 (so also at 0) keeps the gradient of sqrt finite at coincident
        # points (a sample and itself)
        return -sq.masked_fill_(sq < 1e-12, 1e-12).sqrt_()
    raise ValueError(f"unknown metric {metric!r}; allowed: {', '.join(METRICS)}")


def to_distance(sim: Tensor, metric: str | None) -> Tensor:
    """Inverse of :func:`pairwise_similarity`: 1 - cos for cosine, -s otherwise."""
    return 1.0 - sim if metric == "cosine" else -sim
