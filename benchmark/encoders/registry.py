"""Encoder registry: ``build_encoder(name, input_shape, **options) -> nn.Module`` with ``out_dim``."""

from __future__ import annotations

from torch import nn

from benchmark.registry import Registry

ENCODERS: Registry = Registry("encoder")


def build_encoder(name: str, input_shape: tuple[int, ...], **options) -> nn.Module:
    """``input_shape`` is one sample's shape: (C, H, W), (C, L) or (F,) (node features)."""
    return ENCODERS.get(name)(tuple(input_shape), **options)
