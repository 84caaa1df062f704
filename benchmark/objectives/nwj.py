"""Nguyen-Wainwright-Jordan (f-GAN KL, MINE-f) lower bound on mutual information."""

from __future__ import annotations

import torch
from torch import Tensor

from benchmark.objectives._core import Pairs, masked_mean, register_objective


@register_objective("nwj", metric="dot")
def nwj(pairs: Pairs) -> Tensor:
    """Minus the NWJ bound, pooled over all positive and all negative pairs.

    Formula (Nguyen et al. 2010; Poole et al. 2019, eq. 9 with a(y) = e)::

        I_NWJ = mean_{positive} T_ij - e^{-1} mean_{negative} exp(T_ij)
        L = -I_NWJ

    With the optimal critic T = 1 + log p(y|x)/p(y) the estimate is unbiased.

    Reference: Nguyen, Wainwright & Jordan 2010; Poole et al., ICML 2019, arXiv:1905.06922.
    """
    t = pairs.sim
    # exp only where used: an overflowing excluded score (self, positive) would give 0 * inf = NaN
    t_neg = t.masked_fill(~pairs.neg, 0.0)
    return -(masked_mean(t, pairs.pos) - masked_mean(torch.exp(t_neg - 1.0), pairs.neg))
