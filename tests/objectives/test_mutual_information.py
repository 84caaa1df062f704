"""Known answers: MI bounds on correlated Gaussians with the optimal critic.

x ~ N(0, I_d), y = rho x + sqrt(1 - rho^2) eps, so I(x; y) = -d/2 log(1 - rho^2). The
optimal critic is the true log density ratio log p(y|x) / p(y), given to the objectives as
a callable similarity. Positives are the diagonal pairs (x_i, y_i): labels = arange(N) for
both, with ``ref_embeddings = y``; the off-diagonal pairs are samples of p(x) p(y).
"""

from __future__ import annotations

import math

import pytest
import torch

from benchmark.objectives import build_objective


def correlated_gaussians(n, dim, mi, generator):
    rho = math.sqrt(1.0 - math.exp(-2.0 * mi / dim))
    x = torch.randn(n, dim, generator=generator, dtype=torch.float64)
    noise = torch.randn(n, dim, generator=generator, dtype=torch.float64)
    return x, rho * x + math.sqrt(1.0 - rho**2) * noise, rho


def log_density_ratio(rho, offset=0.0):
    """(x (N, d), y (M, d)) -> (N, M) offset + log p(y_j | x_i) - log p(y_j)."""
    s = 1.0 - rho**2

    def critic(x, y):
        yy = (y * y).sum(1)[None, :]
        xx = (x * x).sum(1)[:, None]
        conditional = -(yy - 2.0 * rho * (x @ y.T) + rho**2 * xx) / (2.0 * s)
        return offset + conditional + yy / 2.0 - x.shape[1] / 2.0 * math.log(s)

    return critic


def estimates(name, *, mi, dim, n, batches, seed, offset=0.0, **hp):
    """The bound -loss on ``batches`` independent batches."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(batches):
        x, y, rho = correlated_gaussians(n, dim, mi, g)
        labels = torch.arange(n)
        obj = build_objective(name, similarity=log_density_ratio(rho, offset), **hp)
        out.append(-obj(x, labels, y, labels).item())
    return torch.tensor(out, dtype=torch.float64)


def test_critic_is_the_log_density_ratio():
    """Sanity check of the test's own critic against a direct log-density computation."""
    g = torch.Generator().manual_seed(0)
    x, y, rho = correlated_gaussians(3, 2, 1.0, g)
    cond = torch.distributions.Normal(rho * x[:, None, :], math.sqrt(1 - rho**2))
    marg = torch.distributions.Normal(torch.zeros(()), torch.ones(()))
    want = cond.log_prob(y[None, :, :]).sum(-1) - marg.log_prob(y).sum(-1)[None, :]
    torch.testing.assert_close(log_density_ratio(rho)(x, y), want)


@pytest.mark.parametrize("dim", [2, 4])
def test_infonce_approaches_true_mi_well_below_log_n(dim):
    n, mi = 512, 1.0
    # the bound is log N - L (temperature 1, N - 1 negatives per anchor)
    bounds = math.log(n) + estimates(
        "infonce", mi=mi, dim=dim, n=n, batches=3, seed=dim, temperature=1.0
    )
    assert abs(bounds.mean().item() - mi) < 0.15
    assert (bounds - mi).abs().max() < 0.25


def test_infonce_saturates_at_log_n_when_mi_is_far_above():
    n, mi = 64, 10.0
    bounds = math.log(n) + estimates(
        "infonce", mi=mi, dim=10, n=n, batches=3, seed=1, temperature=1.0
    )
    assert (bounds <= math.log(n) + 1e-12).all()
    assert (bounds > math.log(n) - 0.5).all()
    assert (bounds < mi - 5).all()  # far below the truth: the log N ceiling


@pytest.mark.parametrize("mi", [1.0, 2.0])
def test_nwj_with_optimal_critic_is_unbiased(mi):
    values = estimates("nwj", mi=mi, dim=2, n=128, batches=20, seed=int(10 * mi), offset=1.0)
    se = values.std().item() / math.sqrt(len(values))
    assert se < 0.05  # precise enough for the check below to mean something
    assert abs(values.mean().item() - mi) < 3.5 * se


@pytest.mark.parametrize("mi", [1.0, 2.0])
def test_dv_with_optimal_critic_is_close(mi):
    values = estimates("dv", mi=mi, dim=2, n=256, batches=10, seed=int(20 * mi))
    assert abs(values.mean().item() - mi) < 0.08


def test_nwj_critic_offset_matters():
    """With T = log ratio instead of 1 + log ratio the NWJ bound drops by about e^-1."""
    with_offset = estimates("nwj", mi=1.0, dim=2, n=128, batches=10, seed=3, offset=1.0)
    without = estimates("nwj", mi=1.0, dim=2, n=128, batches=10, seed=3)
    assert (without - with_offset).mean().item() == pytest.approx(-math.exp(-1), abs=0.1)
