"""CPC against van den Oord et al. 2018 written naively: eq. 4 with the log-bilinear
critic, targets aligned with the context, horizons whose receptive fields do not overlap
the context's, features from the context network; and its options."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from benchmark.methods.base import Batch
from benchmark.methods.cpc import CPC, conv_geometry
from benchmark.train import CellConfig, build_method

# cnn1d on mnist1d: receptive field 17 samples, stride 4, 10 steps, so the first horizon
# whose target window is disjoint from the context's last window is ceil(17 / 4) = 5
KS = (5, 6, 7)
B = 16


def _cpc(prepared, objective="infonce", **options):
    data = prepared("mnist1d", num_train=700, num_val=150, num_test=150)
    cfg = CellConfig(
        method="cpc",
        objective=objective,
        dataset="mnist1d",
        encoder="cnn1d",
        batch_size=B,
        epochs=1,
        method_options=options,
    )
    torch.manual_seed(0)
    method = build_method(cfg, data, torch.device("cpu"))
    return method, Batch(x=data.x[:B], y=data.y[:B], idx=torch.arange(B))


class _Recorder(nn.Module):
    """Wraps an objective: records every call's arguments and its score matrix (through
    ``forward`` or ``pairs``, which CPC's own NCE normaliser reads)."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.calls = inner, []
        self.hparams = inner.hparams

    def pairs(self, emb, labels, ref, ref_labels):
        pairs = self.inner.pairs(emb, labels, ref, ref_labels)
        self.calls.append((emb.detach(), labels, ref.detach(), ref_labels, pairs.sim.detach()))
        return pairs

    def forward(self, emb, labels, ref, ref_labels):
        return self.inner.spec.reduce(self.pairs(emb, labels, ref, ref_labels), **self.hparams)


def _recording_augment(method):
    """A random augmentation (fresh noise each call) that keeps its outputs."""
    outputs = []

    def aug(x):
        out = x + 0.1 * torch.randn_like(x)
        outputs.append(out)
        return out

    method.augment = aug
    return outputs


def _latents(method, batch):
    """One view's z (B, T, D), its contexts c and the W_k as (K, D, C), drawn as
    ``training_loss`` draws them (seed 1)."""
    torch.manual_seed(1)
    z = method.encoder.local(method.augment(batch.x)).transpose(1, 2)
    c, _ = method.context(z)
    return z, c, method.predictor.weight.view(len(KS), z.shape[2], -1)


def _naive(method, batch, negatives: str) -> torch.Tensor:
    """eq. 4 with the log-bilinear f_k(x_{t+k}, c_t) = exp(z_{t+k}^T W_k c_t): for every
    sequence i, step s and horizon k, -log f_k(z_{i,s+k}, c_{i,s}) / sum_j f_k(z_j, c_{i,s})."""
    z, c, weights = _latents(method, batch)
    b, t, d = z.shape
    losses = []
    for j, k in enumerate(KS):
        for s in range(t - k):
            for i in range(b):
                if negatives == "batch":
                    cands, pos = z[:, s + k], i
                else:
                    cands, pos = z.reshape(b * t, d), i * t + s + k
                logits = torch.stack([cand @ (weights[j] @ c[i, s]) for cand in cands])
                losses.append((k, -torch.log_softmax(logits, 0)[pos]))
    # the method averages anchors per objective call, then over calls
    if negatives == "batch":
        per_call = [
            torch.stack([v for _, v in losses[j : j + b]]).mean() for j in range(0, len(losses), b)
        ]
        return torch.stack(per_call).mean()
    return torch.stack([torch.stack([v for kk, v in losses if kk == k]).mean() for k in KS]).mean()


@pytest.mark.parametrize("negatives", ["batch", "all"])
def test_loss_matches_the_paper_formula(prepared, negatives):
    method, batch = _cpc(prepared, negatives=negatives)
    assert method.ks == KS
    method.train()
    expected = _naive(method, batch, negatives)
    torch.manual_seed(1)
    got = method.training_loss(batch)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


