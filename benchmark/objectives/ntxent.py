"""NT-Xent, the normalized temperature-scaled cross-entropy (Chen et al. 2020, SimCLR)."""

from __future__ import annotations

from torch import Tensor

from benchmark.objectives._core import (
    Pairs,
    masked_logsumexp,
    mean_over_positives,
    register_objective,
)


@register_objective("ntxent", metric="cosine", tunable=("temperature",), temperature=0.5)
def ntxent(pairs: Pairs, *, temperature: float) -> Tensor:
    """Softmax over every other sample, cosine similarity divided by a temperature.

    Formula (Chen et al. 2020, eq. 1; s cosine similarity, 1[k != i])::

        l(i, p) = -log( exp(s_ip/tau) / sum_{k != i} exp(s_ik/tau) )
        L = mean_i mean_{p in P(i)} l(i, p)

    With two views per instance (labels = instance ids) this is SimCLR's loss over the 2N
    views. With several positives every positive of i stays in the denominator (the
    "L_out" form of Khosla et al. 2020). The candidates k are all positives and
    (possibly subsampled) negatives of i.

    Reference: Chen, Kornblith, Norouzi & Hinton, ICML 2020, arXiv:2002.05709.
    """
    logits = pairs.sim / temperature
    lse_all = masked_logsumexp(logits, pairs.pos | pairs.neg, dim=1)
    return mean_over_positives(lse_all[:, None] - logits, pairs.pos)
