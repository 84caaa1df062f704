"""Donsker-Varadhan lower bound on mutual information (as in MINE)."""

from __future__ import annotations

from torch import Tensor

from benchmark.objectives._core import Pairs, masked_logsumexp, register_objective


@register_objective("dv", metric="dot", scores=True, order=100)
def dv(pairs: Pairs) -> Tensor:
    """Minus the DV bound, pooled over all positive and all negative pairs.

    Formula (Donsker & Varadhan 1983; Poole et al. 2019, eq. 7)::

        I_DV = mean_{positive} T_ij - log mean_{negative} exp(T_ij)
        L = -I_DV

    The log-mean-exp is computed with log-sum-exp, so large scores do not overflow.

    Reference: Belghazi et al. 2018 (MINE), arXiv:1801.04062; Poole et al., ICML 2019.
    """
    t = pairs.sim
    log_mean_exp = (
        masked_logsumexp(t.flatten(), pairs.neg.flatten(), dim=0)
        - pairs.n_neg.sum().to(t.dtype).log()
    )
    return -(pairs.at_positives(t).mean() - log_mean_exp)
