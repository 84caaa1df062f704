"""Every method with every compatible objective trains a few steps and yields a valid row."""

from __future__ import annotations

import math

import pytest
import torch

from benchmark.methods import METHODS, NO_OBJECTIVE, Method, check_compatible
from benchmark.train import CellConfig, build_method, run_cell

# the smallest sensible setting of each method: dataset, encoder, options
SETTING = {
    "simclr": ("digits", "mlp", {}),
    "moco": ("digits", "mlp", {"queue_size": 64}),
    "npid": ("digits", "mlp", {"bank_negatives": 64}),
    "cpc": ("mnist1d", "cnn1d", {}),
    "dim": ("digits", "cnn2d", {}),
    "dgi": ("csbm", "gcn", {}),
    "clip": ("mnist1d_pairs", "cnn1d", {}),
    "byol": ("digits", "mlp", {}),
    "rotation": ("digits", "mlp", {}),
    "jigsaw": ("digits", "cnn2d", {}),
    "supervised": ("digits", "mlp", {}),
    "random": ("digits", "mlp", {}),
}


def _data(prepared, name):
    if name == "mnist1d_pairs":
        return prepared(
            "mnist1d", num_train=700, num_val=150, num_test=150, paired_image=True, image_size=16
        )
    if name == "mnist1d":
        return prepared("mnist1d", num_train=700, num_val=150, num_test=150)
    return prepared(name)


def _pairs():
    for method in METHODS.names():
        for objective in METHODS.get(method).objectives or (NO_OBJECTIVE,):
            yield method, objective


def test_every_method_has_a_setting():
    assert set(SETTING) == set(METHODS.names())


@pytest.mark.parametrize(("method", "objective"), list(_pairs()))
def test_pair_trains_without_divergence(prepared, method, objective):
    dataset, encoder, options = SETTING[method]
    data = _data(prepared, dataset)
    cfg = CellConfig(
        method=method,
        objective=objective,
        dataset=dataset,
        encoder=encoder,
        batch_size=64,
        epochs=1,
        method_options=options,
    )
    row = run_cell(cfg, data=data, progress=False)
    assert row["diverged"] is False
    for key in ("linear_acc", "knn_acc", "val_acc"):
        assert 0.0 <= row[key] <= 1.0
    assert row["negatives"] >= (0 if objective == NO_OBJECTIVE else 1)
    assert len(row["config_hash"]) == 12


def test_same_seed_same_numbers(prepared):
    data = prepared("digits")
    cfg = CellConfig(method="simclr", objective="ntxent", encoder="mlp", batch_size=128, epochs=1)
    a = run_cell(cfg, data=data, progress=False)
    b = run_cell(cfg, data=data, progress=False)
    assert {k: a[k] for k in ("linear_acc", "knn_acc", "val_acc")} == {
        k: b[k] for k in ("linear_acc", "knn_acc", "val_acc")
    }


def test_incompatible_pairs_are_refused_with_the_compatible_list():
    with pytest.raises(ValueError, match="compatible: dv, infonce, jsd"):
        check_compatible("dgi", "triplet")
    with pytest.raises(ValueError, match="compatible: none"):
        check_compatible("byol", "ntxent")
    with pytest.raises(ValueError, match="needs: image"):
        check_compatible("rotation", NO_OBJECTIVE, "sequence")
    with pytest.raises(KeyError, match="valid: contrastive"):
        check_compatible("simclr", "nope")


def test_effective_negatives(prepared):
    data = prepared("digits")
    base = dict(encoder="mlp", batch_size=64, epochs=0)
    row = run_cell(
        CellConfig(method="simclr", objective="ntxent", **base), data=data, progress=False
    )
    assert row["negatives"] == 2 * 64 - 2
    row = run_cell(
        CellConfig(method="simclr", objective="ntxent", negatives=16, **base),
        data=data,
        progress=False,
    )
    assert row["negatives"] == 16
    row = run_cell(
        CellConfig(method="moco", objective="infonce", method_options={"queue_size": 100}, **base),
        data=data,
        progress=False,
    )
    assert row["negatives"] == 100  # the queue only (He et al. 2020)


def test_nan_loss_marks_the_cell_diverged(prepared, monkeypatch):
    from benchmark.methods.simclr import SimCLR

    monkeypatch.setattr(SimCLR, "training_loss", lambda self, batch: torch.tensor(math.nan))
    data = prepared("digits")
    row = run_cell(
        CellConfig(method="simclr", objective="ntxent", encoder="mlp", batch_size=64, epochs=1),
        data=data,
        progress=False,
    )
    assert row["diverged"] is True
    assert math.isnan(row["linear_acc"])


def test_batch_larger_than_training_split_is_refused(prepared):
    data = prepared("digits")
    with pytest.raises(ValueError, match="larger than the training split"):
        run_cell(
            CellConfig(
                method="simclr", objective="ntxent", encoder="mlp", batch_size=5000, epochs=1
            ),
            data=data,
            progress=False,
        )


def test_moco_queue_smaller_than_the_batch(prepared):
    data = prepared("digits")
    cfg = CellConfig(
        method="moco",
        objective="infonce",
        encoder="mlp",
        batch_size=128,
        epochs=1,
        method_options={"queue_size": 64},
    )
    row = run_cell(cfg, data=data, progress=False)
    assert row["diverged"] is False and row["negatives"] == 64


def test_options_are_the_keyword_arguments_with_their_defaults():
    """A method's options and defaults are read from its signature, written once."""
    moco = METHODS.get("moco")
    assert moco.option_defaults["queue_size"] == 1024 and moco.data_needs == ()
    assert METHODS.get("npid").data_needs == ("num_train",)
    assert "input_shape" not in METHODS.get("cpc").option_defaults
    with pytest.raises(TypeError, match="option 'width' needs a default"):

        class _Bare(Method):  # an option without a default would be a required argument
            def __init__(self, encoder, augment, objective=None, *, width: int) -> None:
                super().__init__(encoder, augment, objective)


@pytest.mark.parametrize("method", ["clip", "dgi", "cpc", "simclr"])
def test_the_objective_is_built_once_and_holds_the_methods_critic(prepared, monkeypatch, method):
    """The training setup builds the objective once, with what the method adds to it
    (CLIP's learned temperature, DGI's bilinear critic, CPC's dot product), and the
    critic's parameters are the method's."""
    from benchmark.methods import base

    calls = []
    real = base.build_objective
    monkeypatch.setattr(base, "build_objective", lambda *a, **k: calls.append(a) or real(*a, **k))
    dataset, encoder, options = SETTING[method]
    cfg = CellConfig(
        method=method,
        dataset=dataset,
        encoder=encoder,
        objective=METHODS.get(method).default_objective,
        method_options=options,
    )
    built = build_method(cfg, _data(prepared, dataset), torch.device("cpu"))
    assert len(calls) == 1
    critic = built.objective.critic
    if method == "simclr":
        assert critic is None and built.objective.metric == "cosine"
    elif method == "cpc":
        assert built.objective.metric == "dot" and built.objective.hparams["temperature"] == 1.0
    else:
        names = {id(p) for p in built.parameters()}
        assert critic is not None and all(id(p) in names for p in critic.parameters())
