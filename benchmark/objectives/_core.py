"""What every objective shares: similarities, positive/negative masks, negative subsampling.

An objective is a *reduction* -- a pure function of the pairwise score matrix and the
positive/negative masks -- plus a similarity (or distance) and hyperparameters fixed when
it is built (the composition of pytorch-metric-learning, without its mixins).

Call convention of every built objective::

    loss = objective(embeddings, labels, ref_embeddings=None, ref_labels=None)

Equal labels mark positives, different labels negatives. Without ``ref_*`` the candidates
are the embeddings themselves and a sample is never paired with itself; with ``ref_*``
anchors are ``embeddings`` (N, D) and candidates ``ref_embeddings`` (M, D).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmark.registry import Registry

METRICS = ("cosine", "dot", "euclidean", "sqeuclidean")
Similarity = Callable[[Tensor, Tensor], Tensor]


def pairwise_similarity(x: Tensor, y: Tensor, metric: str) -> Tensor:
    """(N, D), (M, D) -> (N, M) similarity; for euclidean metrics it is the negative distance."""
    if metric == "cosine":
        return F.normalize(x, dim=-1) @ F.normalize(y, dim=-1).T
    if metric == "dot":
        return x @ y.T
    if metric in ("euclidean", "sqeuclidean"):
        # ||x||^2 + ||y||^2 - 2 x.y in one multiply-add (scaling by -2 is exact)
        sq = torch.addmm((x * x).sum(-1, keepdim=True) + (y * y).sum(-1), x, y.T, alpha=-2.0)
        # clamps written as in-place fills: autograd then keeps a bool mask, not a copy of sq
        if metric == "sqeuclidean":
            return sq.masked_fill_(sq < 0.0, 0.0).neg_()
        # clamping at 1e-12 (so also at 0) keeps the gradient of sqrt finite at coincident
        # points (a sample and itself)
        return -sq.masked_fill_(sq < 1e-12, 1e-12).sqrt_()
    raise ValueError(f"unknown metric {metric!r}; allowed: {', '.join(METRICS)}")


def to_distance(sim: Tensor, metric: str | None) -> Tensor:
    """Inverse of :func:`pairwise_similarity`: 1 - cos for cosine, -s otherwise."""
    return 1.0 - sim if metric == "cosine" else -sim


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


def fill_outside(x: Tensor, mask: Tensor, dim: int | None = None) -> Tensor:
    """A new tensor: ``x`` where ``mask``, -inf elsewhere (one pass, no copy of the mask).

    With ``dim``, the lines along ``dim`` where the mask is empty are 0 instead, which keeps
    the gradient of a log-sum-exp over them finite. The result is not saved by autograd, so
    callers may transform it in place (-inf stays -inf under shifts and positive scaling).
    """
    if dim is None:
        return torch.where(mask, x, -math.inf)
    return _fill_outside(x, mask, any_along(mask, dim))


def minus_distance_on(pairs: Pairs, mask: Tensor) -> Tensor:
    """-D (minus :attr:`Pairs.dist`, exactly) where ``mask``, -inf elsewhere: a new tensor."""
    out = fill_outside(pairs.sim, mask)
    if pairs.metric == "cosine":
        out.neg_().add_(1.0).neg_()  # -(1 - s)
    return out  # otherwise D = -s: -D is the score itself


def _fill_outside(x: Tensor, mask: Tensor, any_: Tensor) -> Tensor:
    other = torch.zeros(any_.shape, dtype=x.dtype, device=x.device).masked_fill_(any_, -math.inf)
    return torch.where(mask, x, other)


class _LogSumExp(torch.autograd.Function):
    """``torch.logsumexp(x, dim, keepdim=True)`` whose backward makes one temporary of the
    size of ``x`` (in place) instead of three; same formula, grad * exp(x - out)."""

    @staticmethod
    def forward(ctx, x: Tensor, dim: int) -> Tensor:
        out = torch.logsumexp(x, dim, keepdim=True)
        ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        x, out = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph=True: stay differentiable
            return grad * (x - out).exp(), None
        return (x - out).exp_().mul_(grad), None


def logsumexp(x: Tensor, dim: int) -> Tensor:
    """``torch.logsumexp(x, dim)`` with a leaner backward (see :class:`_LogSumExp`)."""
    return _LogSumExp.apply(x, dim).squeeze(dim)


def masked_logsumexp(
    x: Tensor, mask: Tensor, dim: int = -1, *, temperature: float | None = None
) -> Tensor:
    """log sum_{mask} exp(x [/ temperature]) along ``dim``; -inf where the mask is empty, with
    finite gradients."""
    any_ = any_along(mask, dim)
    filled = _fill_outside(x, mask, any_)
    if temperature is not None:
        filled.div_(temperature)
    out = _LogSumExp.apply(filled, dim)
    return out.masked_fill(~any_, -math.inf).squeeze(dim)


def any_along(mask: Tensor, dim: int) -> Tensor:
    """``mask.any(dim, keepdim=True)``, through a byte maximum (many times faster on CPU)."""
    return mask.view(torch.uint8).amax(dim, keepdim=True).bool()


def count(mask: Tensor) -> Tensor:
    """Number of True entries (``mask.sum()`` would first copy the mask to int64)."""
    return torch.count_nonzero(mask)


def count_per_row(mask: Tensor) -> Tensor:
    """(N, M) bool -> (N,) int64 number of True entries per row, in row blocks so that no
    (N, M) int64 copy of the mask is made (as ``mask.sum(1)`` would)."""
    rows = max(1, 2**18 // max(1, mask.shape[1]))
    return torch.cat([block.sum(1) for block in mask.split(rows)])


def masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``values`` over ``mask``; exactly 0 (with a graph) when the mask is empty."""
    return torch.where(mask, values, 0.0).sum() / count(mask).clamp_min(1)


