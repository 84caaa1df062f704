"""DGI's four mechanisms against hand formulas: corruption, readout, critic, loss; and
the paper preset with its early stopping."""

from __future__ import annotations

import pytest
import torch

from benchmark.methods.base import Batch
from benchmark.methods.dgi import DGI, EarlyStopping
from benchmark.train import CellConfig, build_method


def _dgi(prepared, objective="jsd", **options):
    data = prepared("csbm")
    cfg = CellConfig(
        method="dgi", objective=objective, dataset="csbm", encoder="gcn", method_options=options
    )
    torch.manual_seed(0)
    method = build_method(cfg, data, torch.device("cpu"))
    batch = Batch(x=data.x, y=data.y, idx=data.splits["train"], edge_index=data.edge_index)
    return method, batch


def _record(method, batch):
    """One training loss, with every encoder call and the objective's inputs recorded."""
    calls, seen = [], {}
    h1 = method.encoder.register_forward_hook(lambda m, a, out: calls.append((a, out)))
    h2 = method.objective.register_forward_hook(lambda m, a, out: seen.update(args=a))
    try:
        torch.manual_seed(3)
        loss = method.training_loss(batch)
    finally:
        h1.remove()
        h2.remove()
    return loss, calls, seen["args"]


def test_corruption_permutes_the_rows_of_x_and_keeps_the_edges(prepared):
    method, batch = _dgi(prepared)
    _, calls, _ = _record(method, batch)
    assert len(calls) == 2
    (x_real, e_real), (x_bad, e_bad) = calls[0][0], calls[1][0]
    assert x_real is batch.x and e_real is batch.edge_index and e_bad is batch.edge_index
    # every corrupted row is exactly one real row, each real row used once
    match = torch.cdist(x_bad, batch.x).argmin(1)
    assert torch.equal(x_bad, batch.x[match])
    assert sorted(match.tolist()) == list(range(len(batch.x)))
    assert (match != torch.arange(len(batch.x))).float().mean() > 0.9


def test_readout_is_the_sigmoid_of_the_mean(prepared):
    method, batch = _dgi(prepared)
    _, calls, (s, s_label, nodes, node_labels) = _record(method, batch)
    h, h_bad = calls[0][1], calls[1][1]
    n, d = h.shape
    mean = [sum(h[i, k].item() for i in range(n)) / n for k in range(0, d, 17)]
    expected = torch.tensor([1 / (1 + torch.exp(torch.tensor(-m)).item()) for m in mean])
    torch.testing.assert_close(s[0, ::17], expected, rtol=1e-5, atol=1e-6)
    # anchor s; candidates the real nodes (label 0: positives) then the corrupted ones
    assert s.shape == (1, d) and s_label.tolist() == [0]
    assert torch.equal(nodes, torch.cat([h, h_bad]))
    assert node_labels.tolist() == [0] * n + [1] * n


def test_critic_is_bilinear(prepared):
    method, _ = _dgi(prepared)
    g = torch.Generator().manual_seed(0)
    d = method.encoder.out_dim
    s, h = torch.randn(1, d, generator=g), torch.randn(5, d, generator=g)
    w = method.critic.weight
    # sum_a sum_b h_ja W_ab s_b, elementwise (no matrix product)
    expected = [(h[j][:, None] * w * s[0][None, :]).sum() for j in range(5)]
    torch.testing.assert_close(method.critic(s, h)[0], torch.stack(expected), rtol=1e-4, atol=1e-4)


def test_loss_is_the_papers_binary_cross_entropy(prepared):
    """eq. 1: -1/(N+M) (sum_i log D(h_i, s) + sum_j log(1 - D(h~_j, s))), D = sigmoid(score)."""
    method, batch = _dgi(prepared)
    loss, calls, _ = _record(method, batch)
    h, h_bad = calls[0][1].double(), calls[1][1].double()
    s = torch.sigmoid(h.mean(0))
    w = method.critic.weight.double()
    real = torch.sigmoid(h @ w @ s)  # D(h_i, s) = sigmoid(h_i^T W s)
    fake = torch.sigmoid(h_bad @ w @ s)
    expected = -(torch.log(real).sum() + torch.log(1 - fake).sum()) / (len(h) + len(h_bad))
    torch.testing.assert_close(loss.double(), expected, rtol=1e-5, atol=1e-6)


