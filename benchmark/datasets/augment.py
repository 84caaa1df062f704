"""Batched, per-sample random augmentations: one call per batch, on the batch's device.

Every augmentation is a callable ``aug(x, generator=None)`` (graphs:
``aug(x, edge_index, generator=None) -> (x, edge_index)``). Each sample of the batch gets
its own random parameters. Seeding: with a ``torch.Generator`` one seed is drawn from it and
the global RNGs of the CPU and of the batch's device are seeded with it inside
``torch.random.fork_rng`` (kornia and torch_geometric draw from the global RNGs), so the same
generator state gives the same output and the caller's global RNG state is left untouched;
with ``generator=None`` the global RNG is used (``torch.manual_seed`` makes it repeatable).

``strength`` scales every magnitude linearly (0 = identity, except the fixed output size).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@contextlib.contextmanager
def rng_scope(generator: torch.Generator | None, device: torch.device) -> Iterator[None]:
    """Within the block the global RNGs (CPU and ``device``) follow ``generator``."""
    if generator is None:
        yield
        return
    seed = int(torch.randint(0, 2**62, (), generator=generator, device=generator.device))
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        with torch.random.fork_rng(devices=[index]):
            torch.default_generator.manual_seed(seed)
            torch.cuda.default_generators[index].manual_seed(seed)
            yield
    elif device.type == "cpu":
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(seed)
            yield
    else:  # other accelerators: seed everything inside a fork of that device type
        with torch.random.fork_rng(device_type=device.type):
            torch.manual_seed(seed)
            yield


def _uniform(n: int, low: float, high: float, like: Tensor) -> Tensor:
    return torch.rand(n, 1, 1, device=like.device, dtype=like.dtype) * (high - low) + low


class ImageAugment(nn.Module):
    """(B, C, H, W) in [0, 1] -> same shape, in [0, 1].

    Geometry, per sample: a random resized crop (area fraction in [``crop_scale``, 1],
    aspect 3/4..4/3, resized back to H x W), then a random affine (rotation
    +-``degrees``, translation +-``translate`` of the side), then a horizontal flip (only if
    ``hflip``: not for digits); for RGB a colour jitter (p 0.8) and random grayscale
    (p 0.2) as in SimCLR (kornia); then Gaussian pixel noise.

    The three geometric steps are composed into one 2x3 matrix per sample and applied by a
    single ``grid_sample`` (bilinear, zeros outside), written here rather than as kornia's
    RandomResizedCrop + RandomAffine + RandomHorizontalFlip: those resample the batch three
    times and kornia's crop goes through per-sample index arithmetic, which on the 8x8
    digits took 80% of a SimCLR training step (``python -m benchmark perf train``). The
    distribution of transforms is the same; rotation is done in pixel units, so it is
    correct for non-square images too.
    """

    def __init__(
        self,
        *,
        strength: float = 1.0,
        crop_scale: float = 0.6,
        degrees: float = 10.0,
        translate: float = 0.1,
        noise_std: float = 0.05,
        hflip: bool = False,
        color: bool = False,
    ) -> None:
        super().__init__()
        s = float(strength)
        self.strength = s
        self.crop_low = 1.0 - (1.0 - crop_scale) * s
        self.degrees, self.translate = degrees * s, translate * s
        self.noise_std = noise_std * s
        self.hflip, self.color = hflip, color and s > 0
        self._color_ops: nn.Sequential | None = None

    @property
    def geometric(self) -> bool:
        return self.crop_low < 1.0 or self.degrees > 0 or self.translate > 0 or self.hflip

    def matrices(self, b: int, height: int, width: int, like: Tensor) -> Tensor:
        """(B, 2, 3) maps from output to input coordinates (affine_grid's convention)."""
        dev, dt = like.device, like.dtype

        def u(low: float, high: float) -> Tensor:
            return torch.rand(b, device=dev, dtype=dt) * (high - low) + low

        # crop: a (cw x ch) fraction of the image centred at (cx, cy), in [-1, 1] units
        area = u(self.crop_low, 1.0)
        log_ratio = u(math.log(3 / 4), math.log(4 / 3)) if self.crop_low < 1.0 else area * 0
        cw = (area * log_ratio.exp()).sqrt().clamp(max=1.0)
        ch = (area / log_ratio.exp()).sqrt().clamp(max=1.0)
        cx, cy = (1 - cw) * u(-1.0, 1.0), (1 - ch) * u(-1.0, 1.0)
        # affine on the cropped image, in pixel units (aspect-correct rotation)
        angle = u(-self.degrees, self.degrees) * (math.pi / 180)
        tx, ty = u(-self.translate, self.translate) * 2, u(-self.translate, self.translate) * 2
        flip = (
            torch.where(torch.rand(b, device=dev) < 0.5, -1.0, 1.0).to(dt)
            if self.hflip
            else torch.ones(b, device=dev, dtype=dt)
        )
        cos, sin = angle.cos(), angle.sin()
        aspect = width / height
        # output p -> flip -> undo translation -> undo rotation -> crop window
        # (rotation by -angle of (x * aspect, y), back to normalised units)
        r = torch.stack(
            [
                torch.stack([cos, sin / aspect], -1),
                torch.stack([-sin * aspect, cos], -1),
            ],
            -2,
        )  # (B, 2, 2): R^-1 in normalised coordinates
        lin = r * torch.stack([flip, torch.ones_like(flip)], -1)[:, None, :]  # R^-1 F
        shift = -(r @ torch.stack([tx, ty], -1)[..., None])[..., 0]  # -R^-1 T
        crop = torch.stack([cw, ch], -1)
        theta = torch.cat(
            [crop[..., None] * lin, (crop * shift + torch.stack([cx, cy], -1))[..., None]], -1
        )
        return theta

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        if x.dim() != 4:
            raise ValueError(f"image augmentation expects (B, C, H, W), got {tuple(x.shape)}")
        out = x
        with rng_scope(generator, x.device):
            if self.geometric:
                theta = self.matrices(len(x), x.shape[-2], x.shape[-1], x)
                grid = F.affine_grid(theta, list(x.shape), align_corners=False)
                out = F.grid_sample(
                    out, grid, mode="bilinear", padding_mode="zeros", align_corners=False
                )
            if self.color:
                out = self.color_ops()(out)
            if self.noise_std > 0:
                out = out + self.noise_std * torch.randn_like(out)
        return out.clamp(0.0, 1.0)

    def color_ops(self) -> nn.Sequential:
        if self._color_ops is None:
            import kornia.augmentation as K

            s = self.strength
            self._color_ops = nn.Sequential(
                K.ColorJitter(0.4 * s, 0.4 * s, 0.4 * s, min(0.1 * s, 0.5), p=0.8),
                K.RandomGrayscale(p=0.2),
            )
        return self._color_ops


class SequenceAugment(nn.Module):
    """(B, C, L) -> same shape: the mnist1d generator's own perturbations, per sample.

    Written vectorized in torch rather than calling ``mnist1d.transform``: the package's
    transforms act on one numpy sample at a time (a Python call per sample, CPU only).
    Per sample: time dilation by 1 +- ``dilate`` and a circular shift of up to ``shift``
    steps (one linear resampling, wrapping around), amplitude scale 1 +- ``scale``/2 (the
    package's scale_coeff 0.4), a linear shear ramp with coefficient in +-``shear``/2 (its
    shear_scale 0.75), i.i.d. Gaussian noise ``noise_std``, and with probability
    ``mask_prob`` a zeroed window of ``mask_frac`` of the length (off by default).
    """

    def __init__(
        self,
        *,
        strength: float = 1.0,
        shift: float = 4.0,
        dilate: float = 0.1,
        scale: float = 0.4,
        shear: float = 0.75,
        noise_std: float = 0.1,
        mask_prob: float = 0.0,
        mask_frac: float = 0.15,
    ) -> None:
        super().__init__()
        s = float(strength)
        self.shift, self.dilate, self.scale = shift * s, dilate * s, scale * s
        self.shear, self.noise_std = shear * s, noise_std * s
        self.mask_prob, self.mask_frac = mask_prob, mask_frac

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        if x.dim() != 3:
            raise ValueError(f"sequence augmentation expects (B, C, L), got {tuple(x.shape)}")
        b, _, length = x.shape
        with rng_scope(generator, x.device):
            t = torch.arange(length, device=x.device, dtype=x.dtype).view(1, 1, length)
            center = (length - 1) / 2
            factor = _uniform(b, 1 - self.dilate, 1 + self.dilate, x)
            offset = _uniform(b, -self.shift, self.shift, x)
            src = ((t - center) / factor + center - offset).remainder(length)  # (B, 1, L)
            base = src.floor()
            frac = src - base
            # remainder() of a tiny negative float rounds to exactly `length`: wrap it to 0
            lo = base.long() % length
            hi = (lo + 1) % length
            lo, hi = lo.expand_as(x), hi.expand_as(x)
            out = torch.gather(x, 2, lo) * (1 - frac) + torch.gather(x, 2, hi) * frac
            out = out * _uniform(b, 1 - self.scale / 2, 1 + self.scale / 2, x)
            ramp = torch.linspace(-0.5, 0.5, length, device=x.device, dtype=x.dtype)
            out = out - _uniform(b, -self.shear / 2, self.shear / 2, x) * ramp
            if self.noise_std > 0:
                out = out + self.noise_std * torch.randn_like(out)
            if self.mask_prob > 0:
                width = max(1, round(self.mask_frac * length))
                start = torch.randint(0, length - width + 1, (b, 1, 1), device=x.device)
                window = (t >= start) & (t < start + width)
                hit = torch.rand(b, 1, 1, device=x.device) < self.mask_prob
                out = out.masked_fill(window & hit, 0.0)
        return out


class VectorAugment(nn.Module):
    """(B, D) -> same shape: additive Gaussian noise of std ``noise_std``."""

    def __init__(self, *, strength: float = 1.0, noise_std: float = 0.1) -> None:
        super().__init__()
        self.noise_std = noise_std * float(strength)

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        with rng_scope(generator, x.device):
            return x + self.noise_std * torch.randn_like(x)


def augment_graph(
    x: Tensor,
    edge_index: Tensor,
    generator: torch.Generator | None = None,
    *,
    feature_mask: float = 0.2,
    edge_drop: float = 0.2,
) -> tuple[Tensor, Tensor]:
    """A new view of a graph (GRACE, Zhu et al. 2020): each feature column is zeroed with
    probability ``feature_mask`` (the same columns for every node) and each undirected edge
    is dropped with probability ``edge_drop`` (both directions together,
    ``torch_geometric.utils.dropout_edge(force_undirected=True)``). Returns new tensors."""
    from torch_geometric.utils import dropout_edge

    with rng_scope(generator, x.device):
        keep = torch.rand(x.shape[-1], device=x.device) >= feature_mask
        x = x * keep.to(x.dtype)
        if edge_drop > 0:
            edge_index, _ = dropout_edge(edge_index, p=edge_drop, force_undirected=True)
    return x, edge_index


class GraphAugment(nn.Module):
    """``aug(x, edge_index, generator=None) -> (x, edge_index)``: :func:`augment_graph`."""

    def __init__(
        self, *, strength: float = 1.0, feature_mask: float = 0.2, edge_drop: float = 0.2
    ) -> None:
        super().__init__()
        s = float(strength)
        self.feature_mask = min(feature_mask * s, 1.0)
        self.edge_drop = min(edge_drop * s, 0.95)

    def forward(
        self, x: Tensor, edge_index: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        return augment_graph(
            x,
            edge_index,
            generator,
            feature_mask=self.feature_mask,
            edge_drop=self.edge_drop,
        )


def _image_defaults(meta: dict, channels: int) -> dict:
    low = meta.get("crop_scale", [0.6, 1.0])[0]
    rgb = channels == 3
    # natural RGB images: SimCLR-style crops/flip/colour, no rotation; digits: small affine
    return {
        "crop_scale": low,
        "hflip": bool(meta.get("hflip", False)),
        "color": rgb,
        "degrees": 0.0 if rgb else 10.0,
        "translate": 0.0 if rgb else 0.1,
    }


def make_augment(data, *, strength: float = 1.0, modality: str = "x", **overrides) -> nn.Module:
    """The default augmentation for ``data`` (a PreparedData) and one of its modalities.

    ``modality="x"`` follows ``data.kind``; ``"x2"`` (CLIP's other tower) is inferred from
    the tensor's rank (4 image, 3 sequence, 2 vectors). ``overrides`` go to the
    augmentation's constructor (e.g. ``noise_std=0``, ``mask_prob=0.2``).
    """
    if modality not in ("x", "x2"):
        raise ValueError(f"modality must be 'x' or 'x2', got {modality!r}")
    tensor = data.x if modality == "x" else data.x2
    if tensor is None:
        raise ValueError(f"{data.name} has no {modality}")
    if modality == "x":
        kind = data.kind
    else:
        kind = {4: "image", 3: "sequence", 2: "vectors"}[tensor.dim()]
    if kind == "image":
        meta = data.meta if modality == "x" else {}
        opts = {**_image_defaults(meta, tensor.shape[1]), **overrides}
        return ImageAugment(strength=strength, **opts)
    if kind == "sequence":
        return SequenceAugment(strength=strength, **overrides)
    if kind == "graph":
        return GraphAugment(strength=strength, **overrides)
    if kind == "vectors":
        return VectorAugment(strength=strength, **overrides)
    raise ValueError(f"no augmentation for kind {kind!r}")


__all__ = [
    "GraphAugment",
    "ImageAugment",
    "SequenceAugment",
    "VectorAugment",
    "augment_graph",
    "make_augment",
    "rng_scope",
]
