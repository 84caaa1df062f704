"""Jensen-Shannon MI estimator / BCE discriminator (Hjelm et al. 2019; Velickovic et al. 2019)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from benchmark.objectives._core import Pairs, fill_outside, register_objective


@register_objective("jsd", metric="dot", scores=True, order=80)
def jsd(pairs: Pairs) -> Tensor:
    """Binary discrimination of positive (joint) from negative (marginal) pairs.

    Formula (Deep InfoMax, Hjelm et al. 2019, eq. 4; T the critic score, sp = softplus)::

        L = mean_{(i,j) positive} sp(-T_ij) + mean_{(i,j) negative} sp(T_ij)

    which is minus the JSD-based MI estimate. With equally many real and corrupted
    pairs it is twice DGI's binary cross-entropy (Velickovic et al. 2019, eq. 1). The
    critic is the similarity fixed at build time, e.g. a learned bilinear map.

    Reference: Hjelm et al., ICLR 2019, arXiv:1808.06670; Velickovic et al., ICLR 2019,
    arXiv:1809.10341.
    """
    t = pairs.sim
    pull = F.softplus(-pairs.at_positives(t)).mean()
    # softplus(-inf) = 0 with zero gradient: the excluded pairs add exactly nothing
    push = F.softplus(fill_outside(t, pairs.neg)).sum() / pairs.n_neg.sum()
    return pull + push
