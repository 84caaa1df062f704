"""Gradient descent on raw embeddings lowers every objective and separates the classes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from benchmark.objectives import OBJECTIVES, build_objective


def cosine_gap(e: torch.Tensor, labels: torch.Tensor) -> float:
    """mean cosine similarity of positive pairs minus that of negative pairs."""
    s = F.normalize(e, dim=1) @ F.normalize(e, dim=1).T
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool)
    return (s[same & ~eye].mean() - s[~same].mean()).item()


@pytest.mark.parametrize("name", OBJECTIVES.names())
def test_gradient_descent_on_raw_embeddings(name):
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(4).repeat_interleave(8)
    e = (0.3 * torch.randn(32, 16, generator=g)).requires_grad_()
    obj = build_objective(name)
    opt = torch.optim.Adam([e], lr=0.02)
    with torch.no_grad():
        loss0, gap0 = obj(e, labels).item(), cosine_gap(e, labels)
    for _ in range(150):
        opt.zero_grad()
        loss = obj(e, labels)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(e.grad).all()
        opt.step()
    with torch.no_grad():
        loss1, gap1 = obj(e, labels).item(), cosine_gap(e, labels)
    assert loss1 < loss0 - 0.1 * abs(loss0), (loss0, loss1)
    assert gap1 > gap0 + 0.5 and gap1 > 0.5, (gap0, gap1)
