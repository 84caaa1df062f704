"""Accuracy floors that can fail: a trained encoder against the same encoder untrained
(method ``random``: same encoder, data and seed), on testbeds with headroom, in short runs
(about 45 s in all on one thread). The full figures come from the `core` suite (README.md).

``digits`` is not used: an untrained cnn2d already scores 97% on it, so a floor there
cannot tell a training run from none. On mnist1d (10,000 samples: 6800 train, 2000 test)
the untrained cnn1d scores 76.8 / 77.8 / 78.4% (linear probe, seeds 0 / 1 / 2), and:

- SimCLR + NT-Xent, B=256, lr 2e-3, 15 epochs: 84.5 / 83.7 / 86.6% (+7.8 / +5.9 / +8.3);
- CPC + InfoNCE (defaults), B=64, lr 5e-3, 6 epochs: 82.7 / 83.6 / 83.8% (+6.0 / +5.8 / +5.4).

Both floors ask for 4 points: below every seed's gain, above the seed spread of the
untrained encoder (1.6 points) and ~5 standard errors of a 2000-sample test accuracy.
"""

from __future__ import annotations

import pytest

from benchmark.train import CellConfig, run_cell

MARGIN = 0.04
MNIST1D = dict(dataset="mnist1d", encoder="cnn1d", seed=0)


def _linear(data, **cfg) -> float:
    row = run_cell(CellConfig(**cfg), data=data, progress=False)
    assert row["diverged"] is False
    return row["linear_acc"]


@pytest.fixture(scope="module")
def mnist1d(prepared):
    return prepared("mnist1d", num_train=6000)


@pytest.fixture(scope="module")
def untrained_cnn1d(mnist1d) -> float:
    return _linear(mnist1d, method="random", objective="none", epochs=0, **MNIST1D)


def test_simclr_ntxent_on_mnist1d_beats_the_untrained_cnn1d(mnist1d, untrained_cnn1d):
    acc = _linear(
        mnist1d, method="simclr", objective="ntxent", batch_size=256, lr=2e-3, epochs=15, **MNIST1D
    )
    assert acc >= untrained_cnn1d + MARGIN, (acc, untrained_cnn1d)


def test_cpc_on_mnist1d_beats_the_untrained_cnn1d(mnist1d, untrained_cnn1d):
    acc = _linear(
        mnist1d, method="cpc", objective="infonce", batch_size=64, lr=5e-3, epochs=6, **MNIST1D
    )
    assert acc >= untrained_cnn1d + MARGIN, (acc, untrained_cnn1d)


def test_dgi_on_csbm_is_clearly_above_the_untrained_gcn(prepared):
    graph = dict(dataset="csbm", encoder="gcn", batch_size=2500)
    data = prepared("csbm")
    dgi = _linear(data, method="dgi", objective="jsd", epochs=150, **graph)
    untrained = _linear(data, method="random", objective="none", epochs=0, **graph)
    assert dgi >= untrained + 0.10, (dgi, untrained)
