"""InfoNCE (van den Oord et al. 2018, CPC)."""

from __future__ import annotations

import torch
from torch import Tensor

from benchmark.objectives._core import (
    Pairs,
    masked_logsumexp,
    mean_over_anchors,
    register_objective,
)


@register_objective(
    "infonce", metric="cosine", scores=True, order=60, tunable=("temperature",), temperature=0.1
)
def infonce(pairs: Pairs, *, temperature: float) -> Tensor:
    """Categorical cross-entropy of picking the positive among itself and the negatives.

    Formula (van den Oord et al. 2018, eq. 4; f = exp(s / tau))::

        L = mean_i mean_{p in P(i)} -log( exp(s_ip/tau) / (exp(s_ip/tau) + sum_{n in N(i)} exp(s_in/tau)) )

    Other positives of the anchor are not in the denominator (that is NT-Xent's
    difference). With one positive and K negatives, log(K+1) - L is the InfoNCE lower
    bound on mutual information. An anchor with no negative contributes 0.

    Reference: van den Oord, Li & Vinyals 2018, arXiv:1807.03748.
    """
    lse_neg = masked_logsumexp(pairs.sim, pairs.neg, dim=1, temperature=temperature)
    anchors, _ = pairs.pos_index
    logit = pairs.at_positives(pairs.sim) / temperature  # only the positive pairs
    per_pair = torch.logaddexp(logit, lse_neg[anchors]) - logit
    return mean_over_anchors(per_pair, anchors, len(lse_neg))
