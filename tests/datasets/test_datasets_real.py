"""The real loaders, on tiny files written here in each dataset's exact on-disk format."""

from __future__ import annotations

import pickle
import struct
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmark.datasets import DatasetFilesMissing, prepare_dataset

RNG = np.random.default_rng(0)


class Py2Pickler(pickle._Pickler):
    """Pickles ``bytes`` as Python 2 ``str`` (SHORT_BINSTRING / BINSTRING), as in the
    original CIFAR-10 and Planetoid files: they load as str under ``encoding="latin1"``
    (what torchvision and torch_geometric use) and as bytes (b'data') under "bytes"."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2_str(self, obj: bytes) -> None:
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str


def py2_dump(obj, path: Path) -> None:
    with open(path, "wb") as f:
        Py2Pickler(f, protocol=2).dump(obj)


def one_line_missing(err: pytest.ExceptionInfo, directory: Path, *files: str) -> None:
    msg = str(err.value)
    assert isinstance(err.value, FileNotFoundError)
    assert "\n" not in msg and str(directory) in msg
    for f in files:
        assert f in msg


# --- MNIST: idx files, big-endian, magic 0x00000803 (ubyte, 3 dims) / 0x00000801 ---------


def write_idx(path: Path, array: np.ndarray) -> None:
    assert array.dtype == np.uint8
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.tobytes())


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


def write_cifar(base: Path, per_batch: int = 3, n_test: int = 4) -> dict:
    base.mkdir(parents=True)
    out = {"x": [], "y": []}
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        n = n_test if name == "test_batch" else per_batch
        data = RNG.integers(0, 256, (n, 3072), np.uint8)  # rows: R plane, G plane, B plane
        labels = [int(v) for v in RNG.integers(0, 10, n)]
        batch = {b"batch_label": name.encode(), b"labels": labels, b"data": data}
        batch[b"filenames"] = [f"img_{i}.png".encode() for i in range(n)]
        py2_dump(batch, base / name)
        out["x"].append(data.reshape(n, 3, 32, 32))
        out["y"] += labels
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer"]
    names += [b"dog", b"frog", b"horse", b"ship", b"truck"]
    meta = {b"num_cases_per_batch": per_batch, b"label_names": names, b"num_vis": 3072}
    py2_dump(meta, base / "batches.meta")
    return {"x": np.concatenate(out["x"]), "y": out["y"]}


def test_cifar10_reads_pickled_batches(tmp_path):
    truth = write_cifar(tmp_path / "cifar-10-batches-py")
    d = prepare_dataset("cifar10", root=tmp_path, cache_dir=None, val_fraction=0.2)
    assert (d.kind, tuple(d.x.shape), d.x.dtype) == ("image", (19, 3, 32, 32), torch.float32)
    assert torch.equal(d.x, torch.from_numpy(truth["x"]).float() / 255)
    assert d.y.tolist() == truth["y"]
    assert torch.equal(d.splits["test"], torch.arange(15, 19))
    assert d.splits["val"].max() < 15
    assert d.meta["classes"][0] == "airplane" and d.meta["hflip"] is True


# --- STL-10: raw uint8, each image 3 planes of 96x96 stored column-major; labels 1..10 ----


def test_stl10_reads_binaries_column_major(tmp_path):
    base = tmp_path / "stl10_binary"
    base.mkdir()
    truth = {}
    for part, n in (("train", 10), ("test", 3)):
        imgs = RNG.integers(0, 256, (n, 3, 96, 96), np.uint8)  # (N, C, H, W)
        labels = (np.arange(n) % 10 + 1).astype(np.uint8)
        (base / f"{part}_X.bin").write_bytes(np.transpose(imgs, (0, 1, 3, 2)).tobytes())
        (base / f"{part}_y.bin").write_bytes(labels.tobytes())
        truth[part] = (imgs, labels)
    (base / "class_names.txt").write_text("\n".join(f"class{i}" for i in range(10)) + "\n")
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


def write_cora(raw: Path, n_labeled: int = 14, n_test: int = 20, feats: int = 12) -> dict:
    """Planetoid layout: x/y the labeled training nodes (the first rows of allx/ally), then
    500 validation nodes inside allx; tx/ty rows belong to the nodes listed in test.index."""
    import scipy.sparse as sp

    raw.mkdir(parents=True)
    n_all = n_labeled + 500
    n = n_all + n_test
    feat = (RNG.random((n, feats)) < 0.3).astype(np.float32)
    label = np.arange(n) % 7
    onehot = np.eye(7, dtype=np.int64)[label]
    test_index = n_all + RNG.permutation(n_test)  # node test_index[i] has row i of tx
    objs = {
        "x": sp.csr_matrix(feat[:n_labeled]),
        "y": onehot[:n_labeled],
        "allx": sp.csr_matrix(feat[:n_all]),
        "ally": onehot[:n_all],
        "tx": sp.csr_matrix(feat[test_index]),
        "ty": onehot[test_index],
    }
    graph = defaultdict(list)
    for i in range(n):  # a ring plus some chords, both directions listed
        for j in ((i + 1) % n, (i * 7 + 3) % n):
            if j != i:
                graph[i].append(j)
                graph[j].append(i)
    objs["graph"] = graph
    for name, obj in objs.items():
        py2_dump(obj, raw / f"ind.cora.{name}")
    (raw / "ind.cora.test.index").write_text("\n".join(map(str, test_index)) + "\n")
    return {"feat": feat, "label": label, "n": n, "n_all": n_all, "graph": graph}


def test_cora_reads_planetoid_files(tmp_path):
    truth = write_cora(tmp_path / "Cora" / "raw")
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