def _support(out_fn, x) -> torch.Tensor:
    """Input samples that out_fn(x) (a (N, ...) tensor) depends on: union over the batch of
    the nonzero entries of its gradient (eval mode, so the samples do not mix)."""
    x = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(out_fn(x).abs().sum(), x)
    return grad.abs().sum((0, 1)) > 0


def test_targets_do_not_overlap_the_context_receptive_field(prepared):
    method, batch = _cpc(prepared)
    assert conv_geometry(method.encoder, 40) == (17, 4, 10)
    method.eval()
    torch.manual_seed(2)
    x = torch.randn(32, 1, 40)

    def z(t):
        return lambda x_: method.encoder.local(x_)[:, :, t]

    def c(t):
        return lambda x_: method.latents_and_contexts(x_)[1][:, t]

    # the arithmetic of conv_geometry is the encoder's: z_t reads samples 4t-8 .. 4t+8
    for t in range(10):
        expected = torch.zeros(40, dtype=torch.bool)
        expected[max(0, 4 * t - 8) : 4 * t + 9] = True
        assert torch.equal(_support(z(t), x), expected), t
    trained = [(s, k) for k in method.ks for s in range(10 - k)]
    assert trained
    for s, k in trained:
        assert not (_support(c(s), x) & _support(z(s + k), x)).any(), (s, k)
    # one horizon less and the windows would share input samples
    s, k = 0, method.ks[0] - 1
    assert (_support(c(s), x) & _support(z(s + k), x)).any()


@pytest.mark.parametrize("negatives", ["batch", "all"])
def test_the_target_of_t_and_k_is_the_latent_at_t_plus_k_of_the_same_sequence(prepared, negatives):
    method, batch = _cpc(prepared, negatives=negatives)
    method.train()
    views = _recording_augment(method)
    method.objective = rec = _Recorder(method.objective)
    method.training_loss(batch)
    assert len(views) == 1  # context and targets read one view of each sequence
    with torch.no_grad():
        z, c = method.latents_and_contexts(views[0])
        b, t, d = z.shape
        pred = method.predictor(c).view(b, t, len(KS), d)
    flat = pred.reshape(-1, d)
    seen = []
    for emb, labels, ref, ref_labels, _ in rec.calls:
        for row, label in zip(emb, labels, strict=True):
            i, s, j = divmod_all(int((flat - row).abs().sum(1).argmin()), (b, t, len(KS)))
            torch.testing.assert_close(row, pred[i, s, j])
            (positive,) = ref[ref_labels == label]  # exactly one positive candidate
            torch.testing.assert_close(positive, z[i, s + KS[j]], rtol=0, atol=1e-6)
            seen.append((i, s, KS[j]))
    expected = [(i, s, k) for i in range(b) for k in KS for s in range(t - k)]
    assert sorted(seen) == sorted(expected)