def mean_over_positives(per_pair: Tensor, pos: Tensor) -> Tensor:
    """Average over each anchor's positives, then over the anchors that have any.

    Anchors without a positive contribute nothing (documented zero, never NaN).
    """
    n_pos = count_per_row(pos)
    has = n_pos > 0
    per_anchor = torch.where(pos, per_pair, 0.0).sum(1) / n_pos.clamp_min(1)
    return per_anchor[has].mean()


def mean_over_anchors(values: Tensor, anchors: Tensor, n_anchors: int) -> Tensor:
    """:func:`mean_over_positives` of one value per positive pair, ``anchors`` their rows.

    Only the positive pairs are touched (``values`` has one entry per pair, e.g.
    ``pairs.at_positives(t)`` with ``anchors = pairs.pos_index[0]``), not an (N, M) matrix.
    """
    n_pos = torch.bincount(anchors, minlength=n_anchors)
    per_anchor = values.new_zeros(n_anchors).index_add(0, anchors, values)
    has = n_pos > 0
    return (per_anchor[has] / n_pos[has]).mean()


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


@dataclass(frozen=True)
class ObjectiveSpec:
    """A registered objective: its reduction, default similarity and hyperparameters."""

    name: str
    reduce: Callable[..., Tensor]
    metric: str
    normalize: bool
    hyperparameters: dict[str, float] = field(default_factory=dict)
    tunable: tuple[str, ...] = ()


OBJECTIVES: Registry[ObjectiveSpec] = Registry("objective")


def register_objective(
    name: str,
    *,
    metric: str,
    normalize: bool = False,
    tunable: tuple[str, ...] = (),
    **hyperparameters: float,
) -> Callable:
    """Decorator registering a reduction ``fn(pairs: Pairs, **hyperparameters) -> scalar``."""

    def add(fn: Callable[..., Tensor]) -> Callable[..., Tensor]:
        OBJECTIVES.register(name)(
            ObjectiveSpec(name, fn, metric, normalize, dict(hyperparameters), tunable)
        )
        return fn

    return add


