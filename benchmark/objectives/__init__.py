"""Objectives: one file each, registered by name (see ../shared/DESIGN.md).

Every public module of this package is imported here, in sorted order, and registers its
objective with ``@register_objective``: adding an objective is adding its file. Modules
whose name starts with ``_`` (the shared ``_core``) are not objectives.
"""

from benchmark.objectives._core import (
    OBJECTIVES,
    Objective,
    ObjectiveSpec,
    Pairs,
    build_objective,
    keep_k_negatives,
    pairwise_similarity,
)
from benchmark.registry import import_submodules

import_submodules(__name__, __path__)

__all__ = [
    "OBJECTIVES",
    "Objective",
    "ObjectiveSpec",
    "Pairs",
    "build_objective",
    "keep_k_negatives",
    "pairwise_similarity",
]
