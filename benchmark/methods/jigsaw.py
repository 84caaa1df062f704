"""Jigsaw puzzle pretext task (Noroozi & Favaro 2016), for images and sequences."""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmark.methods.base import FLAG, UNIT, Augment, Batch, Method, Objective, register_method

GRID = 2  # cells per side (images) or segments (sequences): 4 tiles, 24 permutations


@register_method("jigsaw")
class Jigsaw(Method):
    """Cut each sample into 4 tiles (one per cell of a 2x2 grid for images, of 4 segments
    for sequences), shuffle them by one of the 24 permutations, encode every tile with the
    shared encoder and predict the permutation from the concatenated tile features.

    As in the paper, each tile is smaller than its cell and cut from it at a random
    offset (jitter), so that adjacent tiles are separated by a gap and continuity of edges
    or lines across tile borders cannot solve the puzzle (the paper's placement lets a pair
    touch when both offsets are extreme; here a minimum gap always remains). Sizes are
    fractions of the cell (cell = side // 2 for images, length // 4 for sequences):

    - ``gap`` (0.075): the guaranteed gap between adjacent tiles, at least 1 pixel (step)
      when > 0;
    - ``jitter`` (0.075): the range of the random offset of a tile in its cell, drawn
      uniformly per sample and tile, at least 1 pixel when > 0.

    The tile side is ``cell - gap_px - jitter_px`` and adjacent tiles are
    ``gap_px + jitter_px`` apart on average (gap_px to gap_px + 2 jitter_px). The paper's
    75-pixel cells and 64-pixel tiles give an 11-pixel (0.15-cell) average gap; the
    defaults give 0.15 cell on average with at least 1 pixel always (on 8x8 digits: 4-pixel
    cells, 2x2 tiles, gaps of 1 to 3 pixels; on 28x28: 14-pixel cells, 12-pixel tiles).
    ``gap=0, jitter=0`` is the touching 2x2 grid (the tiles are the cells).

    ``normalize_tiles`` (True, the paper's "we normalize the mean and the standard
    deviation of each patch independently"): every tile is standardised on its own, so
    that low-level statistics shared by neighbours do not give the order away either.

    The paper uses a 3x3 grid of 64-pixel tiles and a subset of the 9! permutations; the
    suite's images are 8x8 to 32x32, so this keeps a 2x2 grid with all 24 permutations.
    """

    views = 4  # tiles
    option_rules = {"gap": UNIT, "jitter": UNIT, "normalize_tiles": FLAG}

    def __init__(
        self,
        encoder: nn.Module,
        augment: Augment,
        objective: Objective | None = None,
        *,
        input_shape: tuple[int, ...],
        gap: float = 0.075,
        jitter: float = 0.075,
        normalize_tiles: bool = True,
    ) -> None:
        super().__init__(encoder, augment, objective)
        self.gap, self.jitter, self.normalize_tiles = gap, jitter, normalize_tiles
        # fail at build time, not at the first step, if the tiles would be empty
        if len(input_shape) == 3:
            self.layout(input_shape[1], GRID), self.layout(input_shape[2], GRID)
        else:
            self.layout(input_shape[-1], GRID * GRID)
        perms = torch.tensor(list(itertools.permutations(range(4))))
        self.register_buffer("perms", perms)
        d = encoder.out_dim
        self.head = nn.Sequential(
            nn.Linear(4 * d, 256), nn.ReLU(inplace=True), nn.Linear(256, len(perms))
        )

    def layout(self, side: int, cells: int) -> tuple[int, int, int, int]:
        """(cell, tile, lowest offset in the cell, jitter) in pixels along a side of
        ``side`` pixels cut into ``cells`` cells."""
        cell = side // cells
        gap, jitter = (max(1, round(f * cell)) if f > 0 else 0 for f in (self.gap, self.jitter))
        tile = cell - gap - jitter
        if tile < 1:
            raise ValueError(
                f"jigsaw: gap={self.gap} and jitter={self.jitter} leave "
                f"no tile in a {cell}-pixel cell; allowed: gap_px + jitter_px < {cell}"
            )
        return cell, tile, gap // 2, jitter

    def _starts(self, cell_index: Tensor, side: int, cells: int, b: int) -> tuple[Tensor, int]:
        """(B, tiles) first pixel of each tile along one axis (tile k in cell
        ``cell_index[k]``, at its own random offset), and the tile size."""
        cell, tile, low, jitter = self.layout(side, cells)
        shift = torch.randint(jitter + 1, (b, len(cell_index)), device=cell_index.device)
        return cell_index * cell + low + shift, tile

    def cut(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Tiles in grid order and where they come from.

        Images (B, C, H, W) -> tiles (B, 4, C, t_h, t_w) in row-major cell order and
        sources (B, 4, 2): the (row, column) of each tile's top-left pixel; sequences
        (B, C, L) -> (B, 4, C, t) and (B, 4, 1): the first step of each tile.
        """
        b, dev = len(x), x.device
        bi = torch.arange(b, device=dev)
        cells = torch.arange(GRID * GRID, device=dev)
        if x.ndim == 4:
            r0, th = self._starts(cells // GRID, x.shape[-2], GRID, b)  # (B, 4)
            c0, tw = self._starts(cells % GRID, x.shape[-1], GRID, b)
            ri = r0[..., None] + torch.arange(th, device=dev)  # (B, 4, th)
            ci = c0[..., None] + torch.arange(tw, device=dev)  # (B, 4, tw)
            # (B, H, W, C)[...] -> (B, 4, th, tw, C) -> (B, 4, C, th, tw)
            tiles = x.permute(0, 2, 3, 1)[
                bi[:, None, None, None], ri[..., :, None], ci[..., None, :]
            ].permute(0, 1, 4, 2, 3)
            return tiles, torch.stack([r0, c0], -1)
        s0, t = self._starts(cells, x.shape[-1], GRID * GRID, b)
        idx = s0[..., None] + torch.arange(t, device=dev)  # (B, 4, t)
        tiles = x.permute(0, 2, 1)[bi[:, None, None], idx].permute(0, 1, 3, 2)
        return tiles, s0[..., None]

    def puzzle(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(shuffled tiles (B, 4, ...), permutation index (B,), sources (B, 4, k)).

        Position k of the shuffled puzzle holds the tile of cell ``perms[target][k]``.
        """
        tiles, sources = self.cut(x)
        if self.normalize_tiles:
            flat = tiles.flatten(2)
            mean = flat.mean(-1, keepdim=True)
            std = flat.std(-1, keepdim=True, unbiased=False)
            tiles = ((flat - mean) / (std + 1e-5)).view_as(tiles)
        b = len(tiles)
        target = torch.randint(len(self.perms), (b,), device=tiles.device)
        order = self.perms[target]  # (B, 4)
        shuffled = tiles[torch.arange(b, device=tiles.device)[:, None], order]
        return shuffled, target, sources

    def training_loss(self, batch: Batch) -> Tensor:
        shuffled, target, _ = self.puzzle(self.augment(batch.x))
        b = len(shuffled)
        feats = self.encoder(shuffled.flatten(0, 1)).reshape(b, -1)
        return F.cross_entropy(self.head(feats), target)

    def effective_negatives(self, batch_size: int) -> int:
        return 0  # a classification over permutations: no negative samples
