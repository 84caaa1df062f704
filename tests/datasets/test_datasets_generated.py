"""The offline datasets: shapes, dtypes, ranges, splits, determinism, documented facts."""

from __future__ import annotations

import math

import pytest
import torch

from benchmark.datasets import DATASETS, prepare_dataset, render_signals
from benchmark.datasets.gaussian_mi import rho_for_mi, true_mi

SMALL = {
    "digits": {},
    "mnist1d": {"num_train": 700, "num_val": 150, "num_test": 150},
    "csbm": {"num_nodes": 500},
    "gaussian_mi": {"num_samples": 2000},
}


def build(name: str, seed: int = 0, **options):
    return prepare_dataset(name, cache_dir=None, seed=seed, **{**SMALL[name], **options})


def assert_splits(data) -> None:
    n = data.x.shape[0]
    parts = [data.splits[k] for k in ("train", "val", "test")]
    assert all(p.dtype == torch.long and p.numel() > 0 for p in parts)
    joined = torch.cat(parts)
    assert joined.unique().numel() == joined.numel(), "splits overlap"
    if data.kind != "graph":
        assert torch.equal(joined.sort().values, torch.arange(n)), "splits do not cover"


def test_registry_names():
    assert {"digits", "mnist1d", "csbm", "gaussian_mi", "mnist", "cifar10", "stl10", "cora"} <= set(
        DATASETS.names()
    )


def test_digits():
    d = build("digits")
    assert (d.kind, d.name, tuple(d.x.shape), d.x.dtype) == (
        "image",
        "digits",
        (1797, 1, 8, 8),
        torch.float32,
    )
    assert d.x.min() == 0 and d.x.max() == 1
    assert d.y.dtype == torch.long and set(d.y.tolist()) == set(range(10)) and d.num_classes == 10
    assert_splits(d)
    sizes = {k: v.numel() for k, v in d.splits.items()}
    assert abs(sizes["val"] - 0.15 * 1797) < 12 and abs(sizes["test"] - 0.15 * 1797) < 12
    # stratified: every class is in every split
    for idx in d.splits.values():
        assert d.y[idx].unique().numel() == 10


def test_mnist1d_fixed_evaluation_sets_and_a_pool():
    d = build("mnist1d")  # 700 per draw from a pool of 1400; val 150, test 150
    assert (d.kind, tuple(d.x.shape), d.x.dtype) == ("sequence", (1700, 1, 40), torch.float32)
    assert d.num_classes == 10 and d.x2 is None
    assert_splits(d)
    assert torch.equal(d.splits["test"], torch.arange(150))
    assert torch.equal(d.splits["val"], torch.arange(150, 300))
    assert len(d.splits["train"]) == 1400 and d.num_train == 700
    # the defaults are DESIGN.md's sizes: test >= 5000, val >= 2000
    from benchmark.datasets import dataset_options

    defaults = dataset_options("mnist1d")
    assert (defaults["num_train"], defaults["num_val"], defaults["num_test"]) == (6000, 2000, 5000)


def test_mnist1d_seed_draws_its_own_training_set():
    d = build("mnist1d")
    a, b = d.for_seed(0), d.for_seed(1)
    assert len(a.splits["train"]) == len(b.splits["train"]) == 700
    assert not torch.equal(a.splits["train"], b.splits["train"])
    assert torch.equal(a.splits["train"], d.for_seed(0).splits["train"])  # seeded
    assert set(a.splits["train"].tolist()) <= set(d.splits["train"].tolist())
    for part in (a, b):
        assert torch.equal(part.splits["test"], d.splits["test"])  # the test set is fixed
        assert torch.equal(part.splits["val"], d.splits["val"])
        counts = torch.bincount(part.y[part.splits["train"]], minlength=10)
        assert counts.min() >= 60 and counts.max() <= 80, counts  # stratified: ~70 each
        part.validate()


def test_mnist1d_data_fixed_across_seeds_and_rng_untouched():
    import numpy as np

    np.random.seed(123)
    before = np.random.rand()
    np.random.seed(123)
    a = build("mnist1d", seed=0)
    after = np.random.rand()
    assert before == after, "mnist1d generation leaked into numpy's global RNG"
    b = build("mnist1d", seed=1)
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)


def test_mnist1d_as_images():
    d = build("mnist1d", image=True, image_size=16)
    assert (d.kind, tuple(d.x.shape)) == ("image", (1700, 1, 16, 16)) and d.x2 is None
    signals = build("mnist1d")
    assert torch.equal(d.y, signals.y)
    assert torch.equal(d.x[:, 0], render_signals(signals.x[:, 0], 16)[:, 0])
    d.validate()


def test_mnist1d_paired_image():
    d = build("mnist1d", paired_image=True, image_size=16)
    assert d.x2 is not None and tuple(d.x2.shape) == (1700, 1, 16, 16)
    assert d.x2.dtype == torch.float32 and d.x2.min() >= 0 and d.x2.max() <= 1
    # every column of every image has a lit pixel (the line is continuous)
    assert (d.x2.amax(dim=2) > 0.5).all()


