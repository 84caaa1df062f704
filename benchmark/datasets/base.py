"""The prepared form every dataset takes, and its on-disk cache."""

from __future__ import annotations

import io
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor

from benchmark import atomic

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
    - ``meta``: small JSON-able facts (num_classes, true_mi, ...). ``meta["train_draw"]``
      (generated sets) makes ``splits["train"]`` a pool: each seed trains on its own
      seeded draw of that many samples from it (:meth:`for_seed`); val and test are fixed.
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

    @property
    def num_train(self) -> int:
        """The size of the training split a cell sees (its seed's draw from a pool)."""
        return int(self.meta.get("train_draw") or len(self.splits["train"]))

    def for_seed(self, seed: int) -> PreparedData:
        """The data one cell of ``seed`` trains on: with a ``train_draw``, ``splits["train"]``
        becomes that seed's draw of ``train_draw`` samples from the pool, stratified by
        class (so a seed varies the training draw, as DESIGN.md asks); otherwise ``self``."""
        draw = self.meta.get("train_draw")
        if not draw or draw >= len(self.splits["train"]):
            return self
        from benchmark.datasets._common import stratified_subset

        pool = self.splits["train"]
        chosen = pool[stratified_subset(self.y[pool], int(draw), seed)]
        return replace(self, splits={**self.splits, "train": chosen})

    def split(self, name: str) -> tuple[Tensor, Tensor]:
        idx = self.splits[name]
        return self.x[idx], self.y[idx]

    def save(self, path: Path) -> None:
        """Atomic write: a crash never leaves a half-written cache file.

        Serialized in memory first: torch.save names the archive after the file it writes,
        so saving to a temporary name would make the bytes (and DVC's hash) differ per run.
        """
        buffer = io.BytesIO()
        torch.save(self.__dict__, buffer)
        atomic.write_bytes(path, buffer.getvalue())

    @classmethod
    def load(cls, path: Path) -> PreparedData:
        """``weights_only``: tensors and plain containers only, so a planted cache file
        cannot run code when it is read."""
        return cls(**torch.load(path, weights_only=True))

    @property
    def num_samples(self) -> int:
        return int(self.x.shape[0])

    def validate(self) -> PreparedData:
        """Check the invariants above; raise ValueError naming the first one broken."""
        n = self.num_samples
        ndim = {"image": 4, "sequence": 3, "graph": 2, "vectors": 2}
        if self.kind not in ndim:
            raise ValueError(f"{self.name}: unknown kind {self.kind!r}; valid: {', '.join(ndim)}")
        if self.x.dtype != torch.float32 or self.x.dim() != ndim[self.kind]:
            raise ValueError(
                f"{self.name}: x must be float32 with {ndim[self.kind]} dims for kind "
                f"{self.kind!r}, got {self.x.dtype} {tuple(self.x.shape)}"
            )
        if self.kind == "image" and (self.x.min() < 0 or self.x.max() > 1):
            raise ValueError(f"{self.name}: image values must lie in [0, 1]")
        if self.y.dtype != torch.long or self.y.shape != (n,):
            raise ValueError(f"{self.name}: y must be int64 of shape ({n},)")
        if self.x2 is not None and (self.x2.shape[0] != n or self.x2.dtype != torch.float32):
            raise ValueError(f"{self.name}: x2 must be float32 with {n} rows")
        if self.kind == "graph":
            ei = self.edge_index
            if ei is None or ei.dtype != torch.long or ei.dim() != 2 or ei.shape[0] != 2:
                raise ValueError(f"{self.name}: graph needs an int64 edge_index of shape (2, E)")
            if ei.numel() and (ei.min() < 0 or ei.max() >= n):
                raise ValueError(f"{self.name}: edge_index refers to nodes outside [0, {n})")
        if set(self.splits) != {"train", "val", "test"}:
            raise ValueError(f"{self.name}: splits must be exactly train, val, test")
        seen = torch.zeros(n, dtype=torch.bool)
        for key, idx in self.splits.items():
            if idx.dtype != torch.long or idx.dim() != 1 or idx.numel() == 0:
                raise ValueError(f"{self.name}: split {key!r} must be a non-empty int64 vector")
            if idx.min() < 0 or idx.max() >= n:
                raise ValueError(f"{self.name}: split {key!r} has indices outside [0, {n})")
            if seen[idx].any() or idx.unique().numel() != idx.numel():
                raise ValueError(f"{self.name}: split {key!r} overlaps another split")
            seen[idx] = True
        return self
