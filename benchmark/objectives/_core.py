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
        sq = (x * x).sum(-1, keepdim=True) + (y * y).sum(-1) - 2.0 * (x @ y.T)
        sq = sq.clamp_min(0.0)
        if metric == "sqeuclidean":
            return -sq
        # clamp keeps the gradient of sqrt finite at coincident points (a sample and itself)
        return -sq.clamp_min(1e-12).sqrt()
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

    @cached_property
    def dist(self) -> Tensor:
        return to_distance(self.sim, self.metric)


def masked_logsumexp(x: Tensor, mask: Tensor, dim: int = -1) -> Tensor:
    """log sum_{mask} exp(x) along ``dim``; -inf where the mask is empty, with finite gradients."""
    any_ = mask.any(dim, keepdim=True)
    filled = x.masked_fill(~mask, float("-inf"))
    filled = torch.where(any_, filled, torch.zeros_like(filled))
    out = torch.logsumexp(filled, dim, keepdim=True)
    return torch.where(any_, out, torch.full_like(out, float("-inf"))).squeeze(dim)


def masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``values`` over ``mask``; exactly 0 (with a graph) when the mask is empty."""
    total = torch.where(mask, values, torch.zeros_like(values)).sum()
    return total / mask.sum().clamp_min(1)


def mean_over_positives(per_pair: Tensor, pos: Tensor) -> Tensor:
    """Average over each anchor's positives, then over the anchors that have any.

    Anchors without a positive contribute nothing (documented zero, never NaN).
    """
    per_pair = torch.where(pos, per_pair, torch.zeros_like(per_pair))
    n_pos = pos.sum(1)
    has = n_pos > 0
    per_anchor = per_pair.sum(1) / n_pos.clamp_min(1)
    return per_anchor[has].mean()


def keep_k_negatives(neg: Tensor, k: int, generator: torch.Generator | None = None) -> Tensor:
    """Keep ``k`` negatives per anchor, drawn uniformly without replacement (all if fewer)."""
    if k <= 0:
        raise ValueError(f"num_negatives must be positive, got {k}")
    if k >= neg.shape[1]:
        return neg
    scores = torch.rand(neg.shape, device=neg.device, generator=generator)
    scores = scores.masked_fill(~neg, -1.0)
    idx = scores.topk(k, dim=1).indices
    keep = torch.zeros_like(neg).scatter_(1, idx, True)
    return keep & neg


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
            eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
            pos = pos & ~eye
        if self.num_negatives is not None:
            neg = keep_k_negatives(neg, self.num_negatives)
        if not pos.any():
            raise ValueError(f"objective {self.name!r}: the batch has no positive pair")
        if not neg.any():
            raise ValueError(f"objective {self.name!r}: the batch has no negative pair")
        return Pairs(sim, pos, neg, x, y, self.metric)

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
