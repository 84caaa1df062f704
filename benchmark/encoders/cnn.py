"""Small convolutional encoders: ``cnn2d`` (8x8 and 28x28 images) and ``cnn1d`` (mnist1d)."""

from __future__ import annotations

from torch import Tensor, nn

from benchmark.encoders.registry import ENCODERS


def _conv_bn(conv: type[nn.Module], c_in: int, c_out: int, stride: int, k: int) -> nn.Sequential:
    return nn.Sequential(
        conv(c_in, c_out, k, stride=stride, padding=k // 2, bias=False),
        (nn.BatchNorm2d if conv is nn.Conv2d else nn.BatchNorm1d)(c_out),
        nn.ReLU(inplace=True),
    )


class _ConvEncoder(nn.Module):
    """Conv blocks -> global average pool. ``local`` returns the map before pooling."""

    def __init__(
        self,
        conv: type[nn.Module],
        c_in: int,
        widths: tuple[int, ...],
        strides: tuple[int, ...],
        kernel: int,
    ) -> None:
        super().__init__()
        blocks, c = [], c_in
        for w, s in zip(widths, strides, strict=True):
            blocks.append(_conv_bn(conv, c, w, s, kernel))
            c = w
        self.trunk = nn.Sequential(*blocks)
        self.out_dim = c

    def local(self, x: Tensor) -> Tensor:
        return self.trunk(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.local(x).flatten(2).mean(-1)


@ENCODERS.register("cnn2d")
def cnn2d(input_shape: tuple[int, ...], *, width: int = 32) -> nn.Module:
    """3x3 conv blocks of width, 2 width, 4 width channels (128 features by default);
    8x8 inputs are downsampled once (8 -> 4), larger ones twice (28 -> 14 -> 7)."""
    c, h, _ = input_shape
    widths = (width, 2 * width, 4 * width)
    strides = (1, 1, 2) if h <= 8 else (1, 2, 2)
    return _ConvEncoder(nn.Conv2d, c, widths, strides, 3)


@ENCODERS.register("cnn1d")
def cnn1d(input_shape: tuple[int, ...], *, width: int = 32) -> nn.Module:
    """1-D conv blocks for 40-step mnist1d signals (40 -> 20 -> 10 time steps)."""
    c, _ = input_shape
    widths = (width, 2 * width, 4 * width)
    return _ConvEncoder(nn.Conv1d, c, widths, (1, 2, 2), 5)
