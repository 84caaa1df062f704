"""Lifted structured loss, smooth form (Song et al. 2016)."""

from __future__ import annotations

import torch
from torch import Tensor

from benchmark.objectives._core import (
    Pairs,
    any_along,
    logsumexp,
    masked_logsumexp,
    minus_distance_on,
    register_objective,
    to_distance,
)


@register_objective(
    "lifted", metric="euclidean", normalize=True, order=30, tunable=("margin",), margin=1.0
)
def lifted(pairs: Pairs, *, margin: float) -> Tensor:
    """Each positive pair against all negatives of both its ends, smoothed by log-sum-exp.

    Formula (Song et al. 2016, eqs. 3-4; D Euclidean distance, alpha the margin)::

        J_ij = log( sum_{k in N(i)} exp(alpha - D_ik) + sum_{l in N(j)} exp(alpha - D_jl) ) + D_ij
        L    = 1/(2|P|) sum_{(i,j) in P} max(0, J_ij)^2

    With ``ref_*`` given, i runs over anchors and j over candidates: N(i) are the
    candidates of another label than i, N(j) the anchors of another label than j.
    Ordered pairs are used; J is symmetric so the mean equals the paper's over unordered
    pairs.

    Reference: Song, Xiang, Jegelka & Savarese, CVPR 2016, arXiv:1511.06452.
    """
    sim, neg = pairs.sim, pairs.neg
    if (pairs.n_neg > 0).all() and any_along(neg, 0).all():
        # z = alpha - D on the negatives, -inf elsewhere, in one tensor shared by both sums
        z = minus_distance_on(pairs, neg).add_(margin)
        row = logsumexp(z, dim=1)  # (N,) over candidates negative to anchor i
        col = logsumexp(z, dim=0)  # (M,) over anchors negative to candidate j
    else:  # some anchor or candidate has no negative: its sum is -inf
        z = margin - pairs.dist
        row = masked_logsumexp(z, neg, dim=1)
        col = masked_logsumexp(z, neg, dim=0)
    del z
    i, j = pairs.pos_index
    d = to_distance(pairs.at_positives(sim), pairs.metric)  # only the positive pairs
    hinge = torch.relu(torch.logaddexp(row[i], col[j]) + d).pow(2)
    return 0.5 * hinge.mean()