def test_render_signals_puts_high_values_on_top():
    flat_high = torch.full((1, 40), 3.0)
    flat_low = torch.full((1, 40), -3.0)
    img = render_signals(torch.cat([flat_high, flat_low]), size=(10, 20))
    rows = torch.arange(10).view(1, 10, 1).float()
    centre = (img[:, 0] * rows).sum(1) / img[:, 0].sum(1)  # (2, W) intensity-weighted row
    assert (centre[0] < 3).all() and (centre[1] > 6).all()


def test_csbm_graph():
    d = build("csbm")
    assert (d.kind, tuple(d.x.shape), d.x.dtype) == ("graph", (500, 256), torch.float32)
    ei = d.edge_index
    assert ei.dtype == torch.long and ei.shape[0] == 2 and ei.numel() > 0
    assert (ei[0] != ei[1]).all(), "self loops"
    pairs = set(map(tuple, ei.T.tolist()))
    assert all((j, i) in pairs for i, j in pairs), "not undirected"
    assert len(pairs) == ei.shape[1], "duplicate edges"
    assert abs(ei.shape[1] / 500 - 10.0) < 1.5  # mean degree ~ avg_degree
    assert d.num_classes == 5
    assert_splits(d)


@pytest.mark.parametrize("h", [0.2, 0.9])
def test_csbm_homophily_option(h):
    d = build("csbm", homophily=h, num_nodes=800)
    ei = d.edge_index
    frac = (d.y[ei[0]] == d.y[ei[1]]).float().mean().item()
    assert abs(frac - h) < 0.05


def test_csbm_planetoid_splits():
    d = build("csbm", num_nodes=2500)
    sizes = {k: v.numel() for k, v in d.splits.items()}
    assert sizes == {"train": 100, "val": 500, "test": 1000}
    assert torch.bincount(d.y[d.splits["train"]]).tolist() == [20] * 5
    assert build("csbm", num_nodes=2500).splits["train"].equal(d.splits["train"])  # seeded
    assert not build("csbm", seed=1, num_nodes=2500).splits["train"].equal(d.splits["train"])
    with pytest.raises(ValueError, match="val_fraction"):
        build("csbm", num_nodes=500, val_fraction=0.5, test_fraction=0.5)


def test_csbm_signal_lives_in_signal_dim_and_needs_the_graph():
    """Features alone (20 labels per class) are weak; two rounds of neighbour averaging
    make the classes nearly separable -- what a GCN can exploit."""
    from sklearn.linear_model import LogisticRegression

    d = build("csbm", num_nodes=2500)
    tr, te = d.splits["train"], d.splits["test"]
    centred = torch.stack([d.x[d.y == c].mean(0) for c in range(5)])
    spread = centred.var(0)
    assert spread[:16].mean() > 5 * spread[16:].mean()  # class means only in signal_dim

    def acc(x):
        return LogisticRegression(max_iter=1000).fit(x[tr], d.y[tr]).score(x[te], d.y[te])

    n = d.x.shape[0]
    ones = torch.ones(d.edge_index.shape[1])
    adj = torch.sparse_coo_tensor(d.edge_index, ones, (n, n), check_invariants=True)
    deg = torch.bincount(d.edge_index[0], minlength=n).clamp_min(1).unsqueeze(1)
    smooth = d.x
    for _ in range(2):
        smooth = (adj @ smooth + smooth) / (deg + 1)
    alone, averaged = acc(d.x), acc(smooth)
    assert alone < 0.6 and averaged > alone + 0.2, (alone, averaged)


def test_gaussian_mi():
    d = build("gaussian_mi", dim=4, rho=0.8, num_samples=20_000)
    assert (
        d.kind == "vectors" and tuple(d.x.shape) == (20_000, 4) and tuple(d.x2.shape) == (20_000, 4)
    )
    assert d.meta["true_mi"] == pytest.approx(-4 / 2 * math.log(1 - 0.8**2))
    corr = torch.corrcoef(torch.cat([d.x, d.x2], 1).T)
    assert torch.allclose(torch.diagonal(corr, offset=4), torch.full((4,), 0.8), atol=0.02)
    assert corr[0, 1].abs() < 0.03  # independent dimensions
    # Gaussian MI from the sample correlation agrees with the stored truth
    est = -0.5 * torch.log1p(-(torch.diagonal(corr, offset=4) ** 2)).sum().item()
    assert est == pytest.approx(d.meta["true_mi"], rel=0.05)
    # balanced binned labels
    assert d.num_classes == 4 and torch.bincount(d.y).min() >= 4900
    assert_splits(d)


def test_gaussian_mi_target_and_zero_labels():
    assert true_mi(20, rho_for_mi(20, 5.0)) == pytest.approx(5.0)
    d = build("gaussian_mi", mi=2.0, dim=10, labels="zeros")
    assert d.meta["true_mi"] == pytest.approx(2.0) and (d.y == 0).all()


@pytest.mark.parametrize("name", sorted(SMALL))
def test_same_seed_same_data(name):
    a, b = build(name, seed=3), build(name, seed=3)
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    for k in a.splits:
        assert torch.equal(a.splits[k], b.splits[k])
    if a.edge_index is not None:
        assert torch.equal(a.edge_index, b.edge_index)
    c = build(name, seed=4)  # a seed changes the split or, from a pool, the draw
    assert not torch.equal(a.for_seed(3).splits["train"], c.for_seed(4).splits["train"])
