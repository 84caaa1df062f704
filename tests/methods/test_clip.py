"""CLIP: the symmetric cross-entropy written by hand, and the learned, clamped temperature."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from benchmark.methods.base import Batch
from benchmark.train import CellConfig, build_method


def _clip(prepared, objective="infonce", temperature=None, **options):
    data = prepared(
        "mnist1d", num_train=700, num_val=150, num_test=150, paired_image=True, image_size=16
    )
    cfg = CellConfig(
        method="clip",
        objective=objective,
        dataset="mnist1d",
        encoder="cnn1d",
        batch_size=16,
        temperature=temperature,
        method_options=options,
    )
    torch.manual_seed(0)
    method = build_method(cfg, data, torch.device("cpu"))
    rows = torch.arange(16)
    return method, Batch(x=data.x[rows], y=data.y[rows], idx=rows, x2=data.x2[rows])


def _naive(method, batch, temperature: float) -> torch.Tensor:
    """Radford et al. 2021, Figure 3: logits = cos(I_i, T_j) / T, the mean of the
    cross-entropy over images (rows) and over texts (columns)."""
    torch.manual_seed(1)
    a = method.proj_a(method.encoder(method.augment(batch.x)))
    b = method.proj_b(method.tower_b(batch.x2))
    logits = F.normalize(a, dim=1) @ F.normalize(b, dim=1).T / temperature
    target = torch.arange(len(a))
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def _loss(method, batch):
    torch.manual_seed(1)
    return method.training_loss(batch)


@pytest.mark.parametrize("learn", [True, False])
def test_loss_is_the_symmetric_cross_entropy(prepared, learn):
    method, batch = _clip(prepared, temperature=0.2, learn_temperature=learn)
    method.train()
    assert (method.learned_temperature is not None) is learn
    torch.testing.assert_close(_loss(method, batch), _naive(method, batch, 0.2))


def test_temperature_is_log_parameterised_and_initialised_from_the_objective(prepared):
    method, batch = _clip(prepared, temperature=0.2)
    critic = method.temperature_critic
    assert critic.logit_scale.item() == pytest.approx(math.log(1 / 0.2))
    assert method.learned_temperature == pytest.approx(0.2)
    # a learned value other than the initial one is what the loss uses
    with torch.no_grad():
        critic.logit_scale.fill_(math.log(1 / 0.05))
    torch.testing.assert_close(_loss(method, batch), _naive(method, batch, 0.05))


def test_temperature_gets_a_gradient_and_moves(prepared):
    method, batch = _clip(prepared)
    critic = method.temperature_critic
    assert critic.logit_scale in set(method.parameters())
    before = critic.logit_scale.item()
    opt = torch.optim.SGD(method.parameters(), lr=0.1)
    loss = _loss(method, batch)
    loss.backward()
    assert critic.logit_scale.grad is not None and critic.logit_scale.grad.abs() > 0
    opt.step()
    method.after_step(0.1)
    assert critic.logit_scale.item() != before
    assert method.learned_temperature != pytest.approx(0.1)


def test_the_clamp_holds(prepared):
    method, batch = _clip(prepared)
    critic = method.temperature_critic
    with torch.no_grad():
        critic.logit_scale.fill_(math.log(1000.0))  # T = 0.001, beyond the clip
    # the loss already uses the clamped scale (T = 0.01), with no gradient beyond it
    torch.testing.assert_close(_loss(method, batch), _naive(method, batch, 0.01))
    _loss(method, batch).backward()
    assert critic.logit_scale.grad.item() == 0.0
    method.after_step(0.5)  # and the parameter itself is clipped after a step
    assert critic.logit_scale.item() == pytest.approx(math.log(100.0))
    assert method.learned_temperature == pytest.approx(0.01)


def test_objectives_without_temperature_have_none_to_learn(prepared):
    method, _ = _clip(prepared, objective="triplet")
    assert method.learned_temperature is None


def test_projection_is_linear_by_default(prepared):
    method, _ = _clip(prepared)
    assert isinstance(method.proj_a, torch.nn.Linear) and method.proj_a.bias is None
    assert not isinstance(_clip(prepared, projection="mlp")[0].proj_a, torch.nn.Linear)


def test_effective_negatives(prepared):
    method, _ = _clip(prepared)
    assert method.effective_negatives(64) == 63
    method.objective.num_negatives = 8
    assert method.effective_negatives(64) == 8


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"projection": "deep"}, "projection='deep' is not allowed; allowed: linear, mlp"),
        (
            {"learn_temperature": "yes"},
            "learn_temperature='yes' is not allowed; allowed: true or false",
        ),
        ({"proj_dim": 0}, "proj_dim=0 is not allowed; allowed: an integer >= 1"),
        ({"nope": 1}, "no option 'nope'.*allowed: learn_temperature, proj_dim"),
    ],
)
def test_bad_options_name_what_is_allowed(prepared, options, message):
    with pytest.raises(ValueError, match=message):
        _clip(prepared, **options)


def test_options_are_checked_before_building():
    from benchmark.methods.clip import CLIP

    with pytest.raises(ValueError, match="projection='deep'"):
        CLIP.check_options({**CLIP.option_defaults, "projection": "deep"})
