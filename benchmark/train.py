"""The one training loop: a grid cell in, one results row out.

Seeded and deterministic on CPU (same seed, same numbers); the device is chosen
automatically; a non-finite loss stops the cell and marks it ``diverged`` instead of
crashing. Evaluation freezes the encoder and runs the probes of ``benchmark.probe``.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from benchmark import distributed
from benchmark.config.cell import PRECISIONS, CellConfig
from benchmark.datasets import PreparedData, make_augment, prepare_dataset
from benchmark.encoders import build_encoder
from benchmark.methods import Batch, Method, assemble_method, check_compatible
from benchmark.probe import knn_accuracy, linear_probe
from benchmark.sources import code_digest

# the default second-tower encoder for each kind of paired modality (CLIP)
TOWER_FOR_SHAPE = {3: "cnn2d", 2: "cnn1d", 1: "mlp"}


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def lr_at(step: int, *, total: int, warmup: int, base: float) -> float:
    """Linear warm-up then cosine decay to zero (pure, as nanoGPT's get_lr)."""
    if step < warmup:
        return base * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return base * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_method(cfg: CellConfig, data: PreparedData, device: torch.device) -> Method:
    """The encoder (with what the method's options add to it), the augmentation, then the
    method with its objective (:func:`benchmark.methods.assemble_method`)."""
    check_compatible(cfg.method, cfg.objective, data.kind)
    sample_shape = tuple(data.x.shape[1:])
    augment_fn = make_augment(data, strength=cfg.augment_strength)

    def make_encoder(**settings):  # what the method's options add (DGI's paper preset)
        return build_encoder(cfg.encoder, sample_shape, **settings)

    def make_tower(shape: tuple[int, ...]):
        return build_encoder(TOWER_FOR_SHAPE[len(shape)], shape)

    facts = {
        "input_shape": sample_shape,
        "num_train": len(data.splits["train"]),
        "num_classes": data.num_classes,
        "data_kind": data.kind,
        "x2_shape": tuple(data.x2.shape[1:]) if data.x2 is not None else None,
        "make_encoder": make_tower,
    }
    method = assemble_method(
        cfg.method,
        make_encoder,
        lambda x: augment_fn(x, None),
        facts,
        objective=cfg.objective,
        hyperparameters=cfg.objective_kwargs(),
        num_negatives=cfg.negatives,
        options=dict(cfg.method_options),
    )
    return method.to(device)


class Diverged(Exception):
    pass


# the most validation kNN evaluations of one fit (a tuning trial's pruner reads each)
MAX_EVALS = 25

# called after every epoch: (epoch, mean loss, method, data, device)
EpochHook = Callable[[int, float, Method, PreparedData, torch.device], None]


def val_knn_tracker(
    history: list[dict], *, epochs: int | None = None, evals: int = MAX_EVALS
) -> EpochHook:
    """An epoch hook appending {epoch, loss, val_knn_acc} to ``history``; returns the acc.

    The per-epoch validation signal is the kNN accuracy (one matrix product), cheap enough
    to compute every epoch; the linear probe runs once at the end. Given ``epochs``, the
    accuracy is computed at most ``evals`` times, evenly spaced and always at the last
    epoch (full-graph cells train 150 one-step epochs; evaluating each would cost more
    than training); the other epochs record the loss only and return None.
    """
    stride = max(1, math.ceil(epochs / evals)) if epochs else 1

    def hook(epoch, loss, method, data, device) -> float | None:
        if (epoch + 1) % stride and epoch + 1 != epochs:
            history.append({"epoch": epoch, "loss": loss})
            return None
        feats = embed(method, data, device, ("train", "val"))
        acc = (
            knn_accuracy(feats["train"], feats["val"], num_classes=data.num_classes)
            if finite(feats)
            else 0.0
        )
        history.append({"epoch": epoch, "loss": loss, "val_knn_acc": acc})
        return acc

    return hook


def fit(
    method: Method,
    data: PreparedData,
    cfg: CellConfig,
    device: torch.device,
    *,
    on_epoch: EpochHook | None = None,
    progress: bool = True,
) -> tuple[float, int, bool]:
    """Train in place. Returns (seconds, samples seen, diverged)."""
    if not method.trains or cfg.epochs == 0:
        return 0.0, 0, False
    train_idx = data.splits["train"]
    memory = _speed_path(method, cfg, device)
    x = _resident(data.x, device, memory)
    y = _resident(data.y, device)
    x2 = _resident(data.x2, device, memory) if data.x2 is not None else None
    edge_index = data.edge_index.to(device) if data.edge_index is not None else None
    graph = getattr(method, "full_graph", False)
    n = len(train_idx)
    position = _split_positions(train_idx).to(device)  # dataset row -> position in the split
    if graph:
        steps_per_epoch = 1
    else:
        if cfg.batch_size > n:
            raise ValueError(
                f"batch_size {cfg.batch_size} is larger than the training split ({n} samples)"
            )
        steps_per_epoch = n // cfg.batch_size
    total = steps_per_epoch * cfg.epochs
    warmup = min(total // 2, int(cfg.warmup_epochs * steps_per_epoch))
    # several processes (benchmark/distributed.py): each steps its share of the global batch
    ddp = distributed.is_distributed() and not graph
    step_loss = distributed.prepare(method, cfg.seed) if ddp else method.training_loss
    params = [p for p in method.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed)
    bar = tqdm(
        total=total,
        disable=not progress,
        leave=False,
        dynamic_ncols=True,
        desc=f"{cfg.method}/{cfg.objective} B={cfg.batch_size}",
    )
    step, seen, start = 0, 0, time.perf_counter()
    method.train()
    try:
        for epoch in range(cfg.epochs):
            order = train_idx[torch.randperm(n, generator=gen)].to(device, non_blocking=True)
            running = 0.0
            for b in range(steps_per_epoch):
                if graph:
                    batch = Batch(x=x, y=y, idx=train_idx.to(device), edge_index=edge_index)
                else:
                    rows = order[b * cfg.batch_size : (b + 1) * cfg.batch_size]
                    if ddp:
                        rows = distributed.shard(rows)
                    # idx = position within the training split (memory banks index by it)
                    batch = Batch(
                        x=x[rows],
                        y=y[rows],
                        idx=position[rows],
                        x2=x2[rows] if x2 is not None else None,
                    )
                for g in opt.param_groups:
                    g["lr"] = lr_at(step, total=total, warmup=warmup, base=cfg.lr)
                loss = step_loss(batch)
                # with DDP every rank stops together and shows the global batch's mean loss
                shown = distributed.mean(loss) if ddp else loss
                if not torch.isfinite(shown):
                    raise Diverged(f"non-finite loss at step {step}")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
                method.after_step(step / total)
                seen += len(batch.idx) * (distributed.world_size() if ddp else 1)
                value = shown.item()
                running += value
                bar.update()
                bar.set_postfix(epoch=epoch + 1, loss=f"{value:.4f}", refresh=False)
            if on_epoch is not None:
                paused = time.perf_counter()
                on_epoch(epoch, running / steps_per_epoch, method, data, device)
                method.train()
                start += time.perf_counter() - paused  # evaluation is not training time
    except Diverged:
        bar.close()
        return time.perf_counter() - start, seen, True
    bar.close()
    return time.perf_counter() - start, seen, False


def _speed_path(method: Method, cfg: CellConfig, device: torch.device) -> torch.memory_format:
    """Apply the cell's precision and memory layout to ``method`` (in place); returns the
    memory format the image batches take.

    bf16: each encoder (the method's and its momentum copies) runs under bf16 autocast and
    returns fp32, so heads, critics and every loss are computed in fp32; the evaluation
    after training reads the same bf16 encoder. channels_last: the convolution weights and
    the resident images in NHWC, so convolutions run in that layout.
    """
    if cfg.precision not in PRECISIONS:
        raise ValueError(f"precision: {cfg.precision!r} is not allowed; allowed: fp32, bf16")
    if cfg.precision == "bf16":
        kind = type(method.encoder)
        for module in method.modules():
            if type(module) is kind and "forward" not in vars(module):
                module.forward = _in_bf16(module.forward, device.type)
    if not cfg.channels_last:
        return torch.contiguous_format
    method.to(memory_format=torch.channels_last)  # the 4-d (convolution) weights
    return torch.channels_last


def _in_bf16(forward: Callable, device_type: str) -> Callable:
    def call(*args, **kwargs):
        with torch.autocast(device_type, dtype=torch.bfloat16):
            out = forward(*args, **kwargs)
        return out.float() if isinstance(out, Tensor) else out

    return call


def _resident(
    t: Tensor, device: torch.device, memory: torch.memory_format = torch.contiguous_format
) -> Tensor:
    """``t`` on the device for the whole fit: copied once (on CUDA from pinned memory,
    without blocking), image batches in the memory format ``memory``."""
    if device.type == "cuda":
        t = t.pin_memory().to(device, non_blocking=True)
    else:
        t = t.to(device)
    return t.contiguous(memory_format=memory) if t.dim() == 4 else t


def _split_positions(train_idx: Tensor) -> Tensor:
    lookup = torch.full((int(train_idx.max()) + 1,), -1, dtype=torch.long)
    lookup[train_idx] = torch.arange(len(train_idx))
    return lookup


@torch.no_grad()
def embed(
    method: Method,
    data: PreparedData,
    device: torch.device,
    splits: tuple[str, ...] = ("train", "val", "test"),
    chunk: int = 1024,
) -> dict[str, tuple[Tensor, Tensor]]:
    """Frozen features (eval mode, on the CPU) and labels of each split in ``splits``.

    Only the rows of those splits are encoded: a generated set's pool holds samples no
    seed trains on, and the per-epoch validation never reads test. A graph is encoded
    whole (message passing reads every node) and then indexed.
    """
    method.eval()
    if data.edge_index is not None:
        every = method.features(data.x.to(device), data.edge_index.to(device)).float().cpu()
        return {name: (every[data.splits[name]], data.y[data.splits[name]]) for name in splits}
    out = {}
    for name in splits:
        idx = data.splits[name]
        parts = [
            method.features(data.x[idx[i : i + chunk]].to(device))
            for i in range(0, len(idx), chunk)
        ]
        out[name] = (torch.cat(parts).float().cpu(), data.y[idx])
    return out


def finite(feats: dict[str, tuple[Tensor, Tensor]]) -> bool:
    return all(bool(torch.isfinite(f).all()) for f, _ in feats.values())


def evaluate(feats: dict[str, tuple[Tensor, Tensor]], num_classes: int, *, test: bool) -> dict:
    """Linear probe (selected on val) and kNN; the test split only when ``test``."""
    if not finite(feats):
        return {"val_acc": math.nan, "linear_acc": math.nan, "knn_acc": math.nan}
    res = linear_probe(feats["train"], feats["val"], feats["test"] if test else None)
    out = {"val_acc": res.val_acc, "probe_l2": res.l2}
    if test:
        out["linear_acc"] = res.test_acc
        out["knn_acc"] = knn_accuracy(feats["train"], feats["test"], num_classes=num_classes)
    return out


def run_cell(
    cfg: CellConfig,
    *,
    data: PreparedData | None = None,
    test: bool = True,
    on_epoch: EpochHook | None = None,
    progress: bool = True,
) -> dict:
    """Train one cell and evaluate it. Returns the DESIGN.md results row (minus ``suite``,
    ``tuned`` and ``sweep``, which the stage adds)."""
    device = default_device()
    if data is None:
        data = prepare_dataset(
            cfg.dataset, root=cfg.data_root, cache_dir=cfg.data_cache, **cfg.dataset_options
        )
    data = data.for_seed(cfg.seed)  # generated sets: the seed's own training draw
    seed_everything(cfg.seed)
    method = build_method(cfg, data, device)
    seconds, seen, diverged = fit(method, data, cfg, device, on_epoch=on_epoch, progress=progress)
    splits = ("train", "val", "test") if test else ("train", "val")
    feats = None if diverged else embed(method, data, device, splits)
    # non-finite features (a loss that stayed finite while the encoder blew up) are a
    # divergence too: the row says so instead of carrying NaN accuracies
    diverged = diverged or not finite(feats)
    metrics = (
        {"val_acc": math.nan, "linear_acc": math.nan, "knn_acc": math.nan}
        if diverged
        else evaluate(feats, data.num_classes, test=test)
    )
    batch_size = len(data.x) if getattr(method, "full_graph", False) else cfg.batch_size
    # the values the built objective uses (a method may fix its own, as CPC's critic does)
    hp = method.objective.hparams if method.objective is not None else {}
    temperature, margin = hp.get("temperature"), hp.get("margin")
    return {
        "method": cfg.method,
        "objective": cfg.objective,
        "dataset": cfg.dataset,
        "encoder": cfg.encoder,
        "batch_size": batch_size,
        "negatives": method.effective_negatives(batch_size),
        "seed": cfg.seed,
        "temperature": temperature,
        "margin": margin,
        "epochs": cfg.epochs if method.trains else 0,
        "linear_acc": metrics.get("linear_acc"),
        "knn_acc": metrics.get("knn_acc"),
        "val_acc": metrics["val_acc"],
        "train_seconds": round(seconds, 3),
        "views_per_second": round(seen * method.views / seconds, 1) if seconds else 0.0,
        "diverged": diverged,
        "config_hash": cfg.config_hash(),
        "code_digest": code_digest(cfg.method, cfg.objective),
    }
