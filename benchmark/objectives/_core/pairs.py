"""The pairs view a reduction reads: scores, positive/negative masks from labels, subsampling.

Equal labels mark positives, different labels negatives. Without ``ref_labels`` the
candidates are the anchors themselves and a sample is never paired with itself; with them,
anchors are the N ``labels`` and candidates the M ``ref_labels``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import torch
from torch import Tensor

from benchmark.objectives._core.kernels import count_per_row, fill_outside
from benchmark.objectives._core.similarity import to_distance


@dataclass
class Pairs:
    """Everything a reduction may read: scores, masks and the raw embeddings."""

    sim: Tensor  # (N, M) similarity (critic score) between anchor i and candidate j
    pos: Tensor  # (N, M) bool, j is a positive of i
    neg: Tensor  # (N, M) bool, j is a negative of i
    x: Tensor  # (N, D) anchors
    y: Tensor  # (M, D) candidates
    metric: str | None = None
    # (N,) number of negatives of each anchor, when the builder knows it without counting
    neg_counts: Tensor | None = field(default=None, repr=False)

    @cached_property
    def dist(self) -> Tensor:
        return to_distance(self.sim, self.metric)

    @cached_property
    def n_pos(self) -> Tensor:
        """(N,) int64 number of positives of each anchor."""
        return torch.bincount(self.pos_index[0], minlength=self.pos.shape[0])

    @cached_property
    def n_neg(self) -> Tensor:
        """(N,) int64 number of negatives of each anchor."""
        return self.neg_counts if self.neg_counts is not None else count_per_row(self.neg)

    @cached_property
    def pos_index(self) -> tuple[Tensor, Tensor]:
        """(anchor, candidate) indices of the positive pairs, in row-major order."""
        return self.pos.nonzero(as_tuple=True)

    def at_positives(self, t: Tensor) -> Tensor:
        """The entries of an (N, M) tensor at the positive pairs (one per pair)."""
        return t[self.pos_index]


def minus_distance_on(pairs: Pairs, mask: Tensor) -> Tensor:
    """-D (minus :attr:`Pairs.dist`, exactly) where ``mask``, -inf elsewhere: a new tensor."""
    out = fill_outside(pairs.sim, mask)
    if pairs.metric == "cosine":
        out.neg_().add_(1.0).neg_()  # -(1 - s)
    return out  # otherwise D = -s: -D is the score itself


def label_masks(
    labels: Tensor, ref_labels: Tensor | None = None, *, num_negatives: int | None = None
) -> tuple[Tensor, Tensor]:
    """(N, M) bool masks ``(pos, neg)``: equal labels, and different labels (``num_negatives``
    of them per anchor, drawn by :func:`keep_k_negatives`, if given). Without ``ref_labels``
    the candidates are ``labels`` themselves and the diagonal is neither."""
    same = ref_labels is None
    y_labels = labels if same else ref_labels
    pos = labels[:, None] == y_labels[None, :]
    neg = ~pos
    if same:
        pos.fill_diagonal_(False)  # never paired with itself
    if num_negatives is not None:
        neg = keep_k_negatives(neg, num_negatives)
    return pos, neg


def pairs_from_labels(
    sim: Tensor,
    x: Tensor,
    y: Tensor,
    labels: Tensor,
    ref_labels: Tensor | None = None,
    *,
    metric: str | None = None,
    num_negatives: int | None = None,
) -> Pairs:
    """The :class:`Pairs` of scores ``sim`` (N, M) between anchors ``x`` and candidates ``y``
    with the masks of :func:`label_masks`; the negative counts are known without counting."""
    same = ref_labels is None
    pos, neg = label_masks(labels, ref_labels, num_negatives=num_negatives)
    pairs = Pairs(sim, pos, neg, x, y, metric)
    # every candidate of another label is a negative, or num_negatives of them if more
    n_candidates = len(labels) if same else len(ref_labels)
    n_neg = n_candidates - pairs.n_pos - int(same)
    if num_negatives is not None:
        n_neg = n_neg.clamp_max(num_negatives)
    pairs.neg_counts = n_neg
    return pairs


def keep_k_negatives(neg: Tensor, k: int, generator: torch.Generator | None = None) -> Tensor:
    """Keep ``k`` negatives per anchor, drawn uniformly without replacement (all if fewer)."""
    if k <= 0:
        raise ValueError(f"num_negatives must be positive, got {k}")
    if k >= neg.shape[1]:
        return neg
    scores = torch.rand(neg.shape, device=neg.device, generator=generator)
    scores.masked_fill_(~neg, -1.0)
    idx = scores.topk(k, dim=1).indices
    del scores
    return torch.zeros_like(neg).scatter_(1, idx, True).logical_and_(neg)
