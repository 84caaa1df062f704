"""MNIST-1D (Greydanus 2020), generated locally by the mnist1d package; never downloaded."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from benchmark.datasets._common import DATASETS
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
    num_train: int = 6000,
    train_pool: int | None = None,
    num_val: int = 2000,
    num_test: int = 5000,
    data_seed: int = 42,
    image: bool = False,
    paired_image: bool = False,
    image_size: int = 32,
) -> PreparedData:
    """x (N, 1, 40) float32 (standardized by the package), 10 classes.

    One draw of the package's generator (``data_seed``, 42 as in the package) is cut into a
    fixed ``num_test`` test set (5000: the binomial error of an accuracy near 85% is then
    +/-1.0 point at 95%), a fixed ``num_val`` validation set (2000, for tuning and the
    probe's regularization) and a training pool of ``train_pool`` samples (default twice
    ``num_train``). Each cell trains on its seed's stratified draw of ``num_train`` samples
    from the pool (``meta["train_draw"]``, :meth:`PreparedData.for_seed`), so a seed varies
    the training data too while every seed is scored on the same test set.

    ``image=True`` makes x the signals drawn as ``image_size`` x ``image_size`` line plots
    (:func:`render_signals`, kind ``image``): the image testbed of the image methods.
    ``paired_image=True`` keeps x the signal and adds the plot as ``x2``, the offline second
    modality for CLIP-style towers. ``root`` and ``seed`` are unused (the draw is per cell).
    """
    pool = 2 * num_train if train_pool is None else train_pool
    for key, value in (("num_train", num_train), ("num_val", num_val), ("num_test", num_test)):
        if value < 10:
            raise ValueError(f"{key}={value}: allowed 10 or more samples")
    if pool < num_train:
        raise ValueError(f"train_pool={pool} is smaller than num_train={num_train}")
    total = num_test + num_val + pool
    data = _generate(-(-total // 10) * 10, data_seed)  # the package makes 10 classes x n
    x = torch.as_tensor(np.concatenate([data["x_test"], data["x"]]), dtype=torch.float32)
    y = torch.as_tensor(np.concatenate([data["y_test"], data["y"]]), dtype=torch.long)
    x, y = x[:total].unsqueeze(1), y[:total]
    picture = render_signals(x[:, 0], image_size) if image or paired_image else None
    return PreparedData(
        name="mnist1d",
        kind="image" if image else "sequence",
        x=picture if image else x,
        y=y,
        x2=picture if paired_image else None,
        splits={
            "test": torch.arange(num_test),
            "val": torch.arange(num_test, num_test + num_val),
            "train": torch.arange(num_test + num_val, total),
        },
        meta={
            "num_classes": 10,
            "data_seed": data_seed,
            "paired_image": paired_image,
            "train_draw": num_train,
        },
    )
