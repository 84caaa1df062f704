"""Jigsaw: the label is the applied permutation, and tiles are cut with a gap and jitter."""

from __future__ import annotations

import itertools

import pytest
import torch

from benchmark.methods.base import assemble_method
from benchmark.methods.jigsaw import Jigsaw


class _Encoder(torch.nn.Module):
    out_dim = 3

    def forward(self, x):
        return x.flatten(1)[:, :3]


def _jigsaw(shape, **options):
    facts = {"input_shape": shape}
    return assemble_method("jigsaw", _Encoder(), lambda x: x, facts, options=options)


def _numbered(shape, b=32):
    """Every pixel (and channel) holds a distinct value: a tile tells where it was cut."""
    return torch.arange(b * torch.Size(shape).numel(), dtype=torch.float32).view(b, *shape)


@pytest.mark.parametrize("shape", [(2, 8, 8), (1, 28, 28), (1, 40)])
def test_label_is_the_applied_permutation_of_the_cut_tiles(shape):
    method = _jigsaw(shape, normalize_tiles=False)
    x = _numbered(shape)
    torch.manual_seed(0)
    shuffled, target, sources = method.puzzle(x)
    perms = list(itertools.permutations(range(4)))
    assert method.perms.tolist() == [list(p) for p in perms]
    assert len(set(target.tolist())) > 1
    for i in range(len(x)):
        for k in range(4):
            cell = perms[target[i]][k]  # position k holds the tile of this cell
            if len(shape) == 3:
                (r, c), t = sources[i, cell].tolist(), shuffled.shape[-1]
                expected = x[i, :, r : r + shuffled.shape[-2], c : c + t]
            else:
                (s,), t = sources[i, cell].tolist(), shuffled.shape[-1]
                expected = x[i, :, s : s + t]
            assert torch.equal(shuffled[i, k], expected)


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (1, 40)])
def test_adjacent_tiles_are_separated_by_a_gap_and_jittered(shape):
    method = _jigsaw(shape)
    torch.manual_seed(0)
    tiles, sources = method.cut(_numbered(shape, b=256))
    t = tiles.shape[-1]
    if len(shape) == 3:
        th = tiles.shape[-2]
        # cells 0 1 / 2 3: left-right pairs differ in columns, top-bottom pairs in rows
        for a, b, axis, size in [(0, 1, 1, t), (2, 3, 1, t), (0, 2, 0, th), (1, 3, 0, th)]:
            gap = sources[:, b, axis] - (sources[:, a, axis] + size)
            assert gap.min() >= 1, (a, b, gap.min())
        cell = shape[1] // 2
        assert (sources[..., 0] // cell).tolist() == [[0, 0, 1, 1]] * 256  # inside its cell
        assert ((sources[..., 0] + th - 1) // cell).tolist() == [[0, 0, 1, 1]] * 256
    else:
        gap = sources[:, 1:, 0] - (sources[:, :-1, 0] + t)
        assert gap.min() >= 1
        assert (sources[:, -1, 0] + t).max() <= shape[-1]
    # the offsets are random: more than one gap occurs
    assert len(torch.unique(sources[:, 0])) > 1


def test_sizes_relative_to_the_cell():
    assert _jigsaw((1, 8, 8)).layout(8, 2) == (4, 2, 0, 1)  # 1 px gap, 1 px jitter
    assert _jigsaw((1, 28, 28)).layout(28, 2) == (14, 12, 0, 1)
    assert _jigsaw((1, 64, 64), gap=0.2, jitter=0.1).layout(64, 2) == (32, 23, 3, 3)
    # no gap and no jitter: the touching grid, the tiles are the cells
    method = _jigsaw((1, 8, 8), gap=0, jitter=0, normalize_tiles=False)
    tiles, _ = method.cut(_numbered((1, 8, 8), b=1))
    assert torch.equal(tiles[0, 1], _numbered((1, 8, 8), b=1)[0, :, :4, 4:])


def test_tiles_are_normalised_independently():
    method = _jigsaw((1, 28, 28))
    shuffled, _, _ = method.puzzle(torch.rand(4, 1, 28, 28) * 5 + 3)
    flat = shuffled.flatten(2)
    torch.testing.assert_close(flat.mean(-1), torch.zeros(4, 4), atol=1e-4, rtol=0)
    torch.testing.assert_close(flat.std(-1, unbiased=False), torch.ones(4, 4), atol=1e-3, rtol=0)


def test_no_negatives():
    assert _jigsaw((1, 8, 8)).effective_negatives(128) == 0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"gap": 1.5}, "gap=1.5 is not allowed; allowed: a number in"),
        ({"jitter": "big"}, "jitter='big' is not allowed; allowed: a number in"),
        ({"normalize_tiles": 1}, "normalize_tiles=1 is not allowed; allowed: true or false"),
        ({"gap": 0.5, "jitter": 0.5}, "leave no tile in a 4-pixel cell"),
        ({"grid": 3}, "no option 'grid'.*allowed: gap, jitter, normalize_tiles"),
    ],
)
def test_bad_options_name_what_is_allowed(options, message):
    with pytest.raises(ValueError, match=message):
        _jigsaw((1, 8, 8), **options)


def test_options_are_checked_before_building():
    with pytest.raises(ValueError, match="gap=-0.1 is not allowed; allowed: a number in"):
        Jigsaw.check_options({**Jigsaw.option_defaults, "gap": -0.1})
