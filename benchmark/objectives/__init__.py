"""Objectives: one file each, registered by name (see ../shared/DESIGN.md)."""

from benchmark.objectives import (  # noqa: F401  (registration side effects)
    contrastive,
    dv,
    infonce,
    jsd,
    lifted,
    nce,
    npair,
    ntxent,
    nwj,
    triplet,
)
from benchmark.objectives._core import (
    OBJECTIVES,
    Objective,
    ObjectiveSpec,
    Pairs,
    build_objective,
    keep_k_negatives,
    pairwise_similarity,
)

__all__ = [
    "OBJECTIVES",
    "Objective",
    "ObjectiveSpec",
    "Pairs",
    "build_objective",
    "keep_k_negatives",
    "pairwise_similarity",
]