def divmod_all(index: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    out = []
    for size in reversed(shape):
        index, r = divmod(index, size)
        out.append(r)
    return tuple(reversed(out))


def test_independent_targets_read_a_second_view(prepared):
    method, batch = _cpc(prepared, target_view="independent")
    views = _recording_augment(method)
    method.training_loss(batch)
    assert len(views) == 2 and method.views == 2


@pytest.mark.parametrize("objective", CPC.objectives)
def test_the_score_is_log_bilinear(prepared, objective):
    """f_k(x_{t+k}, c_t) = exp(z_{t+k}^T W_k c_t): the objective's score is the plain dot
    product of z with W_k c (no normalisation) and no temperature divides it."""
    method, batch = _cpc(prepared, objective)
    method.train()
    views = _recording_augment(method)
    method.objective = rec = _Recorder(method.objective)
    method.training_loss(batch)
    assert rec.inner.hparams.get("temperature", 1.0) == 1.0
    with torch.no_grad():
        z, c = method.latents_and_contexts(views[0])
    d = z.shape[-1]
    w = method.predictor.weight.detach()  # rows j*d .. (j+1)*d - 1 are W_{KS[j]}
    calls = iter(rec.calls)
    for j, k in enumerate(KS):  # negatives="batch": one call per (k, s), in this order
        wk = w[j * d : (j + 1) * d]
        for s in range(10 - k):
            sim = next(calls)[-1]
            expected = torch.zeros(B, B)
            for a in range(B):  # anchor: the context c_s of sequence a
                for n in range(B):  # candidate: z_{s+k} of sequence n
                    expected[a, n] = torch.dot(z[n, s + k], torch.mv(wk, c[a, s]))
            torch.testing.assert_close(sim, expected, rtol=1e-4, atol=1e-4)
    assert next(calls, None) is None


def test_the_cosine_critic_is_an_option(prepared):
    method, batch = _cpc(prepared, critic="cosine")
    assert method.objective.hparams["temperature"] == 0.1  # infonce's own
    method.train()
    views = _recording_augment(method)
    method.objective = rec = _Recorder(method.objective)
    method.training_loss(batch)
    with torch.no_grad():
        z, c = method.latents_and_contexts(views[0])
    d = z.shape[-1]
    pred = method.predictor(c).view(B, 10, len(KS), d)
    sim = rec.calls[0][-1]  # k = 5, s = 0
    expected = F.cosine_similarity(pred[:, 0, 0, None], z[None, :, KS[0]], dim=-1)
    torch.testing.assert_close(sim, expected.detach())


def test_an_explicit_temperature_is_honoured(prepared):
    data = prepared("mnist1d", num_train=700, num_val=150, num_test=150)
    cfg = CellConfig(
        method="cpc", objective="infonce", dataset="mnist1d", encoder="cnn1d", temperature=0.5
    )
    assert build_method(cfg, data, torch.device("cpu")).objective.hparams["temperature"] == 0.5


@pytest.mark.parametrize("mode", ["context_mean", "context", "pooled"])
def test_features_come_from_the_context_network(prepared, mode):
    options = {} if mode == "context_mean" else {"features": mode}
    method, batch = _cpc(prepared, **options)
    method.eval()
    x = batch.x
    with torch.no_grad():
        z = method.encoder.local(x).transpose(1, 2)  # (B, T, D)
        contexts = []
        g = method.context
        hs = g.hidden_size
        h = torch.zeros(B, hs)
        for step in range(z.shape[1]):  # the GRU cell written out (torch's gate order r, z, n)
            gi = z[:, step] @ g.weight_ih_l0.T + g.bias_ih_l0
            gh = h @ g.weight_hh_l0.T + g.bias_hh_l0
            r = torch.sigmoid(gi[:, :hs] + gh[:, :hs])
            u = torch.sigmoid(gi[:, hs : 2 * hs] + gh[:, hs : 2 * hs])
            n = torch.tanh(gi[:, 2 * hs :] + r * gh[:, 2 * hs :])
            h = (1 - u) * n + u * h
            contexts.append(h)
        c = torch.stack(contexts, 1)
        expected = {
            "context_mean": c.mean(1),
            "context": c[:, -1],
            "pooled": z.mean(1),
        }[mode]
    torch.testing.assert_close(method.features(x), expected, rtol=1e-5, atol=1e-5)


def test_effective_negatives(prepared):
    assert _cpc(prepared)[0].effective_negatives(64) == 63
    assert _cpc(prepared, negatives="all")[0].effective_negatives(64) == 639


def test_first_horizon_can_be_set(prepared):
    assert _cpc(prepared, first_horizon=1)[0].ks == (1, 2, 3)
    assert _cpc(prepared, horizons=5)[0].ks == (5, 6, 7, 8, 9)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"negatives": "queue"}, "negatives='queue' is not allowed; allowed: batch, all"),
        (
            {"target_view": "other"},
            "target_view='other' is not allowed; allowed: same, independent",
        ),
        ({"critic": "mlp"}, "critic='mlp' is not allowed; allowed: bilinear, cosine"),
        ({"features": "z"}, "features='z' is not allowed; allowed: context, context_mean, pooled"),
        (
            {"nce_normalizer": "none"},
            "nce_normalizer='none' is not allowed; allowed: learned, fixed, batch",
        ),
        ({"horizons": 0}, "horizons=0 is not allowed; allowed: an integer >= 1"),
        ({"first_horizon": 0}, "first_horizon=0 is not allowed; allowed: auto or an integer >= 1"),
        ({"horizons": 6}, r"horizons k = 5\.\.10 need more than the 10 time steps"),
    ],
)
def test_bad_options_name_what_is_allowed(prepared, options, message):
    with pytest.raises(ValueError, match=message):
        _cpc(prepared, **options)


