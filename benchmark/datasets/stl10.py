"""STL-10 (labeled part) from the local binary files via torchvision (download=False)."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from benchmark.datasets._common import (
    DATASETS,
    official_image_split,
    require_files,
    resolve_root,
)
from benchmark.datasets.base import PreparedData

BASE_FOLDER = "stl10_binary"
FILES = ("train_X.bin", "train_y.bin", "test_X.bin", "test_y.bin")


def _reader():
    """torchvision's STL10 needing only the labeled files and no md5 checks (the 2.6 GB
    unlabeled_X.bin is not used)."""
    from torchvision.datasets import STL10

    class LabeledSTL10(STL10):
        train_list = [["train_X.bin", None], ["train_y.bin", None]]
        test_list = [["test_X.bin", None], ["test_y.bin", None]]

    return LabeledSTL10


@DATASETS.register("stl10")
def stl10(
    root: str | Path | None = None,
    seed: int = 0,
    *,
    val_fraction: float = 0.1,
    image_size: int = 96,
) -> PreparedData:
    """x (13000, 3, S, S) in [0, 1]: the official 5000 labeled train then 8000 test images
    (the unlabeled part is not used); ``val`` is a seeded, stratified ``val_fraction`` of
    train (500). ``image_size`` < 96 downsamples (antialiased bilinear) to keep the
    prepared file small.

    Reads ``root/stl10_binary/`` (train_X.bin, train_y.bin, test_X.bin, test_y.bin).
    """
    root = resolve_root(root)
    require_files("stl10", root / BASE_FOLDER, FILES, "stl10_binary.tar.gz, extracted")
    reader = _reader()
    parts = []
    for split in ("train", "test"):
        ds = reader(str(root), split=split, download=False)
        x = torch.from_numpy(ds.data.copy())  # (N, 3, 96, 96) uint8
        if image_size != x.shape[-1]:
            x = torch.cat(
                [
                    F.interpolate(c.float(), size=image_size, mode="bilinear", antialias=True)
                    .round_()
                    .clamp_(0, 255)
                    .to(torch.uint8)
                    for c in x.split(1024)
                ]
            )
        parts.append((x, torch.as_tensor(ds.labels.astype("int64"))))
    meta = {"num_classes": 10, "hflip": True, "crop_scale": [0.2, 1.0]}
    if getattr(ds, "classes", None):
        meta["classes"] = list(ds.classes)
    return official_image_split("stl10", parts[0], parts[1], seed, val_fraction, meta)
