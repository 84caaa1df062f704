"""CIFAR-10 from the local python-pickle batches via torchvision (download=False, always)."""

from __future__ import annotations

from pathlib import Path

import torch

from benchmark.datasets._common import (
    DATASETS,
    official_image_split,
    require_files,
    resolve_root,
)
from benchmark.datasets.base import PreparedData

BASE_FOLDER = "cifar-10-batches-py"
FILES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch", "batches.meta")


def _reader():
    """torchvision's CIFAR10 without the md5 checks (a present, readable file is enough)."""
    from torchvision.datasets import CIFAR10

    class LocalCIFAR10(CIFAR10):
        train_list = [[name, None] for name, _ in CIFAR10.train_list]
        test_list = [[name, None] for name, _ in CIFAR10.test_list]
        meta = {**CIFAR10.meta, "md5": None}

    return LocalCIFAR10


@DATASETS.register("cifar10")
def cifar10(
    root: str | Path | None = None, seed: int = 0, *, val_fraction: float = 0.1
) -> PreparedData:
    """x (60000, 3, 32, 32) in [0, 1]: the official 50000 train then 10000 test; ``val`` is
    a seeded, stratified ``val_fraction`` of train (5000).

    Reads ``root/cifar-10-batches-py/`` (data_batch_1..5, test_batch, batches.meta).
    """
    root = resolve_root(root)
    require_files("cifar10", root / BASE_FOLDER, FILES, "cifar-10-python.tar.gz, extracted")
    reader = _reader()
    parts = []
    for train in (True, False):
        ds = reader(str(root), train=train, download=False)
        x = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()  # HWC -> CHW
        parts.append((x, torch.as_tensor(ds.targets)))
    meta = {"num_classes": 10, "hflip": True, "crop_scale": [0.2, 1.0], "classes": ds.classes}
    return official_image_split("cifar10", parts[0], parts[1], seed, val_fraction, meta)
