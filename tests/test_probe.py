"""The frozen-feature probes: the hand-written gradient is autograd's, and both probes
recover structure that is there."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from benchmark.probe import _loss_and_grad, knn_accuracy, linear_probe


def test_logreg_gradient_matches_autograd():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(50, 7, generator=g), torch.randint(0, 4, (50,), generator=g)
    w = torch.randn(8, 4, generator=g)
    loss = _loss_and_grad(w, x, x.T.contiguous(), F.one_hot(y, 4).float().T.contiguous(), 0.3)
    ref_w = w.clone().requires_grad_(True)
    ref = F.cross_entropy(x @ ref_w[:-1] + ref_w[-1], y) + 0.15 * ref_w[:-1].pow(2).sum()
    ref.backward()
    torch.testing.assert_close(loss, ref.detach())
    torch.testing.assert_close(w.grad, ref_w.grad)


def _blobs(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    centers = torch.tensor([[4.0, 0, 0, 0], [0, 4.0, 0, 0], [0, 0, 4.0, 0]])
    return centers[y] + torch.randn(n, 4, generator=g), y


def test_probes_separate_separable_classes():
    train, val, test = _blobs(300, 0), _blobs(90, 1), _blobs(90, 2)
    result = linear_probe(train, val, test)
    assert result.val_acc > 0.95 and result.test_acc > 0.95
    assert result.l2 in (1e-1, 1e-2, 1e-3, 1e-4)
    assert knn_accuracy(train, test) > 0.95


def test_probe_on_noise_is_near_chance():
    g = torch.Generator().manual_seed(3)
    train = (torch.randn(300, 16, generator=g), torch.randint(0, 3, (300,), generator=g))
    val = (torch.randn(300, 16, generator=g), torch.randint(0, 3, (300,), generator=g))
    test = (torch.randn(300, 16, generator=g), torch.randint(0, 3, (300,), generator=g))
    assert linear_probe(train, val, test).test_acc < 0.5
