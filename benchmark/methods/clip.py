"""CLIP-style two towers (Radford et al. 2021) on instance-paired modalities."""

from __future__ import annotations

from torch import Tensor

from benchmark.encoders import mlp_head
from benchmark.methods.base import ALL_OBJECTIVES, Batch, Context, Method, register_method


@register_method("clip")
class CLIP(Method):
    """Tower A encodes x (probed), tower B encodes the paired x2; a pair is positive iff
    it comes from the same instance. The loss is symmetric: A->B and B->A."""

    objectives = ALL_OBJECTIVES
    default_objective = "infonce"
    option_defaults = {"proj_dim": 64, "proj_hidden": 256}

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        if ctx.x2_shape is None or ctx.make_encoder is None:
            raise ValueError(
                "method 'clip' needs a paired dataset (one with x2), e.g. mnist1d_pairs"
            )
        o = self.options
        self.tower_b = ctx.make_encoder(ctx.x2_shape)
        self.proj_a = mlp_head(ctx.encoder.out_dim, o["proj_hidden"], o["proj_dim"])
        self.proj_b = mlp_head(self.tower_b.out_dim, o["proj_hidden"], o["proj_dim"])

    def training_loss(self, batch: Batch) -> Tensor:
        a = self.proj_a(self.encoder(self.augment(batch.x)))
        b = self.proj_b(self.tower_b(batch.x2))
        ids = batch.idx
        return 0.5 * (self.objective(a, ids, b, ids) + self.objective(b, ids, a, ids))

    def effective_negatives(self, batch_size: int) -> int:
        return min(batch_size - 1, self.num_negatives or batch_size)
