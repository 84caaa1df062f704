"""Which objectives each method accepts, as plain data (importable without torch).

The method classes take their ``objectives`` from here; the suite loader uses it to
expand ``objectives: all`` and to decide quickly whether a stage has work.
tests/methods/test_methods.py checks it against the registries.
"""

from __future__ import annotations

NO_OBJECTIVE = "none"
ALL_OBJECTIVES: tuple[str, ...] = (
    "contrastive",
    "dv",
    "infonce",
    "jsd",
    "lifted",
    "nce",
    "npair",
    "ntxent",
    "nwj",
    "triplet",
)
# objectives that read a score (a learned critic's output), not a metric space: the ones
# that make sense for DIM, DGI and CPC's predictions
SCORE_OBJECTIVES: tuple[str, ...] = ("jsd", "infonce", "nce", "nwj", "dv", "npair")

COMPATIBLE: dict[str, tuple[str, ...]] = {
    "simclr": ALL_OBJECTIVES,
    "moco": ALL_OBJECTIVES,
    "npid": ALL_OBJECTIVES,
    "clip": ALL_OBJECTIVES,
    "cpc": SCORE_OBJECTIVES,
    "dim": SCORE_OBJECTIVES,
    "dgi": SCORE_OBJECTIVES,
    "byol": (),
    "rotation": (),
    "jigsaw": (),
    "supervised": (),
    "random": (),
}

# what Optuna tunes per objective (the objective registry's ``tunable``); objectives not
# listed have nothing to tune, so their tune@ stages finish without importing torch
TUNABLE: dict[str, tuple[str, ...]] = {
    "contrastive": ("margin",),
    "infonce": ("temperature",),
    "lifted": ("margin",),
    "nce": ("temperature",),
    "ntxent": ("temperature",),
    "triplet": ("margin",),
}


def compatible_objectives(method: str) -> tuple[str, ...]:
    """The method's objectives, or ("none",) for methods that take none."""
    if method not in COMPATIBLE:
        raise KeyError(f"unknown method {method!r}; valid: {', '.join(sorted(COMPATIBLE))}")
    return COMPATIBLE[method] or (NO_OBJECTIVE,)
