"""The objective registry: the registered spec and its metadata, and the built module.

A registered objective is a *reduction* -- a pure function of a :class:`Pairs` view -- plus
a default similarity and hyperparameters; :func:`build_objective` fixes them and returns an
:class:`Objective` module with the call convention of every objective::

    loss = objective(embeddings, labels, ref_embeddings=None, ref_labels=None)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmark.objectives._core.pairs import Pairs, keep_k_negatives, pairs_from_labels
from benchmark.objectives._core.similarity import METRICS, Similarity, pairwise_similarity
from benchmark.registry import Registry


@dataclass(frozen=True)
class ObjectiveSpec:
    """A registered objective: its reduction, default similarity and hyperparameters, and the
    metadata other code reads instead of keeping a copy (``python -m benchmark list --json``).

    ``tunable``: the hyperparameters Optuna tunes. ``scores``: the objective reads a score (a
    learned critic's output), not a metric space, so it suits DIM, DGI and CPC's predictions.
    ``order``: the report's display position (lower first; ``None`` after the ordered ones,
    alphabetically).
    """

    name: str
    reduce: Callable[..., Tensor]
    metric: str
    normalize: bool
    hyperparameters: dict[str, float] = field(default_factory=dict)
    tunable: tuple[str, ...] = ()
    scores: bool = False
    order: int | None = None


OBJECTIVES: Registry[ObjectiveSpec] = Registry("objective")


def register_objective(
    name: str,
    *,
    metric: str,
    normalize: bool = False,
    tunable: tuple[str, ...] = (),
    scores: bool = False,
    order: int | None = None,
    **hyperparameters: float,
) -> Callable:
    """Decorator registering a reduction ``fn(pairs: Pairs, **hyperparameters) -> scalar``;
    the keyword arguments after the metadata are the hyperparameters and their defaults."""
    if metric not in METRICS:
        raise ValueError(f"objective {name!r}: unknown metric {metric!r}; allowed: {METRICS}")
    unknown = sorted(set(tunable) - set(hyperparameters))
    if unknown:
        raise ValueError(f"objective {name!r}: tunable {unknown} are not hyperparameters")

    def add(fn: Callable[..., Tensor]) -> Callable[..., Tensor]:
        spec = ObjectiveSpec(
            name, fn, metric, normalize, dict(hyperparameters), tuple(tunable), scores, order
        )
        OBJECTIVES.register(name)(spec)
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
        if "temperature" in self.hparams and not self.hparams["temperature"] > 0:
            raise ValueError(f"temperature must be > 0, got {self.hparams['temperature']}")
        if "margin" in self.hparams and not 0 <= self.hparams["margin"] < float("inf"):
            raise ValueError(f"margin must be finite and >= 0, got {self.hparams['margin']}")
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
        x = embeddings
        y = embeddings if ref_embeddings is None else ref_embeddings
        if self.normalize:
            x, y = F.normalize(x, dim=-1), F.normalize(y, dim=-1)
        sim = (
            self.critic(x, y) if self.critic is not None else pairwise_similarity(x, y, self.metric)
        )
        pairs = pairs_from_labels(
            sim, x, y, labels, ref_labels, metric=self.metric, num_negatives=self.num_negatives
        )
        if not len(pairs.pos_index[0]):
            raise ValueError(f"objective {self.name!r}: the batch has no positive pair")
        if not pairs.n_neg.any():
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

    def masked_pairs(
        self, embeddings: Tensor, ref_embeddings: Tensor, pos: Tensor, neg: Tensor
    ) -> Pairs:
        """The :class:`Pairs` of anchors (N, D) and candidates (M, D) with explicit (N, M)
        masks instead of labels: a candidate in neither ``pos`` nor ``neg`` is excluded for
        that anchor (MoCo's own stale key in the queue, NPID's own bank entry among the
        noise draws), which the label convention cannot express. Similarity, normalisation
        and ``num_negatives`` subsampling (drawn from ``neg``) are the objective's own."""
        labels = torch.arange(len(embeddings), device=embeddings.device)
        ref_labels = torch.full((len(ref_embeddings),), -1, dtype=torch.long, device=labels.device)
        rows, cols = pos.nonzero(as_tuple=True)
        ref_labels[cols] = rows  # placeholder labels: only the similarity is kept from `base`
        base = self.pairs(embeddings, labels, ref_embeddings, ref_labels)
        if self.num_negatives is not None:
            neg = keep_k_negatives(neg, self.num_negatives)
        return dataclasses.replace(base, pos=pos, neg=neg, neg_counts=neg.sum(1))

    def masked(
        self, embeddings: Tensor, ref_embeddings: Tensor, pos: Tensor, neg: Tensor
    ) -> Tensor:
        """The loss over :meth:`masked_pairs`."""
        pairs = self.masked_pairs(embeddings, ref_embeddings, pos, neg)
        return self.spec.reduce(pairs, **self.hparams)

    def extra_repr(self) -> str:
        hp = ", ".join(f"{k}={v:g}" for k, v in self.hparams.items())
        sim = self.metric or type(self.critic).__name__
        return f"{self.name}, similarity={sim}, normalize={self.normalize}, {hp}".rstrip(", ")


def build_objective(name: str, **kwargs) -> Objective:
    """Build a registered objective; see :class:`Objective` for the keyword arguments."""
    return Objective(OBJECTIVES.get(name), **kwargs)
