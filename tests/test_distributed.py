"""Two processes (gloo, CPU) with batch B each equal one process with batch 2B.

One spawn of two workers runs every scenario (SimCLR with ntxent / infonce / triplet,
MoCo, BYOL, NPID, CLIP, and SimCLR with each peer bug planted); the parent compares the loss,
every parameter's gradient after one step, and the state after the optimiser step and
the method's ``after_step`` (MoCo's queue, BYOL's target, NPID's bank) with the one-process
run on the concatenated batch, in float64.
"""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from benchmark import distributed
from benchmark.encoders import build_encoder
from benchmark.methods import Batch, assemble_method

WORLD, B, D = 2, 8, 16  # processes, local batch, input features
TOL = 1e-6

# name -> (method, objective, options, encoder has BN)
SCENARIOS = {
    "simclr-ntxent": ("simclr", "ntxent", {}, True),
    "simclr-infonce": ("simclr", "infonce", {}, True),
    "simclr-triplet": ("simclr", "triplet", {}, True),
    "moco": ("moco", "infonce", {"queue_size": 24, "shuffle_bn_groups": 1}, False),
    "moco-batchneg": (
        "moco",
        "infonce",
        {"queue_size": 40, "shuffle_bn_groups": 1, "batch_negatives": True},
        False,
    ),
    "byol": ("byol", "none", {}, True),
    "npid": ("npid", "nce", {"bank_negatives": 20, "batch_negatives": True}, True),
    "clip": ("clip", "infonce", {}, False),  # learned temperature, second tower
}
# peer bugs planted in the SimCLR/ntxent gather: each must break the equality
BROKEN = ("no_put_back", "put_back_only", "scaled_backward", "no_label_offset")


class Alternate:
    """Two deterministic per-sample 'augmentations', used in turn: a sample's views do
    not depend on which process or batch it is in."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, x):
        self.calls += 1
        return x * 1.1 + 0.05 if self.calls % 2 else x.flip(-1) * 0.9 - 0.02


class PlainEncoder(nn.Sequential):  # no BatchNorm (MoCo keeps BN per process)
    def __init__(self) -> None:
        super().__init__(nn.Linear(D, 32), nn.ReLU(), nn.Linear(32, 16))
        self.out_dim = 16


def build(name: str):
    method, objective, options, bn = SCENARIOS[name]
    torch.manual_seed(0)
    encoder = build_encoder("mlp", (D,), width=32, out_dim=16) if bn else PlainEncoder()
    facts = {
        "input_shape": (D,),
        "num_train": 3 * WORLD * B,
        "make_encoder": lambda shape: PlainEncoder(),
        "x2_shape": (D,),
    }
    m = assemble_method(
        method, encoder, Alternate(), facts, objective=objective, options=dict(options)
    ).double()
    m.train()
    return m


def data():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(WORLD * B, D, generator=g, dtype=torch.float64)
    idx = torch.randperm(3 * WORLD * B, generator=g)[: WORLD * B]
    x2 = x.flip(-1) + 0.3 * torch.randn(x.shape, generator=g, dtype=torch.float64)
    return x, idx, x2


def one_step(method, loss_fn, batch) -> dict:
    opt = torch.optim.SGD([p for p in method.parameters() if p.requires_grad], lr=0.1)
    loss = loss_fn(batch)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in method.named_parameters() if p.grad is not None}
    opt.step()
    method.after_step(0.5)
    state = {k: v.clone() for k, v in method.state_dict().items()}
    return {"loss": float(distributed.mean(loss.detach())), "grads": grads, "state": state}


# --- planted bugs ------------------------------------------------------------------------


def _plain_gather(x):  # all_gather has no autograd: no slice keeps a gradient
    return distributed.gather_nograd(x)


def _put_back_only(x):  # own slice keeps its gradient, other ranks' terms never arrive
    parts = list(distributed.gather_nograd(x).tensor_split(WORLD))
    parts[dist.get_rank()] = x
    return torch.cat(parts)


class _ScaledBackward(torch.autograd.Function):  # gradients all_reduced, then / W
    @staticmethod
    def forward(ctx, x):
        return distributed.gather_nograd(x)

    @staticmethod
    def backward(ctx, grad):
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        r, n = dist.get_rank(), len(grad) // WORLD
        return grad[r * n : (r + 1) * n] / WORLD


def plant(bug: str, monkey: dict) -> None:
    if bug == "no_put_back":
        monkey["gather"] = _plain_gather
    elif bug == "put_back_only":
        monkey["gather"] = _put_back_only
    elif bug == "scaled_backward":
        monkey["gather"] = _ScaledBackward.apply
    elif bug == "no_label_offset":
        monkey["offset"] = lambda n: 0
    for key, fn in monkey.items():
        setattr(distributed, key, fn)


def _worker(rank: int, port: int, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=WORLD)  # fmt: skip
    x, idx, x2 = data()
    local = slice(rank * B, (rank + 1) * B)
    batch = Batch(x=x[local], y=torch.zeros(B, dtype=torch.long), idx=idx[local], x2=x2[local])
    saved = {k: getattr(distributed, k) for k in ("gather", "offset")}
    results = {}
    try:
        for name in [*SCENARIOS, *(f"broken-{b}" for b in BROKEN)]:
            bug = name.removeprefix("broken-") if name.startswith("broken-") else None
            method = build("simclr-ntxent" if bug else name)
            if bug:
                plant(bug, {})
            results[name] = one_step(method, distributed.prepare(method, 0), batch)
            for key, fn in saved.items():
                setattr(distributed, key, fn)
    finally:
        torch.save(results, os.path.join(out, f"rank{rank}.pt"))
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("ddp"))
    mp.spawn(_worker, args=(_free_port(), out), nprocs=WORLD, join=True)
    ranks = [torch.load(os.path.join(out, f"rank{r}.pt")) for r in range(WORLD)]
    x, idx, x2 = data()
    batch = Batch(x=x, y=torch.zeros(len(x), dtype=torch.long), idx=idx, x2=x2)
    single = {}
    for name in SCENARIOS:
        method = build(name)
        torch.manual_seed(0)  # the RNG state `prepare` leaves on rank 0 (NPID's draw)
        single[name] = one_step(method, method.training_loss, batch)
    return ranks, single


def _max_diff(a: dict, b: dict) -> float:
    """Largest absolute difference; a gradient missing on one side counts as zero."""
    assert set(a) <= set(b)
    return max(float((a.get(k, 0 * b[k]).double() - b[k].double()).abs().max()) for k in b)


def differences(run: dict, ref: dict) -> dict:
    return {
        "loss": abs(run["loss"] - ref["loss"]),
        "grads": _max_diff(run["grads"], ref["grads"]),
        "state": _max_diff(run["state"], ref["state"]),
    }


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_two_processes_equal_one(runs, name):
    ranks, single = runs
    for run in ranks:
        diff = differences(run[name], single[name])
        print(name, {k: f"{v:.1e}" for k, v in diff.items()})
        assert max(diff.values()) <= TOL, diff


@pytest.mark.parametrize("bug", BROKEN)
def test_each_peer_bug_is_caught(runs, bug):
    ranks, single = runs
    diff = differences(ranks[0][f"broken-{bug}"], single["simclr-ntxent"])
    print(bug, {k: f"{v:.1e}" for k, v in diff.items()})
    assert diff["grads"] > 1e3 * TOL, diff


def test_inert_on_one_process():
    z = torch.randn(4, 3, requires_grad=True)
    assert not distributed.is_distributed()
    assert distributed.gather(z) is z and distributed.world_size() == 1
    assert distributed.offset(4) == 0
