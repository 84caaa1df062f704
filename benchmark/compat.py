"""The registries' answers for code that must not import torch (suite loading, dvc.yaml
generation, stages with nothing to do), read from the committed ``benchmark/registry.json``.

That file is written by ``python -m benchmark list --json --out benchmark/registry.json``
from the registries themselves (each objective's metadata beside its registration, each
method's compatible objectives on its class); tests/objectives/test_registry_file.py
checks it is current. Nothing here is a hand-kept copy.
"""

from __future__ import annotations

import json
from pathlib import Path

NO_OBJECTIVE = "none"
REGISTRY_FILE = Path(__file__).with_name("registry.json")

_registry = json.loads(REGISTRY_FILE.read_text(encoding="utf-8"))
_objectives = _registry["objectives"]

ALL_OBJECTIVES: tuple[str, ...] = tuple(o["name"] for o in _objectives)
# objectives that read a score (a learned critic's output), not a metric space
SCORE_OBJECTIVES: tuple[str, ...] = tuple(o["name"] for o in _objectives if o["scores"])
COMPATIBLE: dict[str, tuple[str, ...]] = {
    m["name"]: tuple(m["objectives"]) for m in _registry["methods"]
}
# each objective's hyperparameters and their defaults (what CellConfig.objective_kwargs checks)
HYPERPARAMETERS: dict[str, dict[str, float]] = {
    o["name"]: dict(o["hyperparameters"]) for o in _objectives
}
# what Optuna tunes per objective; objectives not listed have nothing to tune
TUNABLE: dict[str, tuple[str, ...]] = {
    o["name"]: tuple(o["tunable"]) for o in _objectives if o["tunable"]
}


def compatible_objectives(method: str) -> tuple[str, ...]:
    """The method's objectives, or ("none",) for methods that take none."""
    if method not in COMPATIBLE:
        raise KeyError(f"unknown method {method!r}; valid: {', '.join(sorted(COMPATIBLE))}")
    return COMPATIBLE[method] or (NO_OBJECTIVE,)
