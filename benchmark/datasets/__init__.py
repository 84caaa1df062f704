"""Datasets: offline generated sets, real loaders that never download, batched augmentations.

``prepare_dataset(name, root=..., seed=..., **options)`` returns a :class:`PreparedData`
(built once, then loaded from an atomic on-disk cache); ``make_augment(data)`` returns the
batched per-sample augmentation for its kind. See ../shared/DESIGN.md.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import re
import warnings
from pathlib import Path

from benchmark.datasets import (  # noqa: F401  (registration side effects)
    cifar10,
    cora,
    csbm,
    digits,
    gaussian_mi,
    mnist,
    mnist1d,
    stl10,
)
from benchmark.datasets._common import DATASETS, DatasetFilesMissing
from benchmark.datasets.augment import (
    GraphAugment,
    ImageAugment,
    SequenceAugment,
    VectorAugment,
    augment_graph,
    make_augment,
)
from benchmark.datasets.base import PreparedData
from benchmark.datasets.mnist1d import render_signals
from benchmark.sources import dataset_digest

# bump when the cache file format changes; a builder's source is in the key already
CACHE_VERSION = 2


def dataset_options(name: str, **options) -> dict:
    """``options`` completed with the builder's defaults; unknown names raise TypeError
    listing the valid ones."""
    builder = DATASETS.get(name)
    params = inspect.signature(builder).parameters
    valid = [p for p, v in params.items() if v.kind is inspect.Parameter.KEYWORD_ONLY]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise TypeError(
            f"dataset {name!r}: unknown option(s) {', '.join(unknown)}; valid: {', '.join(valid)}"
        )
    return {p: options.get(p, params[p].default) for p in valid}


def cache_path(
    name: str, *, seed: int = 0, cache_dir: str | Path = "data/prepared", **options
) -> Path:
    """``<cache_dir>/<name>-seed<seed>[-<non-default options>]-<hash>.pt``; the hash covers
    the name, seed, every option (defaults filled in), CACHE_VERSION and the source of the
    dataset's builder (``sources.dataset_digest``): an edited generator rebuilds."""
    full = dataset_options(name, **options)
    key = json.dumps(
        {
            "name": name,
            "seed": int(seed),
            "options": full,
            "version": CACHE_VERSION,
            "source": dataset_digest(name),
        },
        sort_keys=True,
        default=str,
    )
    digest = hashlib.sha1(key.encode()).hexdigest()[:10]
    defaults = dataset_options(name)
    shown = "".join(f"-{k}={full[k]}" for k in sorted(full) if full[k] != defaults[k])
    shown = re.sub(r"[^A-Za-z0-9_.=+-]", "_", shown)[:80]
    return Path(cache_dir) / f"{name}-seed{int(seed)}{shown}-{digest}.pt"


def prepare_dataset(
    name: str,
    *,
    root: str | Path | None = None,
    cache_dir: str | Path | None = "data/prepared",
    seed: int = 0,
    rebuild: bool = False,
    **options,
) -> PreparedData:
    """The dataset ``name`` with its seeded splits: loaded from ``cache_dir`` if a file for
    these (name, seed, options) exists, else built and saved there (atomically).

    ``root``: the directory holding a real dataset's files (generated sets ignore it; not
    part of the cache key). ``cache_dir=None`` builds without caching; ``rebuild=True``
    ignores an existing file. ``meta`` gains ``seed`` and the full ``options``.
    """
    full = dataset_options(name, **options)
    path = None if cache_dir is None else cache_path(name, seed=seed, cache_dir=cache_dir, **full)
    if path is not None and path.is_file() and not rebuild:
        try:
            return PreparedData.load(path)
        except Exception as err:  # a truncated or incompatible file: build it again
            warnings.warn(f"rebuilding {path}: could not load it ({err})", stacklevel=2)
    data = DATASETS.get(name)(root, seed, **full)
    data.meta.update(seed=int(seed), options=json.loads(json.dumps(full, default=str)))
    data.validate()
    if path is not None:
        data.save(path)
    return data


__all__ = [
    "CACHE_VERSION",
    "DATASETS",
    "DatasetFilesMissing",
    "GraphAugment",
    "ImageAugment",
    "PreparedData",
    "SequenceAugment",
    "VectorAugment",
    "augment_graph",
    "cache_path",
    "dataset_options",
    "make_augment",
    "prepare_dataset",
    "render_signals",
]
