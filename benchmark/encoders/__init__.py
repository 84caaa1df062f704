"""Shared encoders and heads. Every encoder maps a batch to (N, out_dim) features.

Convolutional encoders also expose ``local(x)``: the feature map before global pooling
((N, C, H, W) or (N, C, L)), which Deep InfoMax and CPC read.
"""

from benchmark.encoders import cnn, gcn, mlp, resnet  # noqa: F401  (registration)
from benchmark.encoders.heads import Head, mlp_head
from benchmark.encoders.registry import ENCODERS, build_encoder

__all__ = ["ENCODERS", "Head", "build_encoder", "mlp_head"]
