"""NT-Xent, the normalized temperature-scaled cross-entropy (Chen et al. 2020, SimCLR)."""

from __future__ import annotations

import torch
from torch import Tensor

from benchmark.objectives._core import Pairs, fill_outside, mean_over_anchors, register_objective


@register_objective("ntxent", metric="cosine", order=70, tunable=("temperature",), temperature=0.5)
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
    # log-softmax over the candidates of each anchor (excluded ones -inf), read at positives
    logits = fill_outside(pairs.sim, pairs.pos | pairs.neg, dim=1).div_(temperature)
    log_p = torch.log_softmax(logits, dim=1)
    del logits
    return mean_over_anchors(-pairs.at_positives(log_p), pairs.pos_index[0], len(log_p))
