"""The MI bounds, evaluated with the optimal critic, on gaussian_mi (the stage, `python -m
benchmark mi`, is ``benchmark/stages/mi.py``).

For correlated Gaussians the true log density ratio log p(y|x)/p(y) is known in closed
form, so each bound's estimate can be set against the true MI: InfoNCE approaches it
while it is well below log N and saturates at log N above (van den Oord et al. 2018;
Poole et al. 2019); NWJ (critic 1 + log ratio) and DV are unbiased / nearly so.
The stage writes reports/mi_check.csv (bound, true_mi, estimate, std, batch_size).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from benchmark.objectives import build_objective

BOUNDS = ("infonce", "nwj", "dv")


def log_density_ratio(rho: float):
    """Critic (x (N, d), y (M, d)) -> (N, M): log p(y|x) - log p(y) for y = rho x + noise."""
    s = 1.0 - rho * rho

    def critic(x: Tensor, y: Tensor) -> Tensor:
        d = x.shape[1]
        cross = (x @ y.T) * (2 * rho)
        xx = (x * x).sum(1, keepdim=True) * rho * rho
        yy = (y * y).sum(1) * rho * rho
        return -0.5 * d * math.log(s) - (xx + yy[None, :] - cross) / (2 * s)

    return critic


def estimate(bound: str, x: Tensor, y: Tensor, rho: float) -> float:
    critic = log_density_ratio(rho)
    ids = torch.arange(len(x))
    if bound == "nwj":
        objective = build_objective("nwj", similarity=lambda a, b: 1.0 + critic(a, b))
        return -float(objective(x, ids, y, ids))
    if bound == "infonce":
        objective = build_objective("infonce", similarity=critic, temperature=1.0)
        return math.log(len(x)) - float(objective(x, ids, y, ids))
    return -float(build_objective(bound, similarity=critic)(x, ids, y, ids))
