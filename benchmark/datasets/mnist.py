"""MNIST from local idx files via torchvision (download=False, always)."""

from __future__ import annotations

from pathlib import Path

from benchmark.datasets._common import (
    DATASETS,
    official_image_split,
    require_files,
    resolve_root,
)
from benchmark.datasets.base import PreparedData

FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


@DATASETS.register("mnist")
def mnist(
    root: str | Path | None = None, seed: int = 0, *, val_fraction: float = 0.1
) -> PreparedData:
    """x (70000, 1, 28, 28) in [0, 1]: the official 60000 train then 10000 test; ``val``
    is a seeded, stratified ``val_fraction`` of train (6000).

    Reads the uncompressed idx files from ``root/MNIST/raw/`` (torchvision's layout).
    """
    from torchvision.datasets import MNIST

    root = resolve_root(root)
    require_files("mnist", root / "MNIST" / "raw", FILES, "the MNIST site, gunzipped")
    parts = []
    for train in (True, False):
        ds = MNIST(str(root), train=train, download=False)
        parts.append((ds.data.unsqueeze(1), ds.targets))
    meta = {"num_classes": 10, "hflip": False, "crop_scale": [0.5, 1.0]}
    return official_image_split("mnist", parts[0], parts[1], seed, val_fraction, meta)
