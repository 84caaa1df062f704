"""scikit-learn's bundled 8x8 handwritten digits (1797 samples, no network)."""

from __future__ import annotations

from pathlib import Path

import torch

from benchmark.datasets._common import DATASETS, random_splits
from benchmark.datasets.base import PreparedData


@DATASETS.register("digits")
def digits(
    root: str | Path | None = None,
    seed: int = 0,
    *,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
) -> PreparedData:
    """x (1797, 1, 8, 8) in [0, 1] (pixel counts 0..16 divided by 16), 10 classes.

    There is no official split: train/val/test are seeded and stratified (70/15/15).
    ``root`` is unused (the data ship with scikit-learn).
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.as_tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.as_tensor(bunch.target, dtype=torch.long)
    return PreparedData(
        name="digits",
        kind="image",
        x=x,
        y=y,
        splits=random_splits(y, seed, val_fraction, test_fraction),
        meta={"num_classes": 10, "hflip": False, "crop_scale": [0.6, 1.0]},
    )
