"""The CUDA speed path of ``benchmark.train.fit``, exercised on the CPU where it applies:
data resident on the device, bf16 autocast with the losses in fp32, channels_last. The
defaults (fp32, contiguous) keep every existing cell's numbers and config_hash."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict

import pytest
import torch

from benchmark.datasets import PreparedData
from benchmark.train import CellConfig, build_method, fit, run_cell, seed_everything

CPU = torch.device("cpu")


def _images(n: int = 16, size: int = 16) -> PreparedData:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(n, 3, size, size, generator=gen)
    y = torch.arange(n) % 4
    idx = torch.arange(n)
    splits = {"train": idx[:8], "val": idx[8:12], "test": idx[12:]}
    return PreparedData("random", "image", x, y, splits, meta={"num_classes": 4})


def _trained(data: PreparedData, **settings) -> tuple[torch.nn.Module, dict]:
    """A SimCLR (or ``method``) cell fitted for 2 steps; records what the steps saw."""
    cfg = CellConfig(
        **{"method": "simclr", "objective": "ntxent", "encoder": "cnn2d", **settings},
        batch_size=4,
        epochs=1,
        dataset="random",
    )
    seed_everything(0)
    method = build_method(cfg, data, CPU)
    seen: dict = {"loss": [], "conv_out": [], "objective_in": []}
    step = method.training_loss

    def recorded(batch):
        loss = step(batch)
        seen["loss"].append(loss)
        return loss

    method.training_loss = recorded
    conv = next(m for m in method.encoder.modules() if isinstance(m, torch.nn.Conv2d))
    conv.register_forward_hook(lambda m, i, out: seen["conv_out"].append(out))
    if method.objective is not None:
        method.objective.register_forward_hook(
            lambda m, args, out: seen["objective_in"].append(args[0])
        )
    _, _, diverged = fit(method, data, cfg, CPU, progress=False)
    assert not diverged
    return method, seen


def test_the_defaults_are_fp32_contiguous_and_keep_the_config_hash():
    cfg = CellConfig(method="simclr", objective="ntxent")
    assert (cfg.precision, cfg.channels_last) == ("fp32", False)
    # the hash the cells had before the speed settings (and objective_options) existed
    old = {
        k: v
        for k, v in asdict(cfg).items()
        if k not in ("data_cache", "precision", "channels_last", "objective_options")
    }
    blob = json.dumps(old, sort_keys=True, default=str).encode()
    assert cfg.config_hash() == hashlib.sha256(blob).hexdigest()[:12]
    hashes = {
        CellConfig(method="simclr", objective="ntxent", **s).config_hash()
        for s in ({}, {"precision": "bf16"}, {"channels_last": True})
    }
    assert len(hashes) == 3  # a setting that changes the numbers changes the hash


def test_the_default_path_runs_fp32_contiguous():
    method, seen = _trained(_images())
    assert "forward" not in vars(method.encoder)  # nothing wrapped
    assert all(o.dtype == torch.float32 for o in seen["conv_out"])
    assert all(o.is_contiguous() for o in seen["conv_out"])
    assert all(p.is_contiguous() for p in method.parameters())


@pytest.mark.parametrize(("method", "objective"), [("simclr", "ntxent"), ("byol", "none")])
@pytest.mark.parametrize("encoder", ["cnn2d", "resnet18"])
def test_bf16_runs_the_encoder_in_bf16_and_the_losses_in_fp32(method, objective, encoder):
    data = _images(size=32 if encoder == "resnet18" else 16)
    trained, seen = _trained(data, method=method, objective=objective, encoder=encoder)
    _, seen_bf16 = _trained(data, method=method, objective=objective, encoder=encoder,
                            precision="bf16")  # fmt: skip
    assert seen_bf16["conv_out"] and all(o.dtype == torch.bfloat16 for o in seen_bf16["conv_out"])
    assert len(seen_bf16["loss"]) == 2
    assert all(loss.dtype == torch.float32 for loss in seen_bf16["loss"])
    assert all(z.dtype == torch.float32 for z in seen_bf16["objective_in"])
    # the same loss as fp32 at the first step, to bf16's precision
    assert seen_bf16["loss"][0].item() == pytest.approx(seen["loss"][0].item(), rel=0.05)


def test_channels_last_keeps_the_numbers_of_the_default_layout():
    data = _images()
    _, ref = _trained(data)
    nhwc, seen = _trained(data, channels_last=True)
    convs = [m.weight for m in nhwc.encoder.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(w.is_contiguous(memory_format=torch.channels_last) for w in convs)
    assert all(o.is_contiguous(memory_format=torch.channels_last) for o in seen["conv_out"])
    # the same computation in another summation order: the first loss to float rounding;
    # after one AdamW step (which scales each gradient to about lr) still close
    first, second = (loss.item() for loss in seen["loss"])
    assert first == pytest.approx(ref["loss"][0].item(), rel=1e-5)
    assert second == pytest.approx(ref["loss"][1].item(), rel=1e-3)


def test_a_bf16_channels_last_cell_runs_to_a_results_row():
    data = _images()
    row = run_cell(
        CellConfig(method="simclr", objective="ntxent", encoder="cnn2d", batch_size=4,
                   epochs=2, dataset="random", precision="bf16", channels_last=True),
        data=data,
        progress=False,
    )  # fmt: skip
    assert not row["diverged"] and 0 <= row["linear_acc"] <= 1 and 0 <= row["knn_acc"] <= 1


def test_an_unknown_precision_is_one_line():
    data = _images()
    cfg = CellConfig(method="simclr", objective="ntxent", encoder="cnn2d", batch_size=4,
                     epochs=1, dataset="random", precision="fp16")  # fmt: skip
    method = build_method(cfg, data, CPU)
    with pytest.raises(
        ValueError, match=r"^precision: 'fp16' is not allowed; allowed: fp32, bf16$"
    ):
        fit(method, data, cfg, CPU, progress=False)


def test_perf_train_runs_the_torchvision_dataloader_baseline_in_the_same_run(capsys):
    """`python -m benchmark perf train` measures our step and the per-sample torchvision +
    DataLoader step of the same job, and prints their ratio (a figure, not a timed test)."""
    from benchmark.perf import perf_train

    out = perf_train(2, torch.device("cpu"), batch_size=32)
    assert out["views_per_second"] > 0 and out["torchvision_views_per_second"] > 0
    ratio = out["views_per_second"] / out["torchvision_views_per_second"]
    assert out["speedup_vs_torchvision"] == pytest.approx(ratio)
    assert "torchvision per-sample transforms + DataLoader" in capsys.readouterr().out