def _naive_nce(method, batch, log_z) -> torch.Tensor:
    """NCE (Gutmann & Hyvarinen 2010) on the log-bilinear critic, one anchor at a time: the
    data pair (c_{i,s}, z_{i,s+k}) against the k = B - 1 noise pairs (c_{i,s}, z_{n,s+k}),
    logit G = z^T W_k c - log Z_k - log k, loss -log sigma(G_data) - sum log(1 - sigma(G_noise)),
    averaged over anchors per (k, s) and then over the (k, s)."""
    z, c, weights = _latents(method, batch)
    b, t, d = z.shape
    calls = []
    for j, k in enumerate(KS):
        for s in range(t - k):
            per_anchor = []
            for i in range(b):
                g = torch.stack([z[n, s + k] @ (weights[j] @ c[i, s]) for n in range(b)])
                g = g - log_z[j] - math.log(b - 1)
                noise = torch.cat([g[:i], g[i + 1 :]])
                per_anchor.append(-F.logsigmoid(g[i]) - F.logsigmoid(-noise).sum())
            calls.append(torch.stack(per_anchor).mean())
    return torch.stack(calls).mean()


def test_nce_learns_its_normaliser_as_the_nce_paper_does(prepared):
    """Default ``nce_normalizer: learned``: one log Z_k per horizon, a trained parameter
    (not the registered objective's per-batch estimate, which the unbounded z^T W_k c
    drives to a collapse)."""
    method, batch = _cpc(prepared, "nce")
    assert method.nce_mode == "learned"
    assert isinstance(method.log_z, nn.Parameter) and method.log_z.shape == (len(KS),)
    with torch.no_grad():
        method.log_z.copy_(torch.tensor([0.3, -0.2, 1.1]))
    method.train()
    expected = _naive_nce(method, batch, method.log_z.detach())
    torch.manual_seed(1)
    got = method.training_loss(batch)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    got.backward()
    assert method.log_z.grad is not None and (method.log_z.grad != 0).all()
    assert any(p is method.log_z for p in method.parameters())  # the optimiser trains it


def test_nce_fixed_and_batch_normalisers(prepared):
    method, batch = _cpc(prepared, "nce", nce_normalizer="fixed")
    assert torch.isnan(method.log_z).all()
    assert not any(p is method.log_z for p in method.parameters())  # a buffer
    method.train()
    method.objective = rec = _Recorder(method.objective)
    torch.manual_seed(1)
    method.training_loss(batch)
    # log Z_k: log mean exp over the pairs of the first call of horizon k, then kept
    first = {0: rec.calls[0], 1: rec.calls[5], 2: rec.calls[9]}  # (k, s) = (5, 0), (6, 0), (7, 0)
    for j, call in first.items():
        torch.testing.assert_close(method.log_z[j], call[-1].logsumexp((0, 1)) - math.log(B * B))
    kept = method.log_z.clone()
    method.training_loss(batch)
    assert torch.equal(method.log_z, kept)
    # "batch": the registered objective as it is
    method, batch = _cpc(prepared, "nce", nce_normalizer="batch")
    assert method.nce_mode == "batch" and not hasattr(method, "log_z")
    # other objectives and the cosine critic never build a normaliser
    assert _cpc(prepared, "infonce")[0].nce_mode == "batch"
    assert _cpc(prepared, "nce", critic="cosine")[0].nce_mode == "batch"
