"""What the dataset builders share: the registry, seeded splits, the missing-files error."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import Tensor

from benchmark.datasets.base import PreparedData
from benchmark.registry import Registry

# name -> builder ``(root, seed, **options) -> PreparedData``
Builder = Callable[..., PreparedData]
DATASETS: Registry[Builder] = Registry("dataset")

DEFAULT_ROOT = Path("data/raw")


class DatasetFilesMissing(FileNotFoundError):
    """A real loader's files are not on disk; the message says where to put which files."""


def resolve_root(root: str | Path | None) -> Path:
    return DEFAULT_ROOT if root is None else Path(root)


def require_files(name: str, directory: Path, files: Sequence[str], source: str) -> None:
    """Raise a one-line :class:`DatasetFilesMissing` unless every file is in ``directory``."""
    missing = [f for f in files if not (directory / f).is_file()]
    if not missing:
        return
    state = "does not exist" if not directory.is_dir() else f"lacks {', '.join(missing)}"
    raise DatasetFilesMissing(
        f"{name}: looked in {directory} ({state}); put {', '.join(files)} in that directory "
        f"(from {source}); nothing is ever downloaded, set the dataset's `root` to their parent"
    )


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))


def _ranked_within_class(labels: Tensor, seed: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """A seeded shuffle ``perm`` of 0..N-1, the shuffled labels, each shuffled sample's rank
    among the samples of its class (0, 1, ... in shuffled order) and the class counts."""
    n = labels.numel()
    perm = torch.randperm(n, generator=generator(seed))
    lab = labels[perm]
    by_class = torch.sort(lab, stable=True).indices  # shuffled order kept inside a class
    counts = torch.bincount(lab - lab.min())
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.empty(n, dtype=torch.long)
    rank[by_class] = torch.arange(n) - starts.repeat_interleave(counts)
    return perm, lab, rank, counts


def _stratified_parts(labels: Tensor, fractions: Sequence[float], seed: int) -> list[Tensor]:
    """Split positions 0..N-1 into len(fractions) sorted parts, seeded and stratified.

    Part k (k >= 1) gets exactly round(N * fractions[k]) samples, part 0 the rest. Samples
    are shuffled, ranked within their class and ordered by rank / class size, so that any
    contiguous block of that order holds every class in proportion (up to one sample).
    """
    n = labels.numel()
    perm, lab, rank, counts = _ranked_within_class(labels, seed)
    key = (rank.double() + 0.5) / counts[lab - lab.min()]
    order = perm[torch.sort(key, stable=True).indices]
    sizes = [round(n * f) for f in fractions[1:]]
    sizes = [n - sum(sizes), *sizes]
    return [torch.sort(part)[0] for part in torch.split(order, sizes)]


def stratified_subset(labels: Tensor, k: int, seed: int) -> Tensor:
    """Sorted positions of a seeded, class-stratified subset of ``k`` of the N labels."""
    n = labels.numel()
    if not 0 < k <= n:
        raise ValueError(f"a subset of {k} from {n} samples: allowed 1 to {n}")
    return _stratified_parts(labels, (1.0 - k / n, k / n), seed)[1]


def random_splits(
    labels: Tensor, seed: int, val_fraction: float = 0.15, test_fraction: float = 0.15
) -> dict[str, Tensor]:
    """Seeded, class-stratified, disjoint train/val/test indices covering all N samples."""
    train, val, test = _stratified_parts(
        labels, (1.0 - val_fraction - test_fraction, val_fraction, test_fraction), seed
    )
    return {"train": train, "val": val, "test": test}


def per_class_splits(
    labels: Tensor,
    seed: int,
    train_per_class: int,
    val_fraction: float,
    test_fraction: float,
) -> dict[str, Tensor]:
    """Planetoid-style semi-supervised splits (Yang et al. 2016; Kipf & Welling 2017):
    ``train_per_class`` seeded samples of each class, then ``val_fraction`` and
    ``test_fraction`` of all N samples drawn at random from the rest; the remaining
    samples belong to no split (unlabelled, but still part of a graph)."""
    n = labels.numel()
    perm, _, rank, counts = _ranked_within_class(labels, seed)
    if int(counts.min()) <= train_per_class:
        raise ValueError(
            f"train_per_class={train_per_class} leaves a class with no unlabelled sample "
            f"(smallest class has {int(counts.min())})"
        )
    chosen = rank < train_per_class
    rest = perm[~chosen]
    n_val, n_test = round(n * val_fraction), round(n * test_fraction)
    if n_val + n_test > rest.numel():
        raise ValueError(
            f"val_fraction + test_fraction need {n_val + n_test} samples, only "
            f"{rest.numel()} remain after {train_per_class} per class for training"
        )
    return {
        "train": torch.sort(perm[chosen])[0],
        "val": torch.sort(rest[:n_val])[0],
        "test": torch.sort(rest[n_val : n_val + n_test])[0],
    }


def carve_val(
    train_labels: Tensor, num_test: int, seed: int, val_fraction: float
) -> dict[str, Tensor]:
    """Official train/test split: samples 0..T-1 are train, T..T+num_test-1 test; the
    validation split is carved out of train (seeded, stratified)."""
    n_train = train_labels.numel()
    train, val = _stratified_parts(train_labels, (1.0 - val_fraction, val_fraction), seed)
    test = torch.arange(n_train, n_train + num_test)
    return {"train": train, "val": val, "test": test}


def official_image_split(
    name: str,
    train: tuple[Tensor, Tensor],
    test: tuple[Tensor, Tensor],
    seed: int,
    val_fraction: float,
    meta: dict,
) -> PreparedData:
    """uint8 (N, C, H, W) train and test images + labels -> PreparedData with x in [0, 1],
    train first then test, validation carved out of train."""
    (x_train, y_train), (x_test, y_test) = train, test
    x = torch.cat([x_train, x_test]).to(torch.float32).div_(255.0)
    y = torch.cat([torch.as_tensor(y_train), torch.as_tensor(y_test)]).to(torch.long)
    return PreparedData(
        name=name,
        kind="image",
        x=x,
        y=y,
        splits=carve_val(y[: len(x_train)], len(x_test), seed, val_fraction),
        meta=meta,
    )
