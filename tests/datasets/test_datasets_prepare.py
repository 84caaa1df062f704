"""prepare_dataset: the on-disk cache, its keys, option checking."""

from __future__ import annotations

import functools

import pytest
import torch

from benchmark.datasets import (
    DATASETS,
    PreparedData,
    cache_path,
    dataset_options,
    prepare_dataset,
)


def test_second_call_loads_from_file(tmp_path, monkeypatch):
    builder = DATASETS.get("digits")
    calls = []

    @functools.wraps(builder)
    def counting(*args, **kwargs):
        calls.append(args)
        return builder(*args, **kwargs)

    monkeypatch.setitem(DATASETS._entries, "digits", counting)
    first = prepare_dataset("digits", cache_dir=tmp_path, seed=1)
    files = list(tmp_path.glob("*.pt"))
    assert len(files) == 1 and files[0].name.startswith("digits-seed1")
    assert not list(tmp_path.glob("*.tmp*")), "temporary file left behind"
    second = prepare_dataset("digits", cache_dir=tmp_path, seed=1)
    assert len(calls) == 1, "the second call rebuilt instead of loading the file"
    assert torch.equal(first.x, second.x) and torch.equal(first.y, second.y)
    for k in first.splits:
        assert torch.equal(first.splits[k], second.splits[k])
    assert second.meta["seed"] == 1 and second.meta["options"] == dataset_options("digits")


def test_cache_key_separates_settings(tmp_path):
    a = cache_path("csbm", seed=0, cache_dir=tmp_path)
    assert a == cache_path("csbm", seed=0, cache_dir=tmp_path, homophily=0.8)  # = default
    b = cache_path("csbm", seed=1, cache_dir=tmp_path)
    c = cache_path("csbm", seed=0, cache_dir=tmp_path, homophily=0.3)
    assert len({a, b, c}) == 3
    assert "homophily=0.3" in c.name and "seed1" in b.name
    prepare_dataset("csbm", cache_dir=tmp_path, num_nodes=200, train_per_class=5, homophily=0.3)
    prepare_dataset("csbm", cache_dir=tmp_path, num_nodes=200, train_per_class=5, homophily=0.9)
    assert len(list(tmp_path.glob("csbm-*.pt"))) == 2


def test_unknown_option_lists_valid_ones(tmp_path):
    with pytest.raises(TypeError, match="valid: .*homophily"):
        prepare_dataset("csbm", cache_dir=tmp_path, homophilly=0.5)
    with pytest.raises(KeyError, match="valid:"):
        prepare_dataset("nope", cache_dir=tmp_path)


def test_corrupt_cache_is_rebuilt(tmp_path):
    path = cache_path("gaussian_mi", cache_dir=tmp_path, num_samples=300)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not a torch file")
    with pytest.warns(UserWarning, match="rebuilding"):
        data = prepare_dataset("gaussian_mi", cache_dir=tmp_path, num_samples=300)
    assert data.x.shape == (300, 20)
    assert PreparedData.load(path).x.shape == (300, 20)


def test_validate_rejects_overlapping_splits():
    d = prepare_dataset("gaussian_mi", cache_dir=None, num_samples=100)
    d.splits["val"] = torch.cat([d.splits["val"], d.splits["train"][:1]])
    with pytest.raises(ValueError, match="overlaps"):
        d.validate()
