"""A plain MLP on flattened inputs."""

from __future__ import annotations

import math

from torch import Tensor, nn

from benchmark.encoders.registry import ENCODERS


@ENCODERS.register("mlp")
class MLP(nn.Module):
    def __init__(
        self, input_shape: tuple[int, ...], *, width: int = 256, depth: int = 2, out_dim: int = 128
    ) -> None:
        super().__init__()
        d = math.prod(input_shape)
        layers: list[nn.Module] = [nn.Flatten()]
        for _ in range(depth - 1):
            layers += [nn.Linear(d, width), nn.BatchNorm1d(width), nn.ReLU(inplace=True)]
            d = width
        layers.append(nn.Linear(d, out_dim))
        self.net = nn.Sequential(*layers)
        self.out_dim = out_dim

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
