"""The prepared form every dataset takes, and its on-disk cache."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor

Kind = Literal["image", "sequence", "graph", "vectors"]


@dataclass
class PreparedData:
    """A dataset after `prepare`: float32 tensors, integer labels, fixed seeded splits.

    - image: x (N, C, H, W) in [0, 1]; sequence: x (N, C, L); graph: x (N, F) node
      features plus ``edge_index`` (2, E); vectors: x (N, D).
    - ``x2``: a second modality paired instance-wise with x (CLIP's other tower; the
      correlated partner y of ``gaussian_mi``), or None.
    - ``splits``: index tensors "train", "val", "test" (disjoint, seeded). The test split
      is read once per finished cell, never for selection.
    - ``meta``: small JSON-able facts (num_classes, true_mi, ...).
    """

    name: str
    kind: Kind
    x: Tensor
    y: Tensor
    splits: dict[str, Tensor]
    edge_index: Tensor | None = None
    x2: Tensor | None = None
    meta: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return int(self.meta.get("num_classes", int(self.y.max()) + 1))

    def split(self, name: str) -> tuple[Tensor, Tensor]:
        idx = self.splits[name]
        return self.x[idx], self.y[idx]

    def save(self, path: Path) -> None:
        """Atomic write: a crash never leaves a half-written cache file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        torch.save(self.__dict__, tmp)
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> PreparedData:
        return cls(**torch.load(path, weights_only=False))
