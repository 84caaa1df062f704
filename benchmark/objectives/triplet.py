"""Triplet loss over all valid triplets, optionally semi-hard only (Schroff et al. 2015)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from benchmark.objectives._core import (
    Pairs,
    count,
    minus_distance_on,
    register_objective,
    to_distance,
)


@register_objective(
    "triplet",
    metric="sqeuclidean",
    normalize=True,
    order=20,
    tunable=("margin",),
    margin=0.2,
    semihard=0.0,
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

    Never builds the (N, P, M) triplet tensor. With K the largest number of positives of an
    anchor, each positive slot k < K is one (N, M) pass over the negatives when K <= 6
    (cost O(K N M)); otherwise, for each anchor the negative distances are sorted once, and
    for a positive with threshold t = D_ap + alpha the sum over negatives of
    max(0, t - D_an) equals c * t - (sum of the c smallest D_an), where c counts the
    negatives below t (a binary search; cost O(N M log M)). Memory O(N M), exact.

    Reference: Schroff, Kalenichenko & Philbin, CVPR 2015, arXiv:1503.03832.
    """
    sim = pairs.sim
    n, dtype = len(sim), sim.dtype
    anchors, _ = pairs.pos_index
    d_ap = to_distance(pairs.at_positives(sim), pairs.metric)  # (P,)
    # the positives of each anchor in slots 0..K-1 of an (N, K) table
    n_pos, n_neg = pairs.n_pos, pairs.n_neg
    k_max = int(n_pos.max())
    slot = torch.arange(len(anchors), device=sim.device) - (n_pos.cumsum(0) - n_pos)[anchors]
    index = (anchors, slot)
    used = torch.zeros(n, k_max, dtype=torch.bool, device=sim.device)
    used[index] = True
    thr = d_ap.new_zeros(n, k_max).index_put(index, d_ap + margin)
    dap = d_ap.detach().new_zeros(n, k_max).index_put_(index, d_ap.detach())
    if k_max <= DIRECT_MAX_POSITIVES:
        total, n_triplets = _direct(minus_distance_on(pairs, pairs.neg), thr, dap, used, semihard)
    else:
        d = [minus_distance_on(pairs, pairs.neg).neg_()]  # D_an, +inf elsewhere
        total, n_triplets = _sorted(d, thr, dap, used, n_neg, semihard)
    if not semihard:
        n_triplets = (n_pos * n_neg).sum().to(dtype)
    return total / n_triplets.clamp_min(1)


# up to this many positives per anchor, one pass per positive slot beats sorting (on a CPU
# both cost about the same at 8)
DIRECT_MAX_POSITIVES = 6


def _direct(neg_d: Tensor, thr: Tensor, dap: Tensor, used: Tensor, semihard: float):
    """sum over (a, p, n) of max(0, t_ap - D_an) [semi-hard only], and the triplet count."""
    total = neg_d.new_zeros(())
    n = torch.zeros((), dtype=torch.long, device=neg_d.device)
    for k in range(thr.shape[1]):
        t = torch.where(used[:, k], thr[:, k], -math.inf)[:, None]
        h = neg_d + t  # t - D_an exactly; -inf for non-negatives and unused slots
        drop = h <= 0  # keeps D_an < t
        if semihard:
            drop |= neg_d >= -dap[:, k, None]  # keeps D_an > D_ap
            n = n + drop.numel() - count(drop)
        total = total + h.masked_fill_(drop, 0.0).sum()
    return total, n.to(neg_d.dtype)


def _sorted(
    d: list[Tensor], thr: Tensor, dap: Tensor, used: Tensor, n_neg: Tensor, semihard: float
):
    """:func:`_direct` by sorting each anchor's negative distances ``d[0]`` (+inf elsewhere;
    passed in a list so that it is freed once sorted)."""
    sorted_d = d.pop().sort(dim=1).values
    # prefix sums; the +inf entries sit after every negative and are never read
    cums = sorted_d.cumsum(1)
    # (detach: the search only counts; gradients flow through thr and the cumulative sums)
    keys = sorted_d.detach()
    hi = torch.searchsorted(keys, thr.detach(), side="left")
    hi = torch.minimum(hi, n_neg[:, None])
    if semihard:
        lo = torch.minimum(torch.searchsorted(keys, dap, side="right"), hi)
    else:
        lo = torch.zeros_like(hi)

    def prefix(idx: Tensor) -> Tensor:  # sum of the idx smallest negative distances
        return torch.where(idx > 0, cums.gather(1, (idx - 1).clamp_min(0)), 0.0)

    c = (hi - lo).to(cums.dtype)
    total = torch.where(used, c * thr - (prefix(hi) - prefix(lo)), 0.0).sum()
    return total, torch.where(used, c, 0.0).sum()
