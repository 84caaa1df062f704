"""Projection and prediction heads declared as data (the shape of lightly's heads)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

# one block: (in_features, out_features, batchnorm?, activation?)
Block = tuple[int, int, bool, bool]


class Head(nn.Sequential):
    """``Head([(512, 512, True, True), (512, 128, False, False)])`` = Linear-BN-ReLU-Linear."""

    def __init__(self, blocks: Sequence[Block]) -> None:
        layers: list[nn.Module] = []
        for d_in, d_out, bn, act in blocks:
            layers.append(nn.Linear(d_in, d_out, bias=not bn))
            if bn:
                layers.append(nn.BatchNorm1d(d_out))
            if act:
                layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)
        self.out_dim = blocks[-1][1]


def mlp_head(d_in: int, hidden: int, d_out: int, *, layers: int = 2) -> Head:
    """SimCLR-style projector: (layers - 1) Linear-BN-ReLU blocks, then a plain Linear."""
    dims = [d_in] + [hidden] * (layers - 1) + [d_out]
    blocks = [(a, b, True, True) for a, b in zip(dims[:-2], dims[1:-1], strict=True)]
    blocks.append((dims[-2], dims[-1], False, False))
    return Head(blocks)