def test_effective_negatives(prepared):
    method, _ = _dgi(prepared)
    assert method.effective_negatives(2500) == 2500
    method.objective.num_negatives = 64
    assert method.effective_negatives(2500) == 64
    method.objective.num_negatives = 5000  # more than there are corrupted nodes
    assert method.effective_negatives(2500) == 2500


def test_default_keeps_the_configured_encoder(prepared):
    method, _ = _dgi(prepared)
    assert method.encoder.out_dim == 128 and method.stopping is None


def test_paper_preset(prepared):
    method, _ = _dgi(prepared, preset="paper")
    assert method.encoder.out_dim == 512 and method.critic.weight.shape == (512, 512)
    assert [a.weight.numel() for a in method.encoder.acts] == [1]  # nn.PReLU(): one slope
    assert method.stopping.patience == 20
    assert method.features(prepared("csbm").x, prepared("csbm").edge_index).shape[1] == 512
    method, _ = _dgi(prepared, preset="paper", hidden=64, patience=5)  # explicit wins
    assert method.encoder.out_dim == 64 and method.stopping.patience == 5


def test_early_stopping_keeps_the_lowest_loss_parameters():
    net = torch.nn.Linear(2, 1)
    stop = EarlyStopping(patience=2)
    states = []
    for loss in [3.0, 2.0, 2.5, 2.1]:
        with torch.no_grad():
            net.weight.add_(1.0)
        states.append(net.weight.clone())
        stop.update(loss, net)
        assert stop.stopped is (loss == 2.1)
    stop.restore(net)
    assert torch.equal(net.weight, states[1]) and stop.best == 2.0


def test_early_stopping_in_the_training_loop(prepared, monkeypatch):
    method, batch = _dgi(prepared, patience=2)
    losses = iter([5.0, 4.0, 4.5, 4.6, 1.0, 1.0])
    scripted = lambda b: method.critic.weight.sum() * 0 + next(losses) + method.critic.weight[0, 0]  # noqa: E731
    monkeypatch.setattr(method, "dgi_loss", scripted)
    opt = torch.optim.Adam(method.parameters(), lr=0.1)
    weights = []
    for step in range(6):
        weights.append(method.critic.weight.detach().clone())
        loss = method.training_loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        method.after_step((step + 1) / 6)
    # losses 5, 4 (best, at step 1), 4.5, 4.6 -> stopped at step 3: the step-1 parameters,
    # kept to the end although later losses would have been lower
    assert method.stopping.stopped and method.stopping.best == pytest.approx(4.0 + weights[1][0, 0])
    assert torch.equal(method.critic.weight, weights[1])
    assert torch.equal(
        method.encoder.convs[0].lin.weight, method.stopping.state["encoder.convs.0.lin.weight"]
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"preset": "cora"}, "preset='cora' is not allowed; allowed: none, paper"),
        ({"hidden": 0}, "hidden=0 is not allowed; allowed: null or an integer >= 1"),
        ({"patience": -1}, "patience=-1 is not allowed; allowed: null or an integer >= 0"),
        ({"layers": 2}, "no option 'layers'.*allowed: hidden, patience, preset"),
    ],
)
def test_bad_options_name_what_is_allowed(prepared, options, message):
    with pytest.raises(ValueError, match=message):
        _dgi(prepared, **options)


def test_corrupt_and_readout_are_the_methods_own():
    x, e = torch.arange(12.0).view(6, 2), torch.tensor([[0, 1], [1, 0]])
    torch.manual_seed(0)
    xc, ec = DGI.corrupt(x, e)
    assert ec is e and sorted(xc[:, 0].tolist()) == x[:, 0].tolist()


def test_options_are_checked_before_building():
    DGI.check_options({**DGI.option_defaults, "preset": "paper"})
    with pytest.raises(
        ValueError, match="patience=1.5 is not allowed; allowed: null or an integer >= 0"
    ):
        DGI.check_options({**DGI.option_defaults, "patience": 1.5})
