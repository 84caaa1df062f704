"""The contract every registered objective keeps (parametrized over ``OBJECTIVES.names()``)."""

from __future__ import annotations

import math

import pytest
import torch

from benchmark.objectives import OBJECTIVES, build_objective, keep_k_negatives

NAMES = OBJECTIVES.names()
WITH_TEMPERATURE = [n for n in NAMES if "temperature" in OBJECTIVES.get(n).hyperparameters]
WITH_MARGIN = [n for n in NAMES if "margin" in OBJECTIVES.get(n).hyperparameters]

# Documented stop-gradients: the analytic gradient deliberately differs from the
# numerical one (the naive test checks it against the formula with the quantity frozen).
STOP_GRADIENT = {"nce": "the partition estimate Z is a constant (Wu et al. 2018)"}

# Objectives whose loss contains exp(score) outside a log: for scores beyond
# log(finfo.max) the exact value is not representable, so +inf is the right answer.
EXP_OF_SCORE = {"nwj": "-I_NWJ = -mean T + e^-1 mean exp(T)"}

# Objectives that average over anchors with a positive (an anchor without one adds nothing).
ANCHOR_AVERAGED = {"infonce", "ntxent", "npair", "triplet"}


def batch(seed=0, classes=4, per_class=3, dim=5, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(classes * per_class, dim, generator=g, dtype=dtype)
    labels = torch.arange(classes).repeat_interleave(per_class)
    return x, labels


def ref_batch(seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed + 100)
    x = torch.randn(5, 4, generator=g, dtype=dtype)
    y = torch.randn(9, 4, generator=g, dtype=dtype)
    labels = torch.tensor([0, 1, 2, 1, 3])
    ref_labels = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3, 4])
    return x, labels, y, ref_labels


def loss_and_grads(obj, x, labels, y=None, y_labels=None):
    x = x.detach().clone().requires_grad_()
    inputs = [x]
    if y is not None:
        y = y.detach().clone().requires_grad_()
        inputs.append(y)
    loss = obj(x, labels, y, y_labels)
    grads = torch.autograd.grad(loss, inputs, allow_unused=True)
    return loss, grads


def assert_finite(loss, grads):
    assert torch.isfinite(loss), loss
    for g in grads:
        assert g is not None and torch.isfinite(g).all()


@pytest.mark.parametrize("name", NAMES)
def test_scalar_output_and_finite_gradients(name):
    obj = build_objective(name)
    for dtype in (torch.float32, torch.float64):
        x, labels = batch(dtype=dtype)
        loss, grads = loss_and_grads(obj, x, labels)
        assert loss.shape == () and loss.dtype == dtype
        assert_finite(loss, grads)
        assert grads[0].abs().sum() > 0
        loss, grads = loss_and_grads(obj, *ref_batch(dtype=dtype))
        assert loss.shape == ()
        assert_finite(loss, grads)


@pytest.mark.parametrize("name", NAMES)
def test_gradcheck(name):
    obj = build_objective(name)
    x, labels = batch(seed=1, classes=3, per_class=2, dim=4)
    x.requires_grad_()
    rx, rl, ry, rrl = ref_batch(seed=1)
    rx.requires_grad_()
    ry.requires_grad_()
    cases = [
        (lambda a: obj(a, labels), (x,)),
        (lambda a, b: obj(a, rl, b, rrl), (rx, ry)),
    ]
    for fn, inputs in cases:
        ok = torch.autograd.gradcheck(
            fn, inputs, eps=1e-6, atol=1e-6, rtol=1e-4, raise_exception=name not in STOP_GRADIENT
        )
        # a documented stop-gradient must really be there (else update the docstring)
        assert ok == (name not in STOP_GRADIENT)


