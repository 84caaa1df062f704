"""Deep InfoMax, local objective (Hjelm et al. 2019): global vs local features."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from benchmark.encoders import mlp_head
from benchmark.methods.base import SCORE_OBJECTIVES, Batch, Context, Method, register_method


@register_method("dim")
class DIM(Method):
    """The critic is DIM's encode-and-dot: a global MLP head and a 1x1-conv local head
    map to a shared space, the score is their dot product. Positives: an image's global
    vector with each of its own local features; negatives: local features of the other
    images of the batch."""

    objectives = SCORE_OBJECTIVES
    default_objective = "jsd"
    option_defaults = {"critic_dim": 64}

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        d, e = ctx.encoder.out_dim, self.options["critic_dim"]
        self.global_head = mlp_head(d, 2 * e, e)
        conv = nn.Conv2d if len(ctx.input_shape) == 3 else nn.Conv1d
        self.local_head = nn.Sequential(conv(d, 2 * e, 1), nn.ReLU(), conv(2 * e, e, 1))

    def build_objective(self, ctx: Context, **overrides):
        # dot product of learned heads, unnormalized: the scores are the critic's output
        return super().build_objective(ctx, similarity="dot", normalize=False, **overrides)

    def training_loss(self, batch: Batch) -> Tensor:
        fmap = self.encoder.local(batch.x)
        g = self.global_head(fmap.flatten(2).mean(-1))  # (B, E)
        loc = self.local_head(fmap).flatten(2).transpose(1, 2)  # (B, P, E)
        b, p, e = loc.shape
        ids = torch.arange(b, device=g.device)
        return self.objective(g, ids, loc.reshape(b * p, e), ids.repeat_interleave(p))

    def effective_negatives(self, batch_size: int) -> int:
        return self.num_negatives or batch_size - 1  # per positive: other images' locals
