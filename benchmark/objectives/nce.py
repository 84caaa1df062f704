"""Binary noise-contrastive estimation (Gutmann & Hyvarinen 2010) as used by Wu et al. 2018."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from benchmark.objectives._core import (
    Pairs,
    masked_logsumexp,
    mean_over_positives,
    register_objective,
)


@register_objective("nce", metric="cosine", tunable=("temperature",), temperature=0.07)
def nce(pairs: Pairs, *, temperature: float) -> Tensor:
    """Logistic regression of data pairs against k noise pairs drawn from a uniform prior.

    Formula (Gutmann & Hyvarinen 2010; Wu et al. 2018, eqs. 4-6). The model is
    P(j|i) = exp(s_ij/tau) / Z with Z = n * mean_j exp(s_ij/tau) estimated by Monte Carlo
    on the current candidates (no gradient; Wu et al. fix it after the first batch). With
    noise P_n = 1/n and k noise samples per positive,
    h(i,j) = P(j|i) / (P(j|i) + k/n), so the n cancel::

        logit_ij = s_ij/tau - log mean_{all pairs} exp(s/tau) - log k_i
        L = mean_i [ mean_{p in P(i)} -log sigmoid(logit_ip) + sum_{n in N(i)} -log(1 - sigmoid(logit_in)) ]

    k_i is the number of negatives of anchor i (at least 1).

    Reference: Gutmann & Hyvarinen, AISTATS 2010; Wu, Xiong, Yu & Lin, CVPR 2018,
    arXiv:1805.01978.
    """
    logits = pairs.sim / temperature
    valid = pairs.pos | pairs.neg
    log_mean = (
        masked_logsumexp(logits.flatten(), valid.flatten(), dim=0)
        - valid.sum().to(logits.dtype).log()
    )
    log_k = pairs.neg.sum(1, keepdim=True).clamp_min(1).to(logits.dtype).log()
    logit = logits - log_mean.detach() - log_k
    noise = torch.where(pairs.neg, F.softplus(logit), torch.zeros_like(logit)).sum(1)
    data = F.softplus(-logit)
    has_pos = pairs.pos.any(1)
    return mean_over_positives(data, pairs.pos) + noise[has_pos].mean()
