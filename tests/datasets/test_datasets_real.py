"""The real loaders, on tiny files written here in each dataset's exact on-disk format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from real_files import write_cifar, write_cora, write_idx, write_stl10  # tests/ is on sys.path

from benchmark.datasets import DatasetFilesMissing, prepare_dataset

RNG = np.random.default_rng(0)


def one_line_missing(err: pytest.ExceptionInfo, directory: Path, *files: str) -> None:
    msg = str(err.value)
    assert isinstance(err.value, FileNotFoundError)
    assert "\n" not in msg and str(directory) in msg
    for f in files:
        assert f in msg


# --- MNIST: idx files, big-endian, magic 0x00000803 (ubyte, 3 dims) / 0x00000801 ---------


def test_mnist_reads_idx_files(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    imgs = {"train": RNG.integers(0, 256, (20, 28, 28), np.uint8)}
    imgs["t10k"] = RNG.integers(0, 256, (6, 28, 28), np.uint8)
    labels = {"train": np.arange(20, dtype=np.uint8) % 10, "t10k": np.arange(6, dtype=np.uint8)}
    for part in ("train", "t10k"):
        write_idx(raw / f"{part}-images-idx3-ubyte", imgs[part])
        write_idx(raw / f"{part}-labels-idx1-ubyte", labels[part])
    d = prepare_dataset("mnist", root=tmp_path, cache_dir=None, val_fraction=0.5)
    assert (d.kind, tuple(d.x.shape), d.x.dtype) == ("image", (26, 1, 28, 28), torch.float32)
    assert torch.equal(d.x[:20, 0], torch.from_numpy(imgs["train"]).float() / 255)
    assert torch.equal(d.x[20:, 0], torch.from_numpy(imgs["t10k"]).float() / 255)
    assert d.y.tolist() == labels["train"].tolist() + labels["t10k"].tolist()
    assert torch.equal(d.splits["test"], torch.arange(20, 26))
    assert d.splits["val"].numel() == 10 and d.splits["val"].max() < 20
    assert torch.cat(list(d.splits.values())).unique().numel() == 26


# --- CIFAR-10: python-2 pickled batches {b'data': uint8 (N, 3072), b'labels': [...]} ------


def test_cifar10_reads_pickled_batches(tmp_path):
    truth = write_cifar(tmp_path / "cifar-10-batches-py", rng=RNG)
    d = prepare_dataset("cifar10", root=tmp_path, cache_dir=None, val_fraction=0.2)
    assert (d.kind, tuple(d.x.shape), d.x.dtype) == ("image", (19, 3, 32, 32), torch.float32)
    assert torch.equal(d.x, torch.from_numpy(truth["x"]).float() / 255)
    assert d.y.tolist() == truth["y"]
    assert torch.equal(d.splits["test"], torch.arange(15, 19))
    assert d.splits["val"].max() < 15
    assert d.meta["classes"][0] == "airplane" and d.meta["hflip"] is True


# --- STL-10: raw uint8, each image 3 planes of 96x96 stored column-major; labels 1..10 ----


def test_stl10_reads_binaries_column_major(tmp_path):
    truth = write_stl10(tmp_path / "stl10_binary", n_train=10, n_test=3, rng=RNG)
    d = prepare_dataset("stl10", root=tmp_path, cache_dir=None, val_fraction=0.2)
    assert (d.kind, tuple(d.x.shape)) == ("image", (13, 3, 96, 96))
    expected = np.concatenate([truth["train"][0], truth["test"][0]])
    assert torch.equal(d.x, torch.from_numpy(expected).float() / 255)
    labels = np.concatenate([truth["train"][1], truth["test"][1]]).astype(int) - 1
    assert d.y.tolist() == labels.tolist()
    assert torch.equal(d.splits["test"], torch.arange(10, 13))
    assert d.splits["val"].numel() == 2
    small = prepare_dataset("stl10", root=tmp_path, cache_dir=None, image_size=32)
    assert tuple(small.x.shape) == (13, 3, 32, 32) and 0 <= small.x.min() <= small.x.max() <= 1


# --- Cora: Planetoid's pickled scipy csr features, numpy one-hot labels, dict graph ------


def test_cora_reads_planetoid_files(tmp_path):
    truth = write_cora(tmp_path / "Cora" / "raw", rng=RNG)
    d = prepare_dataset("cora", root=tmp_path, cache_dir=None, normalize_features=False)
    assert (d.kind, tuple(d.x.shape), d.x.dtype) == ("graph", (truth["n"], 12), torch.float32)
    assert torch.equal(d.x, torch.from_numpy(truth["feat"]))
    assert d.y.tolist() == truth["label"].tolist() and d.num_classes == 7
    assert torch.equal(d.splits["train"], torch.arange(14))
    assert torch.equal(d.splits["val"], torch.arange(14, 514))
    assert torch.equal(d.splits["test"].sort().values, torch.arange(truth["n_all"], truth["n"]))
    pairs = set(map(tuple, d.edge_index.T.tolist()))
    expected = {(i, j) for i, js in truth["graph"].items() for j in js}
    assert pairs == expected and all((j, i) in pairs for i, j in pairs)
    normed = prepare_dataset("cora", root=tmp_path, cache_dir=None)
    rows = normed.x.sum(1)
    assert torch.allclose(rows[rows > 0], torch.ones_like(rows[rows > 0]))
    rand = prepare_dataset("cora", root=tmp_path, cache_dir=None, split="random", seed=2)
    assert sum(v.numel() for v in rand.splits.values()) == truth["n"]


# --- missing files: one clear line naming the directory and the files ---------------------

WHERE = {
    "mnist": ("MNIST/raw", "train-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
    "cifar10": ("cifar-10-batches-py", "data_batch_1", "test_batch", "batches.meta"),
    "stl10": ("stl10_binary", "train_X.bin", "test_y.bin"),
    "cora": ("Cora/raw", "ind.cora.x", "ind.cora.test.index"),
}


@pytest.mark.parametrize("name", sorted(WHERE))
def test_missing_directory_says_where_and_what(tmp_path, name):
    sub, *files = WHERE[name]
    with pytest.raises(DatasetFilesMissing) as err:
        prepare_dataset(name, root=tmp_path / "nowhere", cache_dir=tmp_path / "cache")
    one_line_missing(err, tmp_path / "nowhere" / sub, *files)
    assert "does not exist" in str(err.value)
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").iterdir())


def test_partial_files_name_the_missing_ones(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    write_idx(raw / "train-images-idx3-ubyte", np.zeros((1, 28, 28), np.uint8))
    with pytest.raises(FileNotFoundError, match="lacks train-labels-idx1-ubyte"):
        prepare_dataset("mnist", root=tmp_path, cache_dir=None)
