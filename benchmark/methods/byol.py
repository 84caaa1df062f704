"""BYOL (Grill et al. 2020): an online network predicts a momentum target; no negatives."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmark.encoders import mlp_head
from benchmark.methods.base import (
    COUNT,
    UNIT,
    Augment,
    Batch,
    Method,
    Objective,
    ema_update,
    momentum_copy,
    register_method,
)


@register_method("byol")
class BYOL(Method):
    """Online network: encoder f, projector g, predictor q; target: f', g' (no predictor),
    an exponential moving average of f, g that receives no gradient (Grill et al. sec. 3.1).

    Loss (eq. 2, symmetrised as in sec. 3.1): for views v, v' of each sample,
    ||q(g(f(v)))~ - g'(f'(v'))~||^2 = 2 - 2 cos, plus the same with v and v' swapped; we
    report their mean (the paper's sum / 2, so the gradient scale does not depend on the
    symmetrisation). Each view goes through the networks as its own batch, as in the
    official implementation, so BatchNorm never mixes the two views.

    Target momentum (sec. 3.2): tau = 1 - (1 - tau_base)(cos(pi k / K) + 1) / 2 at step k of
    K, ``momentum`` = tau_base in [0, 1) (0.996 in the paper; 0.99 here for short runs).
    """

    views = 2
    option_rules = {"proj_dim": COUNT, "proj_hidden": COUNT, "momentum": UNIT}

    def __init__(
        self,
        encoder: nn.Module,
        augment: Augment,
        objective: Objective | None = None,
        *,
        proj_dim: int = 64,
        proj_hidden: int = 256,
        momentum: float = 0.99,
    ) -> None:
        super().__init__(encoder, augment, objective)
        self.momentum = momentum
        self.projector = mlp_head(encoder.out_dim, proj_hidden, proj_dim)
        self.predictor = mlp_head(proj_dim, proj_hidden, proj_dim)
        self.target = momentum_copy(nn.Sequential(self.encoder, self.projector))

    def online(self, x: Tensor) -> Tensor:
        return self.predictor(self.projector(self.encoder(x)))

    def loss(self, v1: Tensor, v2: Tensor) -> Tensor:
        """Symmetric BYOL loss of two batches of views: each view's prediction regresses
        the other view's target projection."""
        p1, p2 = self.online(v1), self.online(v2)
        with torch.no_grad():
            z1, z2 = self.target(v1), self.target(v2)
        return (_regression(p1, z2) + _regression(p2, z1)) / 2

    def training_loss(self, batch: Batch) -> Tensor:
        return self.loss(self.augment(batch.x), self.augment(batch.x))

    def target_momentum(self, progress: float) -> float:
        """tau at ``progress`` = k / K of training (sec. 3.2)."""
        base = self.momentum
        return 1 - (1 - base) * (math.cos(math.pi * progress) + 1) / 2

    @torch.no_grad()
    def after_step(self, progress: float) -> None:
        online = nn.Sequential(self.encoder, self.projector)
        ema_update(self.target, online, self.target_momentum(progress))


def _regression(p: Tensor, z: Tensor) -> Tensor:
    """mean ||p/|p| - z/|z| ||^2 = mean (2 - 2 cos(p, z)) (Grill et al. eq. 2)."""
    return (2 - 2 * F.cosine_similarity(p, z.detach(), dim=-1)).mean()
