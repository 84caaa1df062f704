"""Methods: one file each, registered by name (see ../shared/DESIGN.md)."""

from benchmark.methods import (  # noqa: F401  (registration side effects)
    byol,
    clip,
    cpc,
    dgi,
    dim,
    jigsaw,
    moco,
    npid,
    random,
    rotation,
    simclr,
    supervised,
)
from benchmark.methods.base import (
    METHODS,
    NO_OBJECTIVE,
    Batch,
    Method,
    assemble_method,
    check_compatible,
)

__all__ = ["METHODS", "NO_OBJECTIVE", "Batch", "Method", "assemble_method", "check_compatible"]
