"""Contrastive pair loss (Chopra, Hadsell & LeCun 2005; Hadsell, Chopra & LeCun 2006)."""

from __future__ import annotations

from torch import Tensor

from benchmark.objectives._core import (
    Pairs,
    minus_distance_on,
    register_objective,
    to_distance,
)


@register_objective(
    "contrastive", metric="euclidean", normalize=True, order=10, tunable=("margin",), margin=1.0
)
def contrastive(pairs: Pairs, *, margin: float) -> Tensor:
    """Pull positive pairs together, push negative pairs beyond ``margin``.

    Formula (Hadsell et al. 2006, eq. 4, with D the distance of a pair)::

        L = mean_{(i,j) positive} 1/2 D_ij^2  +  mean_{(i,j) negative} 1/2 max(0, m - D_ij)^2

    Positive and negative pairs are averaged separately so that the balance between
    them does not depend on the batch composition. Default D: Euclidean distance of
    L2-normalized embeddings, m = 1.

    Reference: Chopra, Hadsell & LeCun, CVPR 2005; Hadsell, Chopra & LeCun, CVPR 2006.
    """
    pull = 0.5 * to_distance(pairs.at_positives(pairs.sim), pairs.metric).pow(2)
    # the hinge max(0, m - D) on the negatives, 0 elsewhere (in place)
    h = minus_distance_on(pairs, pairs.neg).add_(margin).relu_()
    push = 0.5 * (h * h).sum()  # (a float32 dot product would lose accuracy on big batches)
    return pull.mean() + push / pairs.n_neg.sum()
