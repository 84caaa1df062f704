"""BYOL's target, momentum schedule, symmetric loss and predictor against the paper."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from benchmark.methods.base import Batch
from benchmark.train import CellConfig, build_method


def _byol(prepared, **options):
    data = prepared("digits")
    cfg = CellConfig(
        method="byol", dataset="digits", encoder="mlp", batch_size=32, method_options=options
    )
    torch.manual_seed(0)
    method = build_method(cfg, data, torch.device("cpu"))
    method.train()
    return method, data


def _perturb(module):
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn_like(p))


def test_target_gets_no_gradient(prepared):
    method, data = _byol(prepared)
    online = list(method.encoder.parameters()) + list(method.projector.parameters())
    target = list(method.target.parameters())
    assert not {id(p) for p in target} & {id(p) for p in method.parameters() if p.requires_grad}
    x = data.x[:32]
    loss = method.loss(x, x.flip(0))
    loss.backward()
    assert all(not p.requires_grad and p.grad is None for p in target)
    assert all(p.grad is not None for p in online)


def test_momentum_follows_the_cosine_schedule(prepared):
    method, _ = _byol(prepared, momentum=0.9)
    online = nn.Sequential(method.encoder, method.projector)
    for progress in (0.0, 0.1, 0.25, 0.5, 0.8, 1.0):
        tau = 1 - (1 - 0.9) * (math.cos(math.pi * progress) + 1) / 2
        assert method.target_momentum(progress) == pytest.approx(tau, abs=1e-12)
        _perturb(method.target)
        before = [p.clone() for p in method.target.parameters()]
        method.after_step(progress)
        after = method.target.parameters()
        for old, new, o in zip(before, after, online.parameters(), strict=True):
            torch.testing.assert_close(new, tau * old + (1 - tau) * o)
    assert method.target_momentum(0.0) == pytest.approx(0.9)
    assert method.target_momentum(1.0) == pytest.approx(1.0)


def test_loss_is_symmetric_in_the_two_views(prepared):
    method, data = _byol(prepared)
    _perturb(method.target)  # target != online, so the two directions differ
    x = data.x[:32]
    v1, v2 = method.augment(x), method.augment(x)
    got = method.loss(v1, v2)
    torch.testing.assert_close(method.loss(v2, v1), got, rtol=1e-6, atol=1e-6)

    def online(v):
        return method.predictor(method.projector(method.encoder(v)))

    with torch.no_grad():
        z1, z2 = method.target(v1), method.target(v2)
    # ||p~ - z'~||^2, view 1 predicting view 2's target and back, averaged
    d12 = (F.normalize(online(v1), dim=1) - F.normalize(z2, dim=1)).pow(2).sum(1).mean()
    d21 = (F.normalize(online(v2), dim=1) - F.normalize(z1, dim=1)).pow(2).sum(1).mean()
    torch.testing.assert_close(got, (d12 + d21) / 2, rtol=1e-5, atol=1e-5)
    # the training step is this loss of two augmented views
    batch = Batch(x=x, y=data.y[:32], idx=torch.arange(32))
    torch.manual_seed(4)
    step = method.training_loss(batch)
    torch.manual_seed(4)
    torch.testing.assert_close(step, method.loss(method.augment(x), method.augment(x)))


def test_only_the_online_branch_has_the_predictor(prepared):
    method, data = _byol(prepared)
    predictor = {id(p) for p in method.predictor.parameters()}
    target = list(method.target.parameters())
    n_online = sum(p.numel() for m in (method.encoder, method.projector) for p in m.parameters())
    assert sum(p.numel() for p in target) == n_online
    assert not predictor & {id(p) for p in target}
    x = data.x[:32]
    assert method.target(x).shape == method.projector(method.encoder(x)).shape
    method.loss(x, x.flip(0)).backward()
    assert all(p.grad is not None for p in method.predictor.parameters())


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"momentum": 1.0}, r"option momentum=1.0 is not allowed; allowed: a number in \[0, 1\)"),
        ({"proj_dim": 0}, "option proj_dim=0 is not allowed; allowed: an integer >= 1"),
    ],
)
def test_bad_options_raise_one_line_errors(prepared, options, message):
    with pytest.raises(ValueError, match="^method 'byol': " + message + "$"):
        _byol(prepared, **options)
