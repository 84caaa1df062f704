"""Shared fixtures: one torch thread, datasets prepared once per session."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: one thread is faster, and the machine's cores are shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def prepared(tmp_path_factory):
    """Datasets prepared once per test session in a temporary cache: name -> PreparedData."""
    from benchmark.datasets import prepare_dataset

    cache = tmp_path_factory.mktemp("prepared")
    made: dict = {}

    def get(name: str, **options):
        key = (name, tuple(sorted(options.items())))
        if key not in made:
            made[key] = prepare_dataset(name, cache_dir=cache, **options)
        return made[key]

    return get