@pytest.mark.parametrize("name", NAMES)
def test_permutation_invariance(name):
    obj = build_objective(name)
    x, labels = batch(seed=2)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(obj(x[perm], labels[perm]), obj(x, labels), rtol=1e-10, atol=1e-12)
    rx, rl, ry, rrl = ref_batch(seed=2)
    pa = torch.randperm(len(rx), generator=torch.Generator().manual_seed(1))
    pc = torch.randperm(len(ry), generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(
        obj(rx[pa], rl[pa], ry[pc], rrl[pc]), obj(rx, rl, ry, rrl), rtol=1e-10, atol=1e-12
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", NAMES)
def test_self_scores_are_ignored(name, dtype):
    """A sample is never paired with itself: its score, even overflowing, changes nothing."""
    x, labels = batch(seed=9, dtype=dtype)

    def critic(diagonal):
        def scores(a, b):
            return a @ b.T + diagonal * torch.eye(len(a), dtype=a.dtype)

        return scores

    loss, grads = loss_and_grads(build_objective(name, similarity=critic(0.0)), x, labels)
    huge = 1e4 if dtype == torch.float64 else 1e3  # exp overflows in both
    loss_h, grads_h = loss_and_grads(build_objective(name, similarity=critic(huge)), x, labels)
    assert_finite(loss_h, grads_h)
    torch.testing.assert_close(loss_h, loss)
    torch.testing.assert_close(grads_h[0], grads[0])


@pytest.mark.parametrize("name", NAMES)
def test_anchor_without_positive(name):
    obj = build_objective(name)
    x, labels = batch(seed=3)
    labels = labels.clone()
    labels[-1] = 99  # alone in its class
    assert_finite(*loss_and_grads(obj, x, labels))
    rx, rl, ry, rrl = ref_batch(seed=3)
    rl = rl.clone()
    rl[0] = 42  # absent from the candidates
    assert_finite(*loss_and_grads(obj, rx, rl, ry, rrl))


@pytest.mark.parametrize("name", sorted(ANCHOR_AVERAGED & set(NAMES)))
def test_anchor_without_positive_contributes_zero(name):
    hp = {"l2_reg": 0.0} if "l2_reg" in OBJECTIVES.get(name).hyperparameters else {}
    obj = build_objective(name, **hp)
    rx, rl, ry, rrl = ref_batch(seed=4)
    extra = torch.randn(1, rx.shape[1], dtype=rx.dtype, generator=torch.Generator().manual_seed(5))
    with_extra = obj(torch.cat([rx, extra]), torch.cat([rl, torch.tensor([42])]), ry, rrl)
    torch.testing.assert_close(with_extra, obj(rx, rl, ry, rrl), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_no_positive_or_no_negative_raises(name):
    obj = build_objective(name)
    x, _ = batch(seed=4)
    with pytest.raises(ValueError, match="no positive"):
        obj(x, torch.arange(len(x)))
    with pytest.raises(ValueError, match="no negative"):
        obj(x, torch.zeros(len(x), dtype=torch.long))
    with pytest.raises(ValueError, match="no positive"):
        obj(x[:4], torch.tensor([0, 1, 2, 3]), x[4:], torch.full((len(x) - 4,), 7))
    with pytest.raises(ValueError, match="no negative"):
        obj(x[:4], torch.zeros(4, dtype=torch.long), x[4:], torch.zeros(len(x) - 4).long())


@pytest.mark.parametrize("name", NAMES)
def test_bad_arguments_raise(name):
    with pytest.raises(ValueError, match="no hyperparameter"):
        build_objective(name, not_a_hyperparameter=1.0)
    with pytest.raises(ValueError, match="unknown similarity"):
        build_objective(name, similarity="manhattan")
    with pytest.raises(ValueError, match="num_negatives"):
        build_objective(name, num_negatives=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("temperature", [1e-3, 1e3])
@pytest.mark.parametrize("name", WITH_TEMPERATURE)
def test_extreme_temperature(name, temperature, dtype):
    obj = build_objective(name, temperature=temperature)
    x, labels = batch(seed=5, dtype=dtype)
    assert_finite(*loss_and_grads(obj, x, labels))
    assert_finite(*loss_and_grads(obj, *ref_batch(seed=5, dtype=dtype)))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("margin", [1e-3, 1e3])
@pytest.mark.parametrize("name", WITH_MARGIN)
def test_extreme_margin(name, margin, dtype):
    obj = build_objective(name, margin=margin)
    x, labels = batch(seed=6, dtype=dtype)
    assert_finite(*loss_and_grads(obj, x, labels))
    assert_finite(*loss_and_grads(obj, *ref_batch(seed=6, dtype=dtype)))


def scale_invariant(obj) -> bool:
    return obj.normalize or obj.metric == "cosine"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", NAMES)
def test_large_embedding_scale(name, dtype):
    obj = build_objective(name)
    x, labels = batch(seed=7, dtype=dtype)
    rx, rl, ry, rrl = ref_batch(seed=7, dtype=dtype)
    if name in EXP_OF_SCORE:
        # finite while the largest score keeps exp(score) representable ...
        fit = (0.9 * math.log(torch.finfo(dtype).max) / (x @ x.T).abs().max()).sqrt()
        assert_finite(*loss_and_grads(obj, x * fit, labels))
        # ... and beyond that the exact loss is +inf: never NaN
        assert obj(x * 1e3, labels).item() == math.inf
        return
    for scale in (1e3, 1e-3):
        assert_finite(*loss_and_grads(obj, x * scale, labels))
        assert_finite(*loss_and_grads(obj, rx * scale, rl, ry * scale, rrl))
        if scale_invariant(obj):
            tol = 1e-4 if dtype == torch.float32 else 1e-10
            torch.testing.assert_close(obj(x * scale, labels), obj(x, labels), rtol=tol, atol=tol)


@pytest.mark.parametrize("k", [1, 3, 8, 100])
@pytest.mark.parametrize("name", NAMES)
def test_num_negatives(name, k):
    obj = build_objective(name, num_negatives=k)
    x, labels = batch(seed=8)
    rx, rl, ry, rrl = ref_batch(seed=8)
    with torch.random.fork_rng():  # keep_k_negatives draws from the global generator
        torch.manual_seed(0)
        check_num_negatives(obj, k, (x, labels), (rx, rl, ry, rrl))
    # keeping at least every available negative changes nothing
    full = build_objective(name)
    if k >= len(x):
        torch.testing.assert_close(obj(x, labels), full(x, labels), rtol=1e-12, atol=1e-12)


def check_num_negatives(obj, k, batch_args, ref_args):
    for args, same in ((batch_args, True), (ref_args, False)):
        assert_finite(*loss_and_grads(obj, *args))
        pairs = obj.pairs(*args)
        anchor_labels, cand_labels = args[1], args[1] if same else args[3]
        available = (anchor_labels[:, None] != cand_labels[None, :]).sum(1)
        assert torch.equal(pairs.neg.sum(1), available.clamp_max(k))
        assert not (pairs.neg & pairs.pos).any()
        assert not (pairs.neg & (anchor_labels[:, None] == cand_labels[None, :])).any()
        if same:
            assert not pairs.neg.diagonal().any() and not pairs.pos.diagonal().any()


def test_keep_k_negatives_exact_and_uniform():
    g = torch.Generator().manual_seed(0)
    labels = torch.tensor([0, 0, 0, 1, 1, 2, 3, 3, 3, 3])
    neg = labels[:, None] != labels[None, :]
    for k in (1, 2, 5, 6, 7, 9, 10, 50):
        kept = keep_k_negatives(neg, k, generator=g)
        assert kept.dtype == torch.bool and kept.shape == neg.shape
        assert torch.equal(kept.sum(1), neg.sum(1).clamp_max(k))
        assert not (kept & ~neg).any()
    # each negative is drawn with probability k / available
    counts = torch.zeros(neg.shape)
    draws = 2000
    for _ in range(draws):
        counts += keep_k_negatives(neg, 3, generator=g)
    freq = counts / draws
    expected = (3 / neg.sum(1, keepdim=True).float()).clamp_max(1.0).expand_as(freq)
    assert torch.allclose(freq[neg], expected[neg], atol=0.05)
    assert (freq[~neg] == 0).all()
    for k in (0, -1):
        with pytest.raises(ValueError):
            keep_k_negatives(neg, k)
