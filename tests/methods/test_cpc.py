"""CPC's loss against the paper's formula written naively, and its options."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from benchmark.methods.base import Batch
from benchmark.train import CellConfig, build_method


def _cpc(prepared, **options):
    data = prepared("mnist1d", num_samples=1000)
    cfg = CellConfig(
        method="cpc",
        objective="infonce",
        dataset="mnist1d",
        encoder="cnn1d",
        batch_size=16,
        epochs=1,
        method_options=options,
    )
    torch.manual_seed(0)
    method = build_method(cfg, data, torch.device("cpu"))
    return method, Batch(x=data.x[:16], y=data.y[:16], idx=torch.arange(16))


def _naive(method, batch, negatives: str) -> torch.Tensor:
    """eq. 4 of van den Oord et al. 2018 with f_k = exp(cos(W_k c_t, z_{t+k}) / tau)."""
    torch.manual_seed(1)
    z = method.encoder.local(method.augment(batch.x)).transpose(1, 2)
    target = method.encoder.local(method.augment(batch.x)).transpose(1, 2)
    b, t, d = z.shape
    c, _ = method.context(z)
    weights = method.predictor.weight.view(method.horizons, d, -1)
    losses = []
    for k in range(1, method.horizons + 1):
        for s in range(t - k):
            for i in range(b):
                pred = weights[k - 1] @ c[i, s]
                if negatives == "batch":
                    cands, pos = target[:, s + k], i
                else:
                    cands, pos = target.reshape(b * t, d), i * t + s + k
                logits = F.cosine_similarity(pred[None], cands) / 0.1
                per_anchor = -torch.log_softmax(logits, 0)[pos]
                losses.append((k, per_anchor))
    # the method averages anchors per objective call, then over calls
    if negatives == "batch":
        per_call = [
            torch.stack([v for _, v in losses[j : j + b]]).mean() for j in range(0, len(losses), b)
        ]
        return torch.stack(per_call).mean()
    return torch.stack(
        [
            torch.stack([v for kk, v in losses if kk == k]).mean()
            for k in range(1, method.horizons + 1)
        ]
    ).mean()


@pytest.mark.parametrize("negatives", ["batch", "all"])
def test_loss_matches_the_paper_formula(prepared, negatives):
    method, batch = _cpc(prepared, negatives=negatives)
    method.train()
    expected = _naive(method, batch, negatives)
    torch.manual_seed(1)
    got = method.training_loss(batch)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_effective_negatives(prepared):
    assert _cpc(prepared)[0].effective_negatives(64) == 63
    assert _cpc(prepared, negatives="all")[0].effective_negatives(64) == 639


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"negatives": "queue"}, "negatives='queue'; allowed: batch, all"),
        ({"target_view": "other"}, "target_view='other'; allowed: independent, same"),
        ({"horizons": 0}, "horizons=0; allowed: >= 1"),
    ],
)
def test_bad_options_name_what_is_allowed(prepared, options, message):
    with pytest.raises(ValueError, match=message):
        _cpc(prepared, **options)
