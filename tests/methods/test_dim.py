"""DIM: local features from an intermediate layer, global from the encoder's output, the
negatives each anchor sees, and the loss as the JSD formula written by hand."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from benchmark.encoders import build_encoder
from benchmark.methods.base import Batch, assemble_method
from benchmark.methods.dim import DIM
from benchmark.train import CellConfig, build_method


def _dim(prepared, dataset="digits", encoder="cnn2d", **options):
    data = (
        prepared(dataset)
        if dataset == "digits"
        else prepared(dataset, num_train=700, num_val=150, num_test=150)
    )
    cfg = CellConfig(
        method="dim",
        objective="jsd",
        dataset=dataset,
        encoder=encoder,
        batch_size=16,
        method_options=options,
    )
    torch.manual_seed(0)
    method = build_method(cfg, data, torch.device("cpu"))
    return method, Batch(x=data.x[:16], y=data.y[:16], idx=torch.arange(16))


def _record(method, batch):
    """One loss with the encoder blocks' outputs, the heads' inputs and the objective's
    arguments recorded."""
    got, handles = {}, []

    def keep(name, what):
        return lambda m, a, out: got.__setitem__(name, a[0] if what == "in" else out)

    trunk = method.encoder.trunk
    handles += [trunk[-2].register_forward_hook(keep("penultimate", "out"))]
    handles += [trunk[-1].register_forward_hook(keep("last", "out"))]
    handles += [method.local_head.register_forward_hook(keep("local_in", "in"))]
    handles += [method.global_head.register_forward_hook(keep("global_in", "in"))]
    handles += [method.local_head.register_forward_hook(keep("local_out", "out"))]
    handles += [method.global_head.register_forward_hook(keep("global_out", "out"))]
    handles += [method.objective.register_forward_hook(lambda m, a, o: got.update(args=a))]
    try:
        loss = method.training_loss(batch)
    finally:
        for h in handles:
            h.remove()
    return loss, got


def test_local_from_the_intermediate_layer_global_from_the_output(prepared):
    method, batch = _dim(prepared)
    method.train()
    loss, got = _record(method, batch)
    loss.backward()  # the last block learns through the global vector only
    assert method.encoder.trunk[-1][0].weight.grad.abs().sum() > 0
    assert got["local_in"] is got["penultimate"]  # the very tensor of the block before last
    assert got["local_in"].shape == (16, 64, 8, 8)
    assert got["last"].shape == (16, 128, 4, 4)
    assert got["global_in"].shape == (16, 128)
    torch.testing.assert_close(got["global_in"], got["last"].flatten(2).mean(-1))  # E(x)
    method.eval()  # eval-mode batch norm: the output is a function of x alone
    with torch.no_grad():
        torch.testing.assert_close(
            method.global_and_local(batch.x)[1], method.features(batch.x), rtol=0, atol=0
        )


def test_final_layer_variant(prepared):
    method, batch = _dim(prepared, local_layer="final")
    _, got = _record(method, batch)
    assert got["local_in"] is got["last"] and got["local_in"].shape == (16, 128, 4, 4)


def test_each_anchor_sees_the_other_images_local_features(prepared):
    method, batch = _dim(prepared)
    _, got = _record(method, batch)
    pairs = method.objective.pairs(*got["args"])
    positions = 8 * 8
    assert pairs.sim.shape == (16, 16 * positions)
    assert pairs.pos.sum(1).tolist() == [positions] * 16
    assert pairs.neg.sum(1).tolist() == [15 * positions] * 16
    assert method.effective_negatives(16) == 15 * positions
    assert method.effective_negatives(128) == 127 * positions
    method.objective.num_negatives = 100
    assert method.effective_negatives(128) == 100
    final, _ = _dim(prepared, local_layer="final")
    assert final.effective_negatives(16) == 15 * 4 * 4


def test_loss_is_the_jsd_of_the_encode_and_dot_scores(prepared):
    """Hjelm et al. eq. 4 over T(x_i, C_p(x_j)) = phi(E(x_i)) . psi(C_p(x_j))."""
    method, batch = _dim(prepared)
    loss, got = _record(method, batch)
    g, loc = got["global_out"], got["local_out"].flatten(2)  # (B, E), (B, E, P)
    pos, neg = [], []
    for i in range(16):
        for j in range(16):
            for p in range(loc.shape[-1]):
                (pos if i == j else neg).append(g[i] @ loc[j, :, p])
    expected = F.softplus(-torch.stack(pos)).mean() + F.softplus(torch.stack(neg)).mean()
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)


def test_sequences_and_resnet(prepared):
    method, _ = _dim(prepared, dataset="mnist1d", encoder="cnn1d")
    assert method.positions == 20  # the 20-step map before the last stride-2 block
    assert method.effective_negatives(64) == 63 * 20
    encoder = build_encoder("resnet18", (3, 32, 32))
    method = assemble_method(
        "dim", encoder, lambda x: x, {"input_shape": (3, 32, 32)}, objective="jsd"
    )
    fmap, g = method.global_and_local(torch.rand(2, 3, 32, 32))
    assert fmap.shape == (2, 256, 8, 8) and g.shape == (2, 512)  # layer3, the output


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"local_layer": "first"},
            "local_layer='first' is not allowed; allowed: intermediate, final",
        ),
        ({"critic_dim": 0}, "critic_dim=0 is not allowed; allowed: an integer >= 1"),
        ({"global_dim": 8}, "no option 'global_dim'.*allowed: critic_dim, local_layer"),
    ],
)
def test_bad_options_name_what_is_allowed(prepared, options, message):
    with pytest.raises(ValueError, match=message):
        _dim(prepared, **options)


def test_needs_an_encoder_with_feature_maps(prepared):
    with pytest.raises(ValueError, match="dim needs a convolutional encoder"):
        _dim(prepared, encoder="mlp")


def test_options_are_checked_before_building():
    with pytest.raises(ValueError, match="local_layer='first'"):
        DIM.check_options({**DIM.option_defaults, "local_layer": "first"})
