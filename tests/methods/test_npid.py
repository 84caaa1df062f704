"""NPID's memory bank, positives, noise draws and NCE normaliser against hand formulas."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from method_builders import batch_of, built  # tests/methods/ is on sys.path


def _npid(prepared, objective="nce", negatives=None, **options):
    return built(prepared, "npid", objective, negatives, **options)


_batch = batch_of


def _step_inputs(method, batch, seed):
    """The features and the draw of ``method.training_loss(batch)`` run after ``seed``."""
    torch.manual_seed(seed)
    v = method.projector(method.encoder(method.augment(batch.x)))
    return v, method.draw()


def _negatives(ids, drawn, k):
    """Anchor i's noise entries: the first K drawn entries that are not its own."""
    return [[d for d in drawn.tolist() if d != i][:k] for i in ids.tolist()]


def _nce(f, bank, ids, negs, tau, log_z=None):
    """Wu et al. 2018 eqs. 4-6 one anchor at a time: P(j|f) = exp(v_j.f/tau) / Z,
    h = P / (P + K/n); Z = n mean exp(s/tau) over this batch's pairs unless given."""
    n, k = len(bank), len(negs[0])
    f = F.normalize(f, dim=1)
    sims = [
        (f[a] @ bank[i] / tau, f[a] @ bank[negs[a]].T / tau) for a, i in enumerate(ids.tolist())
    ]
    if log_z is None:
        every = torch.cat([torch.cat([p[None], ng]) for p, ng in sims])
        log_z = torch.logsumexp(every, 0) - math.log(len(every))
    z = n * torch.exp(log_z)
    losses = []
    for s_pos, s_neg in sims:
        h_pos = (s_pos.exp() / z) / (s_pos.exp() / z + k / n)
        h_neg = (s_neg.exp() / z) / (s_neg.exp() / z + k / n)
        losses.append(-torch.log(h_pos) - torch.log(1 - h_neg).sum())
    return torch.stack(losses).mean(), log_z


def test_bank_update_is_the_renormalised_running_average(prepared):
    method, data = _npid(prepared, bank_momentum=0.3)
    ids = torch.tensor([4, 0, 9])
    old = method.bank.clone()
    f = torch.randn(3, method.bank.shape[1]) * 5
    method.update_bank(ids, f)
    mixed = 0.3 * old[ids] + 0.7 * f / f.norm(dim=1, keepdim=True)
    torch.testing.assert_close(method.bank[ids], mixed / mixed.norm(dim=1, keepdim=True))
    rest = torch.ones(len(old), dtype=torch.bool)
    rest[ids] = False
    assert torch.equal(method.bank[rest], old[rest])
    # the training step writes this step's features
    batch = _batch(data, [5, 6, 7])
    before = method.bank.clone()
    v, _ = _step_inputs(method, batch, 2)
    torch.manual_seed(2)
    method.training_loss(batch)
    mixed = 0.3 * before[batch.idx] + 0.7 * F.normalize(v.detach(), dim=1)
    torch.testing.assert_close(method.bank[batch.idx], F.normalize(mixed, dim=1))


def test_loss_is_the_paper_nce_with_the_own_entry_as_positive(prepared):
    method, data = _npid(prepared, bank_negatives=40)
    batch = _batch(data, torch.arange(16) * 7)
    bank = method.bank.clone()
    v, drawn = _step_inputs(method, batch, 5)
    tau = method.objective.hparams["temperature"]
    expected, _ = _nce(v, bank, batch.idx, _negatives(batch.idx, drawn, 40), tau)
    torch.manual_seed(5)
    torch.testing.assert_close(method.training_loss(batch), expected, rtol=1e-5, atol=1e-5)


def test_noise_is_k_uniform_entries_never_the_positive(prepared):
    method, _ = _npid(prepared, bank_negatives=64)
    n, k, draws = len(method.bank), 64, 3000
    ids = torch.tensor([0, 17, n - 1])
    counts = torch.zeros(len(ids), n)
    torch.manual_seed(123)
    for _ in range(draws):
        drawn = method.draw()
        mask = method.noise_mask(ids, drawn)
        assert mask.sum(1).tolist() == [k] * len(ids)  # exactly K, distinct entries
        for a in range(len(ids)):
            counts[a, drawn[mask[a]]] += 1
    for a, i in enumerate(ids.tolist()):
        assert counts[a, i] == 0  # never the positive
        others = torch.cat([counts[a, :i], counts[a, i + 1 :]])
        expected = draws * k / (n - 1)
        chi2 = ((others - expected) ** 2 / expected).sum()
        dof = n - 2
        assert abs(chi2 - dof) < 5 * math.sqrt(2 * dof), (chi2, dof)  # uniform


