"""Binary noise-contrastive estimation (Gutmann & Hyvarinen 2010) as used by Wu et al. 2018."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from benchmark.objectives._core import (
    Pairs,
    count,
    count_per_row,
    fill_outside,
    masked_logsumexp,
    mean_over_anchors,
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
    sim, pos, neg = pairs.sim, pairs.pos, pairs.neg
    with torch.no_grad():  # Z is a constant
        valid = pos | neg
        log_mean = (
            masked_logsumexp(sim.flatten(), valid.flatten(), dim=0, temperature=temperature)
            - count(valid).to(sim.dtype).log()
        )
        del valid
    log_k = count_per_row(neg)[:, None].clamp_min(1).to(sim.dtype).log()
    # noise term over the negatives only: softplus(-inf) = 0 adds nothing elsewhere
    noise_logit = fill_outside(sim, neg).div_(temperature).sub_(log_mean).sub_(log_k)
    noise = F.softplus(noise_logit).sum(1)
    del noise_logit
    anchors, _ = pairs.pos_index
    logit = pairs.at_positives(sim) / temperature - log_mean - log_k[anchors, 0]
    data = mean_over_anchors(F.softplus(-logit), anchors, len(sim))
    return data + noise[pos.any(1)].mean()
