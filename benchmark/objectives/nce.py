"""Binary noise-contrastive estimation (Gutmann & Hyvarinen 2010) as used by Wu et al. 2018."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from benchmark.objectives._core import (
    Pairs,
    fill_outside,
    mean_over_anchors,
    register_objective,
)


@register_objective(
    "nce", metric="cosine", scores=True, order=50, tunable=("temperature",), temperature=0.07
)
def nce(pairs: Pairs, *, temperature: float) -> Tensor:
    """Logistic regression of data pairs against k noise pairs drawn from a uniform prior.

    Formula (Gutmann & Hyvarinen 2010; Wu et al. 2018, eqs. 4-6). The model is
    P(j|i) = exp(s_ij/tau) / Z with Z = n * mean exp(s/tau), the mean taken over the kept
    pairs of the batch -- every positive pair and every (possibly subsampled, see
    ``num_negatives``) negative pair, never a sample with itself -- a Monte Carlo estimate
    (no gradient; Wu et al. fix it after the first batch). With noise P_n = 1/n and k noise
    samples per positive, h(i,j) = P(j|i) / (P(j|i) + k/n), so the n cancel::

        logit_ij = s_ij/tau - log mean_{kept pairs (a,b)} exp(s_ab/tau) - log k_i
        L = mean_i [ mean_{p in P(i)} -log sigmoid(logit_ip) + sum_{n in N(i)} -log(1 - sigmoid(logit_in)) ]

    k_i is the number of (kept) negatives of anchor i (at least 1); the mean over i runs
    over the anchors that have a positive.

    Reference: Gutmann & Hyvarinen, AISTATS 2010; Wu, Xiong, Yu & Lin, CVPR 2018,
    arXiv:1805.01978.
    """
    sim, neg = pairs.sim, pairs.neg
    anchors, _ = pairs.pos_index
    logit_pos = pairs.at_positives(sim) / temperature
    logit = fill_outside(sim, neg).div_(temperature)  # s/tau on the negatives, -inf elsewhere
    with torch.no_grad():  # Z is a constant: log mean exp over positive and negative pairs
        log_sum = torch.logaddexp(torch.logsumexp(logit.flatten(), 0), logit_pos.logsumexp(0))
        log_mean = log_sum - (pairs.n_pos.sum() + pairs.n_neg.sum()).to(sim.dtype).log()
    log_k = pairs.n_neg[:, None].clamp_min(1).to(sim.dtype).log()
    # noise term over the negatives only: softplus(-inf) = 0 adds nothing elsewhere
    noise = F.softplus(logit.sub_(log_mean).sub_(log_k)).sum(1)
    del logit
    data = mean_over_anchors(
        F.softplus(-(logit_pos - log_mean - log_k[anchors, 0])), anchors, len(sim)
    )
    return data + noise[pairs.n_pos > 0].mean()
