"""Contrastive pair loss (Chopra, Hadsell & LeCun 2005; Hadsell, Chopra & LeCun 2006)."""

from __future__ import annotations

import torch
from torch import Tensor

from benchmark.objectives._core import (
    Pairs,
    count,
    fill_outside,
    register_objective,
    to_distance,
)


@register_objective(
    "contrastive", metric="euclidean", normalize=True, tunable=("margin",), margin=1.0
)
def contrastive(pairs: Pairs, *, margin: float) -> Tensor:
    """Pull positive pairs together, push negative pairs beyond ``margin``.

    Formula (Hadsell et al. 2006, eq. 4, with D the distance of a pair)::

        L = mean_{(i,j) positive} 1/2 D_ij^2  +  mean_{(i,j) negative} 1/2 max(0, m - D_ij)^2

    Positive and negative pairs are averaged separately so that the balance between
    them does not depend on the batch composition. Default D: Euclidean distance of
    L2-normalized embeddings, m = 1.

    Reference: Chopra, Hadsell & LeCun, CVPR 2005; Hadsell, Chopra & LeCun, CVPR 2006.
    """
    pull = 0.5 * to_distance(pairs.at_positives(pairs.sim), pairs.metric).pow(2)
    # margin - D on the negatives, -inf elsewhere (computed in place), then the hinge
    h = fill_outside(pairs.sim, pairs.neg)
    if pairs.metric == "cosine":
        h.neg_().add_(1.0).neg_()  # -(1 - s); for -s distances, -D is the score itself
    h = h.add_(margin).relu_().flatten()
    push = 0.5 * torch.dot(h, h)  # sum of squares without an (N, M) temporary
    return pull.mean() + push / count(pairs.neg)