def test_z_is_fixed_after_the_first_batch(prepared):
    method, data = _npid(prepared, bank_negatives=40)
    tau = method.objective.hparams["temperature"]
    assert torch.isnan(method.log_z)
    first, second = _batch(data, torch.arange(16)), _batch(data, torch.arange(16, 32))
    bank = method.bank.clone()
    v, drawn = _step_inputs(method, first, 1)
    _, log_z = _nce(v, bank, first.idx, _negatives(first.idx, drawn, 40), tau)
    torch.manual_seed(1)
    method.training_loss(first)
    torch.testing.assert_close(method.log_z, log_z)
    bank = method.bank.clone()
    v, drawn = _step_inputs(method, second, 2)
    negs = _negatives(second.idx, drawn, 40)
    torch.manual_seed(2)
    got = method.training_loss(second)
    torch.testing.assert_close(method.log_z, log_z)  # kept
    fixed, _ = _nce(v, bank, second.idx, negs, tau, log_z)
    reestimated, _ = _nce(v, bank, second.idx, negs, tau)
    torch.testing.assert_close(got, fixed, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(got, reestimated)


def test_batch_normalizer_and_the_first_batch_agree_with_the_registered_nce(prepared):
    """The fixed-Z loss is the ``nce`` objective's own formula with Z held: on the first
    batch (Z = its own estimate) both are equal, and ``nce_normalizer: batch`` is it."""
    for normalizer in ("fixed", "batch"):
        method, data = _npid(prepared, bank_negatives=40, nce_normalizer=normalizer)
        for step in range(2):
            batch = _batch(data, torch.arange(16) + 16 * step)
            v, drawn = _step_inputs(method, batch, step)
            pos = torch.zeros(16, 16 + len(drawn), dtype=torch.bool)
            pos[:, :16] = torch.eye(16, dtype=torch.bool)
            neg = torch.zeros_like(pos)
            neg[:, 16:] = method.noise_mask(batch.idx, drawn)
            cands = method.bank[torch.cat([batch.idx, drawn])]
            pairs = method.objective.masked_pairs(v, cands, pos, neg)
            registered = method.objective.spec.reduce(pairs, **method.objective.hparams)
            torch.manual_seed(step)
            got = method.training_loss(batch)
            if normalizer == "batch" or step == 0:
                torch.testing.assert_close(got, registered, rtol=1e-5, atol=1e-5)
        assert torch.isnan(method.log_z) == (normalizer == "batch")


def test_other_objectives_see_the_same_candidates(prepared):
    method, data = _npid(prepared, objective="infonce", bank_negatives=30)
    batch = _batch(data, torch.arange(16) * 5)
    bank = method.bank.clone()
    v, drawn = _step_inputs(method, batch, 9)
    tau = method.objective.hparams["temperature"]
    negs = _negatives(batch.idx, drawn, 30)
    losses = []
    for a, i in enumerate(batch.idx.tolist()):
        logits = F.cosine_similarity(v[a][None], bank[[i, *negs[a]]]) / tau
        losses.append(-torch.log_softmax(logits, 0)[0])
    torch.manual_seed(9)
    got = method.training_loss(batch)
    torch.testing.assert_close(got, torch.stack(losses).mean(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"bank_negatives": 0}, "option bank_negatives=0 is not allowed; allowed: an integer >= 1"),
        (
            {"bank_negatives": 1.5},
            "option bank_negatives=1.5 is not allowed; allowed: an integer >= 1",
        ),
        (
            {"bank_momentum": 1},
            r"option bank_momentum=1 is not allowed; allowed: a number in \[0, 1\)",
        ),
        (
            {"nce_normalizer": "z"},
            "option nce_normalizer='z' is not allowed; allowed: fixed, batch",
        ),
        ({"batch_negatives": 1}, "option batch_negatives=1 is not allowed; allowed: true or false"),
    ],
)
def test_bad_options_raise_one_line_errors(prepared, options, message):
    with pytest.raises(ValueError, match="^method 'npid': " + message + "$"):
        _npid(prepared, **options)


def test_effective_negatives(prepared):
    method, _ = _npid(prepared, bank_negatives=100)
    n = len(method.bank)
    assert method.effective_negatives(64) == 100
    assert (
        _npid(prepared, bank_negatives=100, batch_negatives=True)[0].effective_negatives(64) == 163
    )
    assert _npid(prepared, bank_negatives=10**6)[0].effective_negatives(64) == n - 1
    assert _npid(prepared, negatives=16, bank_negatives=100)[0].effective_negatives(64) == 16
