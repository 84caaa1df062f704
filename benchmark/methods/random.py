"""Untrained baseline: the encoder at its seeded random initialisation (the floor)."""

from __future__ import annotations

from benchmark.methods.base import Method, register_method


@register_method("random")
class Random(Method):
    data_kinds = ("image", "sequence", "graph", "vectors")
    trains = False
