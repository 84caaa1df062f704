"""Tiny dataset files in each real loader's exact on-disk format (CIFAR-10, STL-10, Cora,
MNIST), written by the tests: the loaders' own tests and the miniature gpu suite."""

from __future__ import annotations

import pickle
import struct
from collections import defaultdict
from pathlib import Path

import numpy as np


def _rng(rng: np.random.Generator | None) -> np.random.Generator:
    return np.random.default_rng(0) if rng is None else rng


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


# --- MNIST: idx files, big-endian, magic 0x00000803 (ubyte, 3 dims) / 0x00000801 ---------


def write_idx(path: Path, array: np.ndarray) -> None:
    assert array.dtype == np.uint8
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.tobytes())


# --- CIFAR-10: python-2 pickled batches {b'data': uint8 (N, 3072), b'labels': [...]} ------


def write_cifar(
    base: Path, per_batch: int = 3, n_test: int = 4, rng: np.random.Generator | None = None
) -> dict:
    """``base`` = <root>/cifar-10-batches-py. Returns {"x": uint8 (N, 3, 32, 32), "y"}."""
    rng = _rng(rng)
    base.mkdir(parents=True)
    out = {"x": [], "y": []}
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        n = n_test if name == "test_batch" else per_batch
        data = rng.integers(0, 256, (n, 3072), np.uint8)  # rows: R plane, G plane, B plane
        labels = [int(v) for v in rng.integers(0, 10, n)]
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


# --- STL-10: raw uint8, each image 3 planes of 96x96 stored column-major; labels 1..10 ----


def write_stl10(
    base: Path, n_train: int = 10, n_test: int = 3, rng: np.random.Generator | None = None
) -> dict:
    """``base`` = <root>/stl10_binary. Returns {part: (uint8 (N, 3, 96, 96), labels 1..10)}."""
    rng = _rng(rng)
    base.mkdir(parents=True)
    truth = {}
    for part, n in (("train", n_train), ("test", n_test)):
        imgs = rng.integers(0, 256, (n, 3, 96, 96), np.uint8)  # (N, C, H, W)
        labels = (np.arange(n) % 10 + 1).astype(np.uint8)
        (base / f"{part}_X.bin").write_bytes(np.transpose(imgs, (0, 1, 3, 2)).tobytes())
        (base / f"{part}_y.bin").write_bytes(labels.tobytes())
        truth[part] = (imgs, labels)
    (base / "class_names.txt").write_text("\n".join(f"class{i}" for i in range(10)) + "\n")
    return truth


# --- Cora: Planetoid's pickled scipy csr features, numpy one-hot labels, dict graph ------


def write_cora(
    raw: Path,
    n_labeled: int = 14,
    n_test: int = 20,
    feats: int = 12,
    rng: np.random.Generator | None = None,
) -> dict:
    """``raw`` = <root>/Cora/raw. Planetoid layout: x/y the labeled training nodes (the
    first rows of allx/ally), then 500 validation nodes inside allx; tx/ty rows belong to
    the nodes listed in test.index."""
    import scipy.sparse as sp

    rng = _rng(rng)
    raw.mkdir(parents=True)
    n_all = n_labeled + 500
    n = n_all + n_test
    feat = (rng.random((n, feats)) < 0.3).astype(np.float32)
    label = np.arange(n) % 7
    onehot = np.eye(7, dtype=np.int64)[label]
    test_index = n_all + rng.permutation(n_test)  # node test_index[i] has row i of tx
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