class Objective(nn.Module):
    """A built objective: ``objective(embeddings, labels, ref_embeddings=None, ref_labels=None)``.

    ``similarity`` is a metric name or a module/callable ``(x, y) -> (N, M)`` scores (for
    example the learned bilinear critic of DIM/DGI, whose parameters then belong to this
    module). ``num_negatives`` keeps that many randomly drawn negatives per anchor so that
    the number of negatives can be swept independently of the batch size.
    """

    def __init__(
        self,
        spec: ObjectiveSpec,
        *,
        similarity: str | Similarity | None = None,
        normalize: bool | None = None,
        num_negatives: int | None = None,
        **hyperparameters: float,
    ) -> None:
        super().__init__()
        unknown = set(hyperparameters) - set(spec.hyperparameters)
        if unknown:
            allowed = ", ".join(sorted(spec.hyperparameters)) or "none"
            raise ValueError(
                f"objective {spec.name!r} has no hyperparameter {min(unknown)!r}; "
                f"allowed: {allowed}"
            )
        self.spec = spec
        self.hparams = {**spec.hyperparameters, **hyperparameters}
        for key in ("temperature", "margin"):
            if key == "temperature" and key in self.hparams and not self.hparams[key] > 0:
                raise ValueError(f"temperature must be > 0, got {self.hparams[key]}")
        similarity = spec.metric if similarity is None else similarity
        if isinstance(similarity, str):
            if similarity not in METRICS:
                raise ValueError(
                    f"unknown similarity {similarity!r}; allowed: {', '.join(METRICS)}"
                )
            self.metric: str | None = similarity
            self.critic: Similarity | None = None
        else:
            self.metric = None
            self.critic = similarity  # an nn.Module is registered as a submodule
        self.normalize = spec.normalize if normalize is None else normalize
        if num_negatives is not None and num_negatives <= 0:
            raise ValueError(f"num_negatives must be positive, got {num_negatives}")
        self.num_negatives = num_negatives

    @property
    def name(self) -> str:
        return self.spec.name

    def pairs(
        self,
        embeddings: Tensor,
        labels: Tensor,
        ref_embeddings: Tensor | None = None,
        ref_labels: Tensor | None = None,
    ) -> Pairs:
        if (ref_embeddings is None) != (ref_labels is None):
            raise ValueError("ref_embeddings and ref_labels must be given together")
        if embeddings.ndim != 2 or labels.shape != embeddings.shape[:1]:
            raise ValueError(
                f"expected embeddings (N, D) and labels (N,), got {tuple(embeddings.shape)} "
                f"and {tuple(labels.shape)}"
            )
        same = ref_embeddings is None
        y = embeddings if same else ref_embeddings
        y_labels = labels if same else ref_labels
        x = embeddings
        if self.normalize:
            x, y = F.normalize(x, dim=-1), F.normalize(y, dim=-1)
        sim = (
            self.critic(x, y) if self.critic is not None else pairwise_similarity(x, y, self.metric)
        )
        pos = labels[:, None] == y_labels[None, :]
        neg = ~pos
        if same:
            pos.fill_diagonal_(False)  # never paired with itself
        if self.num_negatives is not None:
            neg = keep_k_negatives(neg, self.num_negatives)
        pairs = Pairs(sim, pos, neg, x, y, self.metric)
        if not len(pairs.pos_index[0]):
            raise ValueError(f"objective {self.name!r}: the batch has no positive pair")
        # every candidate of another label is a negative, or num_negatives of them if more
        n_neg = len(y_labels) - pairs.n_pos - int(same)
        if self.num_negatives is not None:
            n_neg = n_neg.clamp_max(self.num_negatives)
        pairs.neg_counts = n_neg
        if not n_neg.any():
            raise ValueError(f"objective {self.name!r}: the batch has no negative pair")
        return pairs

    def forward(
        self,
        embeddings: Tensor,
        labels: Tensor,
        ref_embeddings: Tensor | None = None,
        ref_labels: Tensor | None = None,
    ) -> Tensor:
        pairs = self.pairs(embeddings, labels, ref_embeddings, ref_labels)
        return self.spec.reduce(pairs, **self.hparams)

    def extra_repr(self) -> str:
        hp = ", ".join(f"{k}={v:g}" for k, v in self.hparams.items())
        sim = self.metric or type(self.critic).__name__
        return f"{self.name}, similarity={sim}, normalize={self.normalize}, {hp}".rstrip(", ")


def build_objective(name: str, **kwargs) -> Objective:
    """Build a registered objective; see :class:`Objective` for the keyword arguments."""
    return Objective(OBJECTIVES.get(name), **kwargs)
