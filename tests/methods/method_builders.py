"""What the method tests share: a method built on digits (mlp) in train mode, seeded."""

from __future__ import annotations

import torch

from benchmark.methods.base import Batch
from benchmark.train import CellConfig, build_method


def built(prepared, method: str, objective: str, negatives=None, **options):
    """(the method, the data): ``method`` with ``objective`` on digits, mlp, batch 16."""
    data = prepared("digits")
    cfg = CellConfig(
        method=method,
        objective=objective,
        dataset="digits",
        encoder="mlp",
        batch_size=16,
        negatives=negatives,
        epochs=1,
        method_options=options,
    )
    torch.manual_seed(0)
    module = build_method(cfg, data, torch.device("cpu"))
    module.train()
    return module, data


def batch_of(data, ids) -> Batch:
    ids = torch.as_tensor(ids)
    return Batch(x=data.x[ids], y=data.y[ids], idx=ids)
