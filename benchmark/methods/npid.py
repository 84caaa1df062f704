"""Instance discrimination with a memory bank (NPID, Wu et al. 2018)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmark import distributed
from benchmark.encoders import mlp_head
from benchmark.methods.base import (
    ALL_OBJECTIVES,
    COUNT,
    FLAG,
    UNIT,
    Augment,
    Batch,
    Method,
    Objective,
    one_of,
    register_method,
)
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
    option_rules = {
        **dict.fromkeys(("bank_negatives", "proj_dim", "proj_hidden"), COUNT),
        "bank_momentum": UNIT,
        "batch_negatives": FLAG,
        "nce_normalizer": one_of(*NORMALIZERS),
    }

    def __init__(
        self,
        encoder: nn.Module,
        augment: Augment,
        objective: Objective | None = None,
        *,
        num_train: int,
        bank_negatives: int = 1024,
        bank_momentum: float = 0.5,
        proj_dim: int = 64,
        proj_hidden: int = 256,
        batch_negatives: bool = False,
        nce_normalizer: str = "fixed",
    ) -> None:
        super().__init__(encoder, augment, objective)
        if num_train < 2:
            raise ValueError(f"method 'npid' needs >= 2 training samples; got {num_train}")
        self.bank_negatives, self.bank_momentum = bank_negatives, bank_momentum
        self.batch_negatives, self.nce_normalizer = batch_negatives, nce_normalizer
        self.projector = mlp_head(encoder.out_dim, proj_hidden, proj_dim)
        self.register_buffer("bank", F.normalize(torch.randn(num_train, proj_dim), dim=1))
        # log(Z / n) of the fixed NCE normaliser; NaN until the first batch sets it
        self.register_buffer("log_z", torch.tensor(math.nan))

    @property
    def k(self) -> int:
        return min(self.bank_negatives, len(self.bank) - 1)

    def training_loss(self, batch: Batch) -> Tensor:
        v = self.projector(self.encoder(self.augment(batch.x)))
        if not distributed.is_distributed():
            loss = self.contrast(v, batch.idx, self.draw())
            self.update_bank(batch.idx, v.detach())
            return loss
        # several processes: one draw (rank 0's), one bank update per global batch
        loss = self.contrast(v, batch.idx, distributed.broadcast(self.draw()))
        ids, feats = distributed.gather_nograd(batch.idx), distributed.gather_nograd(v.detach())
        self.update_bank(ids, feats)
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
        cand = ids
        if distributed.is_distributed() and self.batch_negatives:
            cand = distributed.gather_nograd(ids)  # every process's entries; own at offset + i
            rows = distributed.offset(b) + torch.arange(b, device=v.device)
            eye = torch.arange(len(cand), device=v.device)[None, :] == rows[:, None]
        else:
            eye = torch.eye(b, dtype=torch.bool, device=v.device)
        pos = torch.cat([eye, torch.zeros(b, len(drawn), dtype=torch.bool, device=v.device)], 1)
        batch_neg = ~eye if self.batch_negatives else torch.zeros_like(eye)
        neg = torch.cat([batch_neg, self.noise_mask(ids, drawn)], 1)
        pairs = self.objective.masked_pairs(v, self.bank[torch.cat([cand, drawn])], pos, neg)
        if self.objective.name != "nce" or self.nce_normalizer == "batch":
            return self.objective.spec.reduce(pairs, **self.objective.hparams)
        tau = self.objective.hparams["temperature"]
        if distributed.is_distributed() and torch.isnan(self.log_z):
            self.log_z.copy_(gathered_log_mean_exp(pairs, tau))  # over every process's pairs
        elif torch.isnan(self.log_z):
            self.log_z.copy_(log_mean_exp(pairs, tau))
        return nce_fixed(pairs, tau, self.log_z)

    @torch.no_grad()
    def update_bank(self, ids: Tensor, features: Tensor) -> None:
        """v_i <- normalize(m v_i + (1 - m) f_i), f_i the normalised feature (sec. 3.2)."""
        m = self.bank_momentum
        mixed = m * self.bank[ids] + (1 - m) * F.normalize(features, dim=1)
        self.bank[ids] = F.normalize(mixed, dim=1)

    def effective_negatives(self, batch_size: int) -> int:
        available = self.k + (batch_size - 1 if self.batch_negatives else 0)
        return min(available, self.num_negatives or available)


@torch.no_grad()
def log_mean_exp(pairs: Pairs, tau: float) -> Tensor:
    """log mean exp(s / tau) over every positive and kept negative pair: log(Z / n)."""
    kept = pairs.sim[pairs.pos | pairs.neg] / tau
    return torch.logsumexp(kept, 0) - math.log(len(kept))


@torch.no_grad()
def gathered_log_mean_exp(pairs: Pairs, tau: float) -> Tensor:
    """:func:`log_mean_exp` over the pairs of every process (equal to it on one)."""
    kept = pairs.sim[pairs.pos | pairs.neg] / tau
    lse = torch.logsumexp(kept, 0).reshape(1)
    count = torch.tensor([len(kept)], dtype=kept.dtype, device=kept.device)
    lses, counts = distributed.gather_nograd(lse), distributed.gather_nograd(count)
    return torch.logsumexp(lses, 0) - counts.sum().log()


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
