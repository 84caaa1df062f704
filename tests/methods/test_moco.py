"""MoCo's mechanisms against hand-written references: EMA, queue, negatives, Shuffling BN."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from method_builders import batch_of, built  # tests/methods/ is on sys.path
from torch import nn

from benchmark.methods.moco import in_groups


def _moco(prepared, negatives=None, **options):
    return built(prepared, "moco", "infonce", negatives, **options)


_batch = batch_of


def _infonce(q, k, queue, queue_ids, ids, tau, batch_negatives=False):
    """The paper's logits [l_pos, l_neg] per query, written one anchor at a time: its own
    key, then the queue without the keys of its own instance (and the batch's other keys)."""
    losses = []
    for i in range(len(q)):
        cands = [k[i]] + [queue[j] for j in range(len(queue)) if queue_ids[j] != ids[i]]
        if batch_negatives:
            cands += [k[j] for j in range(len(k)) if j != i]
        logits = F.cosine_similarity(q[i][None], torch.stack(cands)) / tau
        losses.append(-torch.log_softmax(logits, 0)[0])
    return torch.stack(losses).mean()


def _fill_queue(method, ids):
    torch.manual_seed(3)
    method.queue.copy_(F.normalize(torch.randn_like(method.queue), dim=1))
    method.queue_ids.copy_(torch.as_tensor(ids))


def test_ema_update_is_m_key_plus_one_minus_m_query(prepared):
    method, _ = _moco(prepared, momentum=0.9)
    online = nn.Sequential(method.encoder, method.projector)
    with torch.no_grad():
        for p in method.key_encoder.parameters():
            p.add_(torch.randn_like(p))
    before = [p.clone() for p in method.key_encoder.parameters()]
    method.after_step(0.5)
    for old, new, q in zip(
        before, method.key_encoder.parameters(), online.parameters(), strict=True
    ):
        torch.testing.assert_close(new, 0.9 * old + 0.1 * q)


def test_queue_is_a_ring_buffer_of_the_last_k_keys_with_their_ids(prepared):
    method, data = _moco(prepared, queue_size=5, proj_dim=4)
    assert method.queue_ids.tolist() == [-1] * 5  # the random initial keys have no owner
    keys = F.normalize(torch.randn(11, 4), dim=1)
    ids = torch.arange(100, 111)
    method._enqueue(keys[:3], ids[:3])
    method._enqueue(keys[3:6], ids[3:6])  # wraps: slots 3, 4, 0
    assert method.queue_ids.tolist() == [105, 101, 102, 103, 104]
    torch.testing.assert_close(method.queue[[1, 2, 3, 4, 0]], keys[1:6])
    method._enqueue(keys[4:11], ids[4:11])  # larger than K: its last 5, oldest first
    got = torch.cat([method.queue[method.queue_ptr :], method.queue[: method.queue_ptr]])
    torch.testing.assert_close(got, keys[6:11])
    assert int(method.queue_ptr) == 1
    # the training step enqueues the batch's keys under the batch's instance ids
    method.training_loss(_batch(data, [7, 8, 9]))
    assert method.queue_ids.tolist()[1:4] == [7, 8, 9]


@pytest.mark.parametrize("batch_negatives", [False, True])
def test_own_stale_key_is_never_a_negative(prepared, batch_negatives):
    method, _ = _moco(prepared, queue_size=8, proj_dim=4, batch_negatives=batch_negatives)
    ids = torch.tensor([3, 5, 2, 9])
    _fill_queue(method, [-1, 2, 7, 3, 3, -1, 11, 5])  # anchors 3, 5, 2 meet own keys
    q, k = torch.randn(4, 4), F.normalize(torch.randn(4, 4), dim=1)
    tau = method.objective.hparams["temperature"]
    got = method.contrast(q, k, ids)
    args = (q, k, method.queue, method.queue_ids, ids, tau, batch_negatives)
    torch.testing.assert_close(got, _infonce(*args))
    # the stale keys matter: counting them as negatives gives another loss
    naive = _infonce(q, k, method.queue, torch.full((8,), -1), ids, tau, batch_negatives)
    assert not torch.allclose(got, naive)


def test_training_step_excludes_the_keys_of_an_earlier_step(prepared):
    """End to end: the second step on the same samples finds their first keys queued."""
    method, data = _moco(prepared, queue_size=64, shuffle_bn_groups=1)
    batch = _batch(data, torch.arange(16) * 3)
    method.training_loss(batch)
    assert set(method.queue_ids[:16].tolist()) == set(batch.idx.tolist())
    queue, queue_ids = method.queue.clone(), method.queue_ids.clone()
    torch.manual_seed(7)
    got = method.training_loss(batch)
    torch.manual_seed(7)
    q, k = method.encode(method.augment(batch.x), method.augment(batch.x))
    tau = method.objective.hparams["temperature"]
    expected = _infonce(q, k, queue, queue_ids, batch.idx, tau)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_default_negatives_are_the_queue_only(prepared):
    method, _ = _moco(prepared, queue_size=6, proj_dim=4)
    assert method.batch_negatives is False
    _fill_queue(method, [-1] * 6)
    q, k = torch.randn(4, 4), F.normalize(torch.randn(4, 4), dim=1)
    got = method.contrast(q, k, torch.arange(4))
    # the other keys of the batch do not enter: the batch's loss is the mean of the
    # queries' losses computed one at a time
    alone = [method.contrast(q[i : i + 1], k[i : i + 1], torch.tensor([i])) for i in range(4)]
    torch.testing.assert_close(got, torch.stack(alone).mean())
    tau = method.objective.hparams["temperature"]
    torch.testing.assert_close(got, _infonce(q, k, method.queue, method.queue_ids, range(4), tau))


def test_num_negatives_are_drawn_from_the_allowed_candidates(prepared, monkeypatch):
    method, _ = _moco(prepared, negatives=3, queue_size=8, proj_dim=4)
    seen = {}
    spec = method.objective.spec

    def spy(pairs, **hparams):
        seen["pairs"] = pairs
        return spec.reduce(pairs, **hparams)

    monkeypatch.setattr(method.objective, "spec", dataclasses.replace(spec, reduce=spy))
    _fill_queue(method, [0, 0, 0, 0, 0, 0, 1, 2])  # anchor 0 may use only slots 6 and 7
    method.contrast(torch.randn(3, 4), F.normalize(torch.randn(3, 4), dim=1), torch.arange(3))
    neg = seen["pairs"].neg
    assert neg[0].nonzero().flatten().tolist() == [3 + 6, 3 + 7]
    assert neg[1:].sum(1).tolist() == [3, 3] and not neg[:, :3].any()
    assert not (neg & seen["pairs"].pos).any()


def test_key_branch_gets_no_gradient(prepared):
    method, data = _moco(prepared)
    x = data.x[:32].clone().requires_grad_()  # a graph into the key would show in k
    q, k = method.encode(x, x)
    assert q.requires_grad and not k.requires_grad
    loss = method.training_loss(_batch(data, range(32)))
    loss.backward()
    assert all(not p.requires_grad and p.grad is None for p in method.key_encoder.parameters())
    assert all(p.grad is not None for p in method.projector.parameters())
    assert not method.queue.requires_grad and method.queue.grad_fn is None


def test_shuffling_bn_normalises_each_key_group_with_its_own_statistics(prepared):
    method, data = _moco(prepared, shuffle_bn_groups=4)
    assert [method.groups(b) for b in (16, 32, 64, 256)] == [1, 2, 4, 4]
    x = data.x[:64]
    bn = next(m for m in method.key_encoder.modules() if isinstance(m, nn.BatchNorm1d))
    calls = []
    hook = bn.register_forward_hook(lambda m, i, out: calls.append(out.detach().clone()))
    torch.manual_seed(11)
    q, k = method.encode(x, x)
    hook.remove()
    # four key groups of 16, each normalised by its own mean and variance
    assert [len(c) for c in calls] == [16] * 4
    for c in calls:
        torch.testing.assert_close(c.mean(0), torch.zeros(c.shape[1]), atol=1e-5, rtol=0)
    # the groups are a random permutation of the batch, keys returned in batch order
    torch.manual_seed(11)
    order = torch.randperm(64)
    expected = torch.empty_like(k)
    with torch.no_grad():
        for chunk in order.tensor_split(4):
            expected[chunk] = F.normalize(method.key_encoder(x[chunk]), dim=1)
        unshuffled = F.normalize(method.key_encoder(x), dim=1)
        query_net = nn.Sequential(method.encoder, method.projector)
        queries = torch.cat([query_net(chunk) for chunk in x.tensor_split(4)])
    torch.testing.assert_close(k, expected)
    assert (k - unshuffled).abs().max() > 1e-3  # the whole batch's statistics differ
    torch.testing.assert_close(q, queries)  # the queries: contiguous groups (the "GPUs")
    # without BN the grouping changes nothing
    lin = nn.Linear(x[0].numel(), 3)
    torch.testing.assert_close(in_groups(lin, x.flatten(1), 4, order), lin(x.flatten(1)))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"queue_size": 0}, "option queue_size=0 is not allowed; allowed: an integer >= 1"),
        ({"queue_size": -4}, "option queue_size=-4 is not allowed; allowed: an integer >= 1"),
        ({"queue_size": 2.5}, "option queue_size=2.5 is not allowed; allowed: an integer >= 1"),
        ({"momentum": 1.0}, r"option momentum=1.0 is not allowed; allowed: a number in \[0, 1\)"),
        ({"momentum": -0.1}, r"option momentum=-0.1 is not allowed; allowed: a number in \[0, 1\)"),
        (
            {"shuffle_bn_groups": 0},
            "option shuffle_bn_groups=0 is not allowed; allowed: an integer >= 1",
        ),
        (
            {"batch_negatives": "yes"},
            "option batch_negatives='yes' is not allowed; allowed: true or false",
        ),
    ],
)
def test_bad_options_raise_one_line_errors(prepared, options, message):
    with pytest.raises(ValueError, match="^method 'moco': " + message + "$"):
        _moco(prepared, **options)


def test_effective_negatives(prepared):
    assert _moco(prepared, queue_size=100)[0].effective_negatives(64) == 100
    assert _moco(prepared, queue_size=100, batch_negatives=True)[0].effective_negatives(64) == 163
    assert _moco(prepared, negatives=16, queue_size=100)[0].effective_negatives(64) == 16
