"""Correlated Gaussians with known mutual information: the check for the MI bounds."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from benchmark.datasets._common import DATASETS, generator, random_splits
from benchmark.datasets.base import PreparedData


def true_mi(dim: int, rho: float) -> float:
    """I(x; y) in nats for d independent pairs with correlation rho: -d/2 log(1 - rho^2)."""
    return -0.5 * dim * math.log1p(-rho * rho)


def rho_for_mi(dim: int, mi: float) -> float:
    """The per-dimension correlation that gives ``mi`` nats over ``dim`` dimensions."""
    return math.sqrt(-math.expm1(-2.0 * mi / dim))


@DATASETS.register("gaussian_mi")
def gaussian_mi(
    root: str | Path | None = None,
    seed: int = 0,
    *,
    num_samples: int = 10_000,
    dim: int = 20,
    rho: float = 0.5,
    mi: float | None = None,
    labels: str = "bins",
    num_bins: int = 4,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
) -> PreparedData:
    """x, y in R^dim with ``y_j = rho x_j + sqrt(1 - rho^2) eps_j`` (x, eps ~ N(0, I)), so each
    coordinate pair has correlation rho and ``meta["true_mi"] = -dim/2 log(1 - rho^2)``
    nats (2.88 with the defaults; ``mi=`` sets rho from a target instead).

    x is in ``x``, y in ``x2``; ``kind="vectors"``. Labels: ``labels="bins"`` (default)
    bins the shared component ``s = sum_j (x_j + y_j)`` into ``num_bins`` equal-frequency
    classes (0 = lowest), so a linear probe has something to find; ``labels="zeros"`` gives
    all-zero labels. Splits are seeded 70/15/15 (stratified by the label). ``root`` is unused.
    """
    if mi is not None:
        rho = rho_for_mi(dim, mi)
    if not -1.0 < rho < 1.0:
        raise ValueError(f"gaussian_mi: rho must lie in (-1, 1), got {rho}")
    g = generator(seed)
    x = torch.randn(num_samples, dim, generator=g)
    y = rho * x + math.sqrt(1.0 - rho * rho) * torch.randn(num_samples, dim, generator=g)
    if labels == "bins":
        s = (x + y).sum(1)
        edges = torch.quantile(s, torch.linspace(0, 1, num_bins + 1)[1:-1])
        target = torch.bucketize(s, edges)
    elif labels == "zeros":
        target = torch.zeros(num_samples, dtype=torch.long)
    else:
        raise ValueError(f"gaussian_mi: labels must be 'bins' or 'zeros', got {labels!r}")
    return PreparedData(
        name="gaussian_mi",
        kind="vectors",
        x=x,
        y=target,
        x2=y,
        splits=random_splits(target, seed, val_fraction, test_fraction),
        meta={
            "num_classes": num_bins if labels == "bins" else 1,
            "true_mi": true_mi(dim, rho),
            "rho": rho,
            "dim": dim,
        },
    )
