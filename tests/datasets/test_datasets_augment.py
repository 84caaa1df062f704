"""Augmentations: batched, per-sample different, seeded, shape-preserving."""

from __future__ import annotations

import pytest
import torch

from benchmark.datasets import (
    GraphAugment,
    ImageAugment,
    SequenceAugment,
    VectorAugment,
    augment_graph,
    make_augment,
    prepare_dataset,
)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def digits_batch(n: int = 16) -> torch.Tensor:
    data = prepare_dataset("digits", cache_dir=None)
    return data.x[:1].repeat(n, 1, 1, 1)  # one image repeated: any difference is per-sample


CASES = {
    "image": (lambda: ImageAugment(), lambda: digits_batch()),
    "rgb": (
        lambda: ImageAugment(color=True, hflip=True, degrees=0, translate=0, crop_scale=0.2),
        lambda: torch.rand(1, 3, 16, 16).repeat(8, 1, 1, 1),
    ),
    "sequence": (
        lambda: SequenceAugment(mask_prob=0.5),
        lambda: torch.randn(1, 1, 40, generator=gen(0)).repeat(16, 1, 1),
    ),
    "vectors": (lambda: VectorAugment(), lambda: torch.zeros(16, 5)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_batched_per_sample_seeded(case):
    make, batch = CASES[case]
    aug, x = make(), batch()
    out = aug(x, gen(1))
    assert out.shape == x.shape and out.dtype == x.dtype
    flat = out.flatten(1)
    assert torch.cdist(flat, flat).fill_diagonal_(1.0).min() > 0, "two samples got one draw"
    assert torch.equal(out, aug(x, gen(1))), "same generator state, different output"
    assert not torch.equal(out, aug(x, gen(2)))
    g = gen(3)
    assert not torch.equal(aug(x, g), aug(x, g)), "successive calls must advance the stream"
    if case in ("image", "rgb"):
        assert out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("case", sorted(CASES))
def test_global_rng_left_alone_and_global_seed_repeats(case):
    make, batch = CASES[case]
    aug, x = make(), batch()
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    aug(x, gen(0))
    assert torch.equal(torch.rand(3), expected), "generator path touched the global RNG"
    torch.manual_seed(7)
    a = aug(x)
    torch.manual_seed(7)
    assert torch.equal(a, aug(x))


def test_strength_zero_is_identity():
    x = digits_batch(4)
    assert torch.equal(ImageAugment(strength=0.0)(x, gen(0)), x)
    s = torch.randn(4, 1, 40)
    assert torch.allclose(SequenceAugment(strength=0.0)(s, gen(0)), s, atol=1e-6)
    assert torch.equal(VectorAugment(strength=0.0)(s[:, 0], gen(0)), s[:, 0])


def test_image_warp_conventions_flip_and_crop_window():
    x = torch.rand(64, 1, 6, 10, generator=gen(0))
    flip = ImageAugment(crop_scale=1.0, degrees=0, translate=0, noise_std=0, hflip=True)
    out = flip(x, gen(1))
    same = (out - x).flatten(1).abs().amax(1) < 1e-5
    mirrored = (out - x.flip(-1)).flatten(1).abs().amax(1) < 1e-5
    assert bool((same | mirrored).all()) and same.any() and mirrored.any()
    crop = ImageAugment(crop_scale=0.3, degrees=0, translate=0, noise_std=0)
    theta = crop.matrices(256, 6, 10, x)
    window = theta[:, :, 2].abs() + theta[:, [0, 1], [0, 1]]
    assert bool((window <= 1 + 1e-6).all()), "a crop left the image"
    area = theta[:, 0, 0] * theta[:, 1, 1]
    assert area.min() >= 0.3 - 1e-6 and area.max() <= 1 + 1e-6


def test_sequence_pure_shift_is_circular():
    x = torch.randn(2, 1, 40)
    aug = SequenceAugment(shift=3, dilate=0, scale=0, shear=0, noise_std=0)
    out = aug(x, gen(0))
    # a circular shift by a fractional amount keeps the mean of each signal
    assert torch.allclose(out.mean(-1), x.mean(-1), atol=1e-5)


def test_sequence_shift_that_rounds_to_the_length_wraps(monkeypatch):
    """A source position of -1e-8 has remainder exactly 40.0 in float32: it must read
    step 0, not index past the end."""
    import benchmark.datasets.augment as augment

    def fixed(n, low, high, like):  # the shift draw (low < 0) gives a tiny offset
        value = 1e-8 if low < 0 else (low + high) / 2
        return torch.full((n, 1, 1), value, dtype=like.dtype)

    monkeypatch.setattr(augment, "_uniform", fixed)
    x = torch.randn(3, 1, 40)
    aug = SequenceAugment(shift=3, dilate=0, scale=0, shear=0, noise_std=0)
    out = aug(x)
    assert torch.allclose(out, x, atol=1e-5)


def test_graph_augment():
    data = prepare_dataset("csbm", cache_dir=None, num_nodes=300)
    x, ei = data.x, data.edge_index
    x2, ei2 = augment_graph(x, ei, gen(0), feature_mask=0.3, edge_drop=0.3)
    assert x2.shape == x.shape and x2 is not x and ei2.shape[0] == 2
    dropped_cols = (x2 == 0).all(0)
    assert 0 < dropped_cols.sum() < x.shape[1]
    assert torch.equal(x2[:, ~dropped_cols], x[:, ~dropped_cols])
    kept = set(map(tuple, ei2.T.tolist()))
    assert kept < set(map(tuple, ei.T.tolist()))
    assert all((j, i) in kept for i, j in kept), "edge dropping broke undirectedness"
    assert 0.55 < ei2.shape[1] / ei.shape[1] < 0.85
    again = augment_graph(x, ei, gen(0), feature_mask=0.3, edge_drop=0.3)
    assert torch.equal(again[0], x2) and torch.equal(again[1], ei2)
    other = augment_graph(x, ei, gen(1), feature_mask=0.3, edge_drop=0.3)
    assert not torch.equal(other[1], ei2)
    x3, ei3 = make_augment(data)(x, ei, gen(0))
    assert isinstance(make_augment(data), GraphAugment) and x3.shape == x.shape


def test_make_augment_dispatch():
    seq = prepare_dataset(
        "mnist1d", cache_dir=None, num_train=140, num_val=30, num_test=30, paired_image=True
    )
    assert isinstance(make_augment(seq), SequenceAugment)
    image_tower = make_augment(seq, modality="x2")
    assert isinstance(image_tower, ImageAugment)
    assert image_tower(seq.x2[:8], gen(0)).shape == (8, 1, 32, 32)
    vec = prepare_dataset("gaussian_mi", cache_dir=None, num_samples=200)
    assert isinstance(make_augment(vec), VectorAugment)
    assert isinstance(make_augment(vec, modality="x2"), VectorAugment)
    digits = prepare_dataset("digits", cache_dir=None)
    aug = make_augment(digits, strength=0.5)
    assert isinstance(aug, ImageAugment) and not aug.hflip and aug.crop_low == pytest.approx(0.8)
    assert make_augment(digits, noise_std=0.0).noise_std == 0.0
    with pytest.raises(ValueError, match="no x2"):
        make_augment(digits, modality="x2")
