"""Instance discrimination with a memory bank (NPID, Wu et al. 2018)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from benchmark.encoders import mlp_head
from benchmark.methods.base import ALL_OBJECTIVES, Batch, Context, Method, register_method


@register_method("npid")
class NPID(Method):
    """Each training sample is its own class. Its positive is its memory-bank entry (a
    running average of its past features); the negatives are the bank entries of the
    other samples of the batch and K entries drawn uniformly from the whole bank."""

    objectives = ALL_OBJECTIVES
    default_objective = "nce"
    option_defaults = {
        "bank_negatives": 1024,
        "bank_momentum": 0.5,
        "proj_dim": 64,
        "proj_hidden": 256,
    }

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        o = self.options
        self.projector = mlp_head(ctx.encoder.out_dim, o["proj_hidden"], o["proj_dim"])
        self.register_buffer("bank", F.normalize(torch.randn(ctx.num_train, o["proj_dim"]), dim=1))

    def training_loss(self, batch: Batch) -> Tensor:
        v = self.projector(self.encoder(self.augment(batch.x)))
        k = min(self.options["bank_negatives"], len(self.bank))
        drawn = torch.randint(len(self.bank), (k,), device=v.device)
        ref_idx = torch.cat([batch.idx, drawn])
        loss = self.objective(v, batch.idx, self.bank[ref_idx].clone(), ref_idx)
        with torch.no_grad():  # m * old + (1 - m) * new, renormalized (Wu et al. sec. 3.2)
            m = self.options["bank_momentum"]
            mixed = m * self.bank[batch.idx] + (1 - m) * F.normalize(v.detach(), dim=1)
            self.bank[batch.idx] = F.normalize(mixed, dim=1)
        return loss

    def effective_negatives(self, batch_size: int) -> int:
        available = self.options["bank_negatives"] + batch_size - 1
        return min(available, self.num_negatives or available)
