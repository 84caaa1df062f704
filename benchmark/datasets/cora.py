"""Cora citation graph from the local Planetoid raw files via torch_geometric (no download)."""

from __future__ import annotations

from pathlib import Path

import torch

from benchmark.datasets._common import (
    DATASETS,
    random_splits,
    require_files,
    resolve_root,
)
from benchmark.datasets.base import PreparedData

NAMES = ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")
FILES = tuple(f"ind.cora.{n}" for n in NAMES)


@DATASETS.register("cora")
def cora(
    root: str | Path | None = None,
    seed: int = 0,
    *,
    split: str = "public",
    normalize_features: bool = True,
) -> PreparedData:
    """2708 nodes, 1433 bag-of-words features, 7 classes, undirected ``edge_index``.

    Reads ``root/Cora/raw/ind.cora.*`` with torch_geometric's Planetoid reader
    (``torch_geometric.io.read_planetoid_data``, what ``Planetoid.process`` calls; used
    directly so nothing is written under ``root`` and nothing can be downloaded).
    ``split="public"``: the Planetoid split (140 train / 500 val / 1000 test, the
    DGI protocol; ``seed`` does not change it); ``split="random"``: seeded stratified
    70/15/15. ``normalize_features`` divides each row by its sum (as DGI / PyG's
    NormalizeFeatures).
    """
    from torch_geometric.io import read_planetoid_data
    from torch_geometric.utils import to_undirected

    root = resolve_root(root)
    raw = root / "Cora" / "raw"
    require_files("cora", raw, FILES, "the Planetoid repository's data/ folder")
    data = read_planetoid_data(str(raw), "cora")
    x = data.x.to(torch.float32)
    if normalize_features:
        x = x / x.sum(1, keepdim=True).clamp_min(1.0)
    y = data.y.to(torch.long)
    edge_index = to_undirected(data.edge_index, num_nodes=x.shape[0])
    if split == "public":
        splits = {
            "train": data.train_mask.nonzero().flatten(),
            "val": data.val_mask.nonzero().flatten(),
            "test": data.test_mask.nonzero().flatten(),
        }
    elif split == "random":
        splits = random_splits(y, seed)
    else:
        raise ValueError(f"cora: split must be 'public' or 'random', got {split!r}")
    return PreparedData(
        name="cora",
        kind="graph",
        x=x,
        y=y,
        edge_index=edge_index,
        splits=splits,
        meta={"num_classes": int(y.max()) + 1, "split": split},
    )
