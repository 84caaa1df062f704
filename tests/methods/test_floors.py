"""The accuracy floors of the embedded defaults, on the short runs where they are cheap
(about 30 s in all). The full figures come from the `core` suite (README.md)."""

from __future__ import annotations

from benchmark.train import CellConfig, run_cell


def _linear(prepared, dataset: str, **cfg) -> float:
    row = run_cell(CellConfig(dataset=dataset, **cfg), data=prepared(dataset), progress=False)
    assert row["diverged"] is False
    return row["linear_acc"]


def test_simclr_ntxent_on_digits_reaches_97_percent(prepared):
    acc = _linear(
        prepared,
        "digits",
        method="simclr",
        objective="ntxent",
        encoder="cnn2d",
        batch_size=256,
        epochs=20,
    )
    assert acc >= 0.97, acc


def test_dgi_on_csbm_is_clearly_above_the_untrained_gcn(prepared):
    graph = dict(encoder="gcn", batch_size=2500)
    dgi = _linear(prepared, "csbm", method="dgi", objective="jsd", epochs=150, **graph)
    untrained = _linear(prepared, "csbm", method="random", objective="none", epochs=0, **graph)
    assert dgi >= untrained + 0.10, (dgi, untrained)
