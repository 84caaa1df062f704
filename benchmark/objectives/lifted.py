"""Lifted structured loss, smooth form (Song et al. 2016)."""

from __future__ import annotations

import torch
from torch import Tensor

from benchmark.objectives._core import Pairs, masked_logsumexp, masked_mean, register_objective


@register_objective("lifted", metric="euclidean", normalize=True, tunable=("margin",), margin=1.0)
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
    d, pos, neg = pairs.dist, pairs.pos, pairs.neg
    z = margin - d
    row = masked_logsumexp(z, neg, dim=1)  # (N,) over candidates negative to anchor i
    col = masked_logsumexp(z, neg, dim=0)  # (M,) over anchors negative to candidate j
    j = torch.logaddexp(row[:, None], col[None, :]) + d
    hinge = torch.relu(j).pow(2)
    return 0.5 * masked_mean(hinge, pos)
