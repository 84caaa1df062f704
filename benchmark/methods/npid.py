"""Instance discrimination with a memory bank (NPID, Wu et al. 2018)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from benchmark.encoders import mlp_head
from benchmark.methods.base import ALL_OBJECTIVES, Batch, Context, Method, register_method
from benchmark.objectives import Pairs

NORMALIZERS = ("fixed", "batch")


@register_method("npid")
class NPID(Method):
    """Each training sample is its own class (Wu et al. 2018, sec. 3.1-3.2).

    The bank V holds one unit vector per training sample. Anchor i (the normalised feature
    f_i of an augmented view) has one positive, its own entry v_i, and K negatives drawn
    uniformly without replacement from the other n - 1 entries (never v_i). One set of
    K + 1 distinct entries is drawn per step and shared by the batch; an anchor whose own
    entry is among the first K takes the (K+1)-th instead, so each anchor's K negatives are
    exactly a uniform K-subset of the others. (The official code draws K per anchor with
    replacement; for n >> K the two agree.) After the loss, v_i <- normalize(m v_i +
    (1 - m) f_i) with m = ``bank_momentum`` (sec. 3.2; 0.5 in the paper).

    Options: ``bank_negatives`` K (>= 1; at most n - 1 are used); ``batch_negatives``
    (default false, the paper) true adds the bank entries of the other B - 1 samples of the
    batch as negatives (the behaviour before the paper-faithful default; an entry can then
    appear twice). ``nce_normalizer`` (objective ``nce`` only): ``"fixed"`` (the paper,
    sec. 3.2: Z = n * mean exp(v^T f / tau) is estimated once, on the first batch, over the
    positive and noise pairs, then kept; the official code does the same), ``"batch"``:
    re-estimated on every batch, as the registered ``nce`` objective does by itself.
    """

    objectives = ALL_OBJECTIVES
    default_objective = "nce"
    option_defaults = {
        "bank_negatives": 1024,
        "bank_momentum": 0.5,
        "proj_dim": 64,
        "proj_hidden": 256,
        "batch_negatives": False,
        "nce_normalizer": "fixed",
    }

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        o = self.options
        for key in ("bank_negatives", "proj_dim", "proj_hidden"):
            if not _is_int(o[key]) or o[key] < 1:
                raise ValueError(_bad(key, "an integer >= 1", o[key]))
        m = o["bank_momentum"]
        if isinstance(m, bool) or not isinstance(m, (int, float)) or not 0 <= m < 1:
            raise ValueError(_bad("bank_momentum", "a number in [0, 1)", m))
        if not isinstance(o["batch_negatives"], bool):
            raise ValueError(_bad("batch_negatives", "true or false", o["batch_negatives"]))
        if o["nce_normalizer"] not in NORMALIZERS:
            raise ValueError(_bad("nce_normalizer", "one of fixed, batch", o["nce_normalizer"]))
        if ctx.num_train < 2:
            raise ValueError(f"method 'npid' needs >= 2 training samples; got {ctx.num_train}")
        self.projector = mlp_head(ctx.encoder.out_dim, o["proj_hidden"], o["proj_dim"])
        self.register_buffer("bank", F.normalize(torch.randn(ctx.num_train, o["proj_dim"]), dim=1))
        # log(Z / n) of the fixed NCE normaliser; NaN until the first batch sets it
        self.register_buffer("log_z", torch.tensor(math.nan))

    @property
    def k(self) -> int:
        return min(self.options["bank_negatives"], len(self.bank) - 1)

    def training_loss(self, batch: Batch) -> Tensor:
        v = self.projector(self.encoder(self.augment(batch.x)))
        loss = self.contrast(v, batch.idx, self.draw())
        self.update_bank(batch.idx, v.detach())
        return loss

    def draw(self) -> Tensor:
        """K + 1 distinct bank entries, uniformly at random (one draw per step)."""
        return torch.randperm(len(self.bank), device=self.bank.device)[: self.k + 1]

    def noise_mask(self, ids: Tensor, drawn: Tensor) -> Tensor:
        """(B, K+1) bool: anchor i's negatives among the K+1 drawn entries -- the first K,
        or, if its own entry is among them, the other K."""
        k = self.k
        own = drawn[None, :] == ids[:, None]
        hit = own[:, :k].any(1, keepdim=True)
        first_k = torch.arange(len(drawn), device=ids.device)[None, :] < k
        return ~own & (first_k | hit)

    def contrast(self, v: Tensor, ids: Tensor, drawn: Tensor) -> Tensor:
        """The objective over candidates [bank[ids] (B), bank[drawn] (K+1)]."""
        b = len(v)
        eye = torch.eye(b, dtype=torch.bool, device=v.device)
        pos = torch.cat([eye, torch.zeros(b, len(drawn), dtype=torch.bool, device=v.device)], 1)
        batch_neg = ~eye if self.options["batch_negatives"] else torch.zeros_like(eye)
        neg = torch.cat([batch_neg, self.noise_mask(ids, drawn)], 1)
        pairs = self.objective.masked_pairs(v, self.bank[torch.cat([ids, drawn])], pos, neg)
        if self.objective.name != "nce" or self.options["nce_normalizer"] == "batch":
            return self.objective.spec.reduce(pairs, **self.objective.hparams)
        tau = self.objective.hparams["temperature"]
        if torch.isnan(self.log_z):
            self.log_z.copy_(log_mean_exp(pairs, tau))
        return nce_fixed(pairs, tau, self.log_z)

    @torch.no_grad()
    def update_bank(self, ids: Tensor, features: Tensor) -> None:
        """v_i <- normalize(m v_i + (1 - m) f_i), f_i the normalised feature (sec. 3.2)."""
        m = self.options["bank_momentum"]
        mixed = m * self.bank[ids] + (1 - m) * F.normalize(features, dim=1)
        self.bank[ids] = F.normalize(mixed, dim=1)

    def effective_negatives(self, batch_size: int) -> int:
        available = self.k + (batch_size - 1 if self.options["batch_negatives"] else 0)
        return min(available, self.num_negatives or available)


@torch.no_grad()
def log_mean_exp(pairs: Pairs, tau: float) -> Tensor:
    """log mean exp(s / tau) over every positive and kept negative pair: log(Z / n)."""
    kept = pairs.sim[pairs.pos | pairs.neg] / tau
    return torch.logsumexp(kept, 0) - math.log(len(kept))


def nce_fixed(pairs: Pairs, tau: float, log_z: Tensor) -> Tensor:
    """The NCE loss of Wu et al. 2018 (eqs. 4-6, the official NCECriterion) with a given
    normaliser: P(i|f) = exp(s/tau) / Z, h = P / (P + k/n), so with log_z = log(Z / n)
    logit = s/tau - log_z - log k, and L = mean_i [-log h(pos) - sum_neg log(1 - h)]. Every
    NPID anchor has one positive. Equals the registered ``nce`` objective when ``log_z`` is
    this batch's own estimate (tests/methods/test_npid.py checks it)."""
    log_k = pairs.n_neg.clamp_min(1).to(pairs.sim.dtype).log()
    anchors, cols = pairs.pos_index
    logit_pos = pairs.sim[anchors, cols] / tau - log_z - log_k[anchors]
    logit = torch.where(pairs.neg, pairs.sim / tau - log_z - log_k[:, None], -math.inf)
    return F.softplus(-logit_pos).mean() + F.softplus(logit).sum(1)[anchors].mean()


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _bad(key: str, allowed: str, got) -> str:
    return f"method 'npid': option {key} must be {allowed}; got {got!r}"
