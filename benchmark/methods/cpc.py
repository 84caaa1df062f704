"""Contrastive Predictive Coding (van den Oord et al. 2018) on sequences."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from benchmark.methods.base import SCORE_OBJECTIVES, Batch, Context, Method, register_method


@register_method("cpc")
class CPC(Method):
    """z_t = encoder's per-step features, c_t = GRU(z_<=t); for each horizon k the
    prediction W_k c_t must pick z_{t+k} of the same sequence among every z of the batch
    (other sequences and other time steps are negatives)."""

    objectives = SCORE_OBJECTIVES
    default_objective = "infonce"
    data_kinds = ("sequence",)
    option_defaults = {"horizons": 3, "context_dim": 128}

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        d, c = ctx.encoder.out_dim, self.options["context_dim"]
        self.context = nn.GRU(d, c, batch_first=True)
        self.predictors = nn.ModuleList(
            nn.Linear(c, d, bias=False) for _ in range(self.options["horizons"])
        )

    def training_loss(self, batch: Batch) -> Tensor:
        z = self.encoder.local(self.augment(batch.x)).transpose(1, 2)  # (B, T, D)
        b, t, d = z.shape
        c, _ = self.context(z)  # (B, T, C)
        candidates = z.reshape(b * t, d)
        cand_labels = torch.arange(b * t, device=z.device)
        losses = []
        for k, w in enumerate(self.predictors, start=1):
            pred = w(c[:, : t - k]).reshape(-1, d)  # predictions for steps t+k
            target = (
                torch.arange(b, device=z.device)[:, None] * t
                + torch.arange(k, t, device=z.device)[None, :]
            ).reshape(-1)
            losses.append(self.objective(pred, target, candidates, cand_labels))
        return torch.stack(losses).mean()

    def effective_negatives(self, batch_size: int) -> int:
        available = batch_size * 10 - 1  # B * T candidates (T = 10 steps for mnist1d)
        return min(available, self.num_negatives or available)
