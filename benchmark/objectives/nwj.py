"""Nguyen-Wainwright-Jordan (f-GAN KL, MINE-f) lower bound on mutual information."""

from __future__ import annotations

from torch import Tensor

from benchmark.objectives._core import Pairs, fill_outside, register_objective


@register_objective("nwj", metric="dot", scores=True, order=90)
def nwj(pairs: Pairs) -> Tensor:
    """Minus the NWJ bound, pooled over all positive and all negative pairs.

    Formula (Nguyen et al. 2010; Poole et al. 2019, eq. 9 with a(y) = e)::

        I_NWJ = mean_{positive} T_ij - e^{-1} mean_{negative} exp(T_ij)
        L = -I_NWJ

    With the optimal critic T = 1 + log p(y|x)/p(y) the estimate is unbiased.

    Reference: Nguyen, Wainwright & Jordan 2010; Poole et al., ICML 2019, arXiv:1905.06922.
    """
    t = pairs.sim
    # exp only where used: excluded scores (self, positives) become exp(-inf) = 0, so an
    # overflowing excluded score cannot give 0 * inf = NaN
    e = fill_outside(t, pairs.neg).sub_(1.0).exp_()
    return -(pairs.at_positives(t).mean() - e.sum() / pairs.n_neg.sum())
