"""Rotation: label k is the image turned by k * 90 degrees, checked pixel by pixel."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from benchmark.methods.base import Batch, assemble_method
from benchmark.methods.rotation import Rotation


class _Encoder(torch.nn.Module):
    out_dim = 4

    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(2 * 5 * 5, 4)

    def forward(self, x):
        return self.lin(x.flatten(1))


def _rotation(shape=(2, 5, 5), **options):
    facts = {"input_shape": shape}
    return assemble_method("rotation", _Encoder(), lambda x: x, facts, options=options)


def _turn(img, quarter_turns):
    """Counter-clockwise by 90 degrees, written out: out[i][j] = img[j][n-1-i]."""
    for _ in range(quarter_turns):
        n = len(img)
        img = [[img[j][n - 1 - i] for j in range(n)] for i in range(n)]
    return img


def test_labels_are_the_applied_rotation():
    x = torch.randn(3, 2, 5, 5)
    rotated, target = Rotation.rotations(x)
    assert rotated.shape == (12, 2, 5, 5)
    for r, k in zip(rotated, target.tolist(), strict=True):
        matches = [
            (b, q)
            for b in range(3)
            for q in range(4)
            if all(r[c].tolist() == _turn(x[b, c].tolist(), q) for c in range(2))
        ]
        assert len(matches) == 1 and matches[0][1] == k


def test_a_marked_corner_moves_counter_clockwise():
    x = torch.zeros(1, 1, 3, 3)
    x[0, 0, 0, 0] = 1.0  # top-left
    rotated, target = Rotation.rotations(x)
    where = {
        k: divmod(int(r.flatten().argmax()), 3)
        for r, k in zip(rotated, target.tolist(), strict=True)
    }
    assert where == {0: (0, 0), 1: (2, 0), 2: (2, 2), 3: (0, 2)}  # TL, BL, BR, TR


def test_loss_is_the_cross_entropy_over_the_four_rotations():
    method = _rotation()
    x = torch.randn(4, 2, 5, 5)
    rows = [
        torch.tensor(_turn(x[b, c].tolist(), k))
        for k in range(4)
        for b in range(4)
        for c in range(2)
    ]
    inputs = torch.stack(rows).view(16, 2, 5, 5)
    labels = torch.arange(4).repeat_interleave(4)
    expected = F.cross_entropy(method.head(method.encoder(inputs)), labels)
    got = method.training_loss(Batch(x=x, y=torch.zeros(4), idx=torch.arange(4)))
    torch.testing.assert_close(got, expected)


def test_no_negatives_and_no_options():
    assert _rotation().effective_negatives(128) == 0
    with pytest.raises(ValueError, match="no option 'k'.*allowed: none"):
        _rotation(k=4)
    with pytest.raises(ValueError, match="square images, got 4x5"):
        _rotation(shape=(1, 4, 5))
