"""Multi-class N-pair loss (Sohn 2016)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from benchmark.objectives._core import (
    Pairs,
    masked_logsumexp,
    mean_over_anchors,
    register_objective,
)


@register_objective("npair", metric="dot", scores=True, order=40, l2_reg=0.002)
def npair(pairs: Pairs, *, l2_reg: float) -> Tensor:
    """Every positive against all negatives of its anchor, with no temperature.

    Formula (Sohn 2016, eq. 3 and section 3.2.2; s the inner product)::

        L = mean_i mean_{p in P(i)} log(1 + sum_{n in N(i)} exp(s_in - s_ip))
            + l2_reg * (mean_i ||x_i||^2 + mean_j ||y_j||^2) / 2

    The norm penalty, which replaces the temperature that keeps the inner products
    bounded, weighs the anchors' mean squared norm (x_i) and the candidates' mean squared
    norm (y_j) equally, whatever their numbers; without ``ref_*`` both are the embeddings,
    so it is their mean squared norm. Anchors without a positive do not contribute to the
    first term.

    Reference: Sohn, NeurIPS 2016, "Improved Deep Metric Learning with Multi-class N-pair
    Loss Objective".
    """
    lse_neg = masked_logsumexp(pairs.sim, pairs.neg, dim=1)
    anchors, _ = pairs.pos_index
    # log(1 + exp(lse - s_ip)), only at the positive pairs
    per_pair = F.softplus(lse_neg[anchors] - pairs.at_positives(pairs.sim))
    loss = mean_over_anchors(per_pair, anchors, len(lse_neg))
    if l2_reg:
        sq = (pairs.x.pow(2).sum(1).mean() + pairs.y.pow(2).sum(1).mean()) / 2
        loss = loss + l2_reg * sq
    return loss
