"""Triplet loss over all valid triplets, optionally semi-hard only (Schroff et al. 2015)."""

from __future__ import annotations

import torch
from torch import Tensor

from benchmark.objectives._core import Pairs, register_objective


@register_objective(
    "triplet", metric="sqeuclidean", normalize=True, tunable=("margin",), margin=0.2, semihard=0.0
)
def triplet(pairs: Pairs, *, margin: float, semihard: float) -> Tensor:
    """Mean hinge over every valid triplet (anchor a, positive p, negative n).

    Formula (FaceNet, Schroff et al. 2015, eq. 2; D = squared Euclidean distance of
    L2-normalized embeddings by default, margin alpha = 0.2)::

        L = 1/|T| sum_{(a,p,n) in T} max(0, D_ap - D_an + alpha)

    T is every (a, p, n) with label(p) = label(a), label(n) != label(a). With
    ``semihard=1`` T keeps only the semi-hard triplets D_ap < D_an < D_ap + alpha
    (FaceNet section 3.2; all of them rather than one per pair); if there are none the
    loss is a documented 0.

    Never builds the (N, P, M) triplet tensor: for each anchor the negative distances are
    sorted once, and for a positive with threshold t = D_ap + alpha the sum over negatives
    of max(0, t - D_an) equals c * t - (sum of the c smallest D_an), where c counts the
    negatives below t (a binary search). Cost O(N M log M), memory O(N M), exact.

    Reference: Schroff, Kalenichenko & Philbin, CVPR 2015, arXiv:1503.03832.
    """
    d, pos, neg = pairs.dist, pairs.pos, pairs.neg
    big = torch.finfo(d.dtype).max
    neg_d = d.masked_fill(~neg, big)
    sorted_d, _ = neg_d.sort(dim=1)
    valid = sorted_d < big
    cums = torch.cat(
        [sorted_d.new_zeros(len(d), 1), torch.where(valid, sorted_d, 0.0).cumsum(1)], dim=1
    )
    thr = (d + margin).contiguous()
    # (detach: the search only counts; gradients flow through thr and the cumulative sums)
    hi = torch.searchsorted(sorted_d.detach(), thr.detach(), side="left")
    hi = torch.minimum(hi, valid.sum(1, keepdim=True))
    if semihard:
        lo = torch.searchsorted(sorted_d.detach(), d.detach().contiguous(), side="right")
        lo = torch.minimum(lo, hi)
    else:
        lo = torch.zeros_like(hi)
    count = (hi - lo).to(d.dtype)
    total = count * thr - (cums.gather(1, hi) - cums.gather(1, lo))
    total = torch.where(pos, total, torch.zeros_like(total))
    n_triplets = torch.where(pos, count, torch.zeros_like(count)).sum()
    if not semihard:
        n_triplets = (pos.sum(1) * neg.sum(1)).sum().to(d.dtype)
    return total.sum() / n_triplets.clamp_min(1)
