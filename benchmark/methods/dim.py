"""Deep InfoMax, local objective (Hjelm et al. 2019): global vs local features."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from benchmark.encoders import mlp_head
from benchmark.methods.base import (
    COUNT,
    SCORE_OBJECTIVES,
    Augment,
    Batch,
    Method,
    Objective,
    one_of,
    register_method,
)

LOCAL_LAYERS = ("intermediate", "final")


def feature_layer(encoder: nn.Module, which: str) -> nn.Module:
    """The encoder block whose output is the local feature map: the last block before the
    final one (``"intermediate"``) or the final one (``"final"``).

    Known encoders: the conv encoders (``cnn2d``, ``cnn1d``: their ``trunk`` of blocks)
    and ``resnet18`` (``layer3`` / ``layer4``).
    """
    trunk = getattr(encoder, "trunk", None)
    if isinstance(trunk, nn.Sequential) and len(trunk) >= 2:
        return trunk[-2] if which == "intermediate" else trunk[-1]
    net = getattr(encoder, "net", None)
    if net is not None and hasattr(net, "layer3") and hasattr(net, "layer4"):
        return net.layer3 if which == "intermediate" else net.layer4
    raise ValueError(
        f"dim needs a convolutional encoder with feature maps (cnn2d, cnn1d, resnet18); "
        f"got {type(encoder).__name__}"
    )


@register_method("dim")
class DIM(Method):
    """Local DIM: the global feature is the encoder's output E(x) (what the probes read);
    the local features are the positions of a feature map from an intermediate layer of
    the same encoder (the paper's M x M map C(x), of which E(x) is a further encoding).

    The critic is DIM's encode-and-dot: a global MLP head and a 1x1-conv local head map
    both to a shared space of ``critic_dim`` units, the score is their dot product.
    Anchors: the B global vectors; positives of an image's global vector: each of its own
    P local features; negatives: every local feature of the other images of the batch,
    (B - 1) * P per anchor (the reference code's ``local_global_loss``).

    Options:

    - ``local_layer="intermediate"`` (the paper): the output of the encoder's last block
      but one (``cnn2d`` on 8x8 digits: the 64-channel 8x8 map before the stride-2 block;
      on 28x28: 64 x 14 x 14; ``resnet18``: ``layer3``, 8x8 on 32x32 images).
      ``"final"``: the map that is pooled into E(x) itself (the global vector is then a
      function of the very features it is contrasted with).
    """

    objectives = SCORE_OBJECTIVES
    default_objective = "jsd"
    option_rules = {"critic_dim": COUNT, "local_layer": one_of(*LOCAL_LAYERS)}

    def __init__(
        self,
        encoder: nn.Module,
        augment: Augment,
        objective: Objective | None = None,
        *,
        input_shape: tuple[int, ...],
        critic_dim: int = 64,
        local_layer: str = "intermediate",
    ) -> None:
        super().__init__(encoder, augment, objective)
        e, self.local_layer = critic_dim, local_layer
        feature_layer(self.encoder, local_layer)  # fails now for unknown encoders
        channels, self.positions = self._local_shape(input_shape)
        self.global_head = mlp_head(encoder.out_dim, 2 * e, e)
        conv = nn.Conv2d if len(input_shape) == 3 else nn.Conv1d
        self.local_head = nn.Sequential(conv(channels, 2 * e, 1), nn.ReLU(), conv(2 * e, e, 1))

    @torch.no_grad()
    def _local_shape(self, input_shape: tuple[int, ...]) -> tuple[int, int]:
        """(channels, positions) of the local feature map, from one dummy sample."""
        was = self.encoder.training
        self.encoder.eval()  # no batch statistics are updated
        try:
            fmap, _ = self.global_and_local(torch.zeros(1, *input_shape))
        finally:
            self.encoder.train(was)
        return fmap.shape[1], fmap[0, 0].numel()

    def global_and_local(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(local feature map (B, C, ...) of the chosen layer, encoder output E(x) (B, D)),
        from one forward pass."""
        seen: list[Tensor] = []
        layer = feature_layer(self.encoder, self.local_layer)
        hook = layer.register_forward_hook(lambda m, a, out: seen.append(out))
        try:
            g = self.encoder(x)
        finally:
            hook.remove()
        return seen[-1].float(), g  # the map may come from a bf16 forward (precision)

    def training_loss(self, batch: Batch) -> Tensor:
        fmap, y = self.global_and_local(batch.x)
        g = self.global_head(y)  # (B, E)
        loc = self.local_head(fmap).flatten(2).transpose(1, 2)  # (B, P, E)
        b, p, e = loc.shape
        ids = torch.arange(b, device=g.device)
        return self.objective(g, ids, loc.reshape(b * p, e), ids.repeat_interleave(p))

    def effective_negatives(self, batch_size: int) -> int:
        # per anchor (a global vector): every local feature of the other B - 1 images
        available = (batch_size - 1) * self.positions
        return min(available, self.num_negatives or available)
