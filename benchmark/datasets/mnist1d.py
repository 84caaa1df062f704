"""MNIST-1D (Greydanus 2020), generated locally by the mnist1d package; never downloaded."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from benchmark.datasets._common import DATASETS, carve_val
from benchmark.datasets.base import PreparedData


def render_signals(
    x: Tensor, size: int | tuple[int, int] = 32, lo: float = -4.0, hi: float = 4.0
) -> Tensor:
    """Rasterize 1-D signals (N, L) as anti-aliased line plots (N, 1, H, W) in [0, 1].

    Column c samples the signal (linear interpolation) at c and at the half-columns c +/- 1/2;
    it lights the rows between the lowest and the highest of the three values, fading out
    over one pixel. Values map linearly from [lo, hi] (clamped) to rows bottom..top.
    Fully vectorized: one (N, H, W) tensor expression, no per-sample loop.
    """
    h, w = (size, size) if isinstance(size, int) else size
    n, length = x.shape
    pos = torch.linspace(0, length - 1, 2 * w + 1, device=x.device)  # half-column grid
    left = pos.floor().long().clamp(max=length - 2)
    frac = pos - left
    v = x[:, left] * (1 - frac) + x[:, left + 1] * frac  # (N, 2W+1)
    rows = (hi - v.clamp(lo, hi)) / (hi - lo) * (h - 1)  # value -> row coordinate
    trio = torch.stack([rows[:, 0:-1:2], rows[:, 1::2], rows[:, 2::2]], dim=-1)  # (N, W, 3)
    top, bottom = trio.min(-1).values, trio.max(-1).values  # (N, W)
    r = torch.arange(h, device=x.device, dtype=x.dtype).view(1, h, 1)
    dist = (top.unsqueeze(1) - r).clamp_min(0) + (r - bottom.unsqueeze(1)).clamp_min(0)
    return (1.0 - dist).clamp(0.0, 1.0).unsqueeze(1)  # (N, 1, H, W)


def _generate(num_samples: int, data_seed: int) -> dict:
    """The package's own generator with its default arguments. It reseeds numpy's and
    Python's global RNGs; their states are restored afterwards."""
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples = num_samples
    args.seed = data_seed
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        return make_dataset(args)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)


@DATASETS.register("mnist1d")
def mnist1d(
    root: str | Path | None = None,
    seed: int = 0,
    *,
    num_samples: int = 10_000,
    data_seed: int = 42,
    val_fraction: float = 0.15,
    paired_image: bool = False,
    image_size: int = 32,
) -> PreparedData:
    """x (N, 1, 40) float32 (standardized by the package), 10 balanced classes.

    ``num_samples`` 10000 (the package default is 5000; generating costs ~2 s) gives the
    package's 80/20 train/test split, 8000/2000; the test part is kept as ``test`` and
    ``val_fraction`` of train (seeded, stratified) becomes ``val``: 6800/1200/2000.
    The signals themselves come from ``data_seed`` (42, the package's), so every ``seed``
    sees the same data and only the validation carve changes.

    ``paired_image=True`` adds ``x2`` (N, 1, image_size, image_size): each signal drawn as
    a line plot (:func:`render_signals`), the offline second modality for CLIP-style towers.
    ``root`` is unused.
    """
    data = _generate(num_samples, data_seed)
    x_train = torch.as_tensor(data["x"], dtype=torch.float32)
    x_test = torch.as_tensor(data["x_test"], dtype=torch.float32)
    y_train = torch.as_tensor(data["y"], dtype=torch.long)
    y_test = torch.as_tensor(data["y_test"], dtype=torch.long)
    x = torch.cat([x_train, x_test]).unsqueeze(1)
    y = torch.cat([y_train, y_test])
    x2 = render_signals(x[:, 0], image_size) if paired_image else None
    return PreparedData(
        name="mnist1d",
        kind="sequence",
        x=x,
        y=y,
        x2=x2,
        splits=carve_val(y_train, len(y_test), seed, val_fraction),
        meta={"num_classes": 10, "data_seed": data_seed, "paired_image": paired_image},
    )
