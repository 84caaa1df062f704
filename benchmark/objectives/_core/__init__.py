"""What every objective shares, one concern per module:

- ``similarity``: ``pairwise_similarity``, ``to_distance``, ``METRICS``, ``Similarity``;
- ``pairs``: the ``Pairs`` view a reduction reads, the masks built from labels and ref
  labels (``label_masks``, ``pairs_from_labels``), negative subsampling
  (``keep_k_negatives``) and ``minus_distance_on``;
- ``kernels``: numeric kernels (``fill_outside``, ``logsumexp``, ``masked_logsumexp``,
  ``any_along``, ``count``, ``count_per_row``, ``mean_over_anchors``);
- ``registry``: ``OBJECTIVES``, ``ObjectiveSpec`` and its metadata, ``register_objective``,
  the built ``Objective`` module and ``build_objective``.

An objective is a *reduction* -- a pure function of the pairwise score matrix and the
positive/negative masks -- plus a similarity (or distance) and hyperparameters fixed when
it is built (the composition of pytorch-metric-learning, without its mixins).

Call convention of every built objective::

    loss = objective(embeddings, labels, ref_embeddings=None, ref_labels=None)

Equal labels mark positives, different labels negatives. Without ``ref_*`` the candidates
are the embeddings themselves and a sample is never paired with itself; with ``ref_*``
anchors are ``embeddings`` (N, D) and candidates ``ref_embeddings`` (M, D).

Every file of this package is in the shared core of every grid cell
(``benchmark/sources.py``); objective files import from here.
"""

from benchmark.objectives._core.kernels import (
    any_along,
    count,
    count_per_row,
    fill_outside,
    logsumexp,
    masked_logsumexp,
    mean_over_anchors,
)
from benchmark.objectives._core.pairs import (
    Pairs,
    keep_k_negatives,
    label_masks,
    minus_distance_on,
    pairs_from_labels,
)
from benchmark.objectives._core.registry import (
    OBJECTIVES,
    Objective,
    ObjectiveSpec,
    build_objective,
    register_objective,
)
from benchmark.objectives._core.similarity import (
    METRICS,
    Similarity,
    pairwise_similarity,
    to_distance,
)

__all__ = [
    "METRICS",
    "OBJECTIVES",
    "Objective",
    "ObjectiveSpec",
    "Pairs",
    "Similarity",
    "any_along",
    "build_objective",
    "count",
    "count_per_row",
    "fill_outside",
    "keep_k_negatives",
    "label_masks",
    "logsumexp",
    "masked_logsumexp",
    "mean_over_anchors",
    "minus_distance_on",
    "pairs_from_labels",
    "pairwise_similarity",
    "register_objective",
    "to_distance",
]
