"""Contrastive Predictive Coding (van den Oord et al. 2018) on sequences."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchmark.methods.base import (
    COUNT,
    SCORE_OBJECTIVES,
    Augment,
    Batch,
    Method,
    Objective,
    one_of,
    or_,
    register_method,
)

NEGATIVE_POOLS = ("batch", "all")
TARGET_VIEWS = ("same", "independent")
CRITICS = ("bilinear", "cosine")
FEATURES = ("context", "context_mean", "pooled")
NCE_NORMALIZERS = ("learned", "fixed", "batch")


def conv_geometry(encoder: nn.Module, length: int) -> tuple[int, int, int]:
    """(receptive field, stride, number of steps) of ``encoder.local`` on ``length`` samples.

    Walks the encoder's 1-D convolutions and poolings in registration order (the forward
    order of a sequential trunk such as ``cnn1d``'s): a layer of kernel k, dilation d and
    stride s grows the receptive field by (k - 1) * d * (product of the earlier strides).
    For ``cnn1d`` (kernel 5, strides 1, 2, 2, padding 2): 5 -> 5 + 4*1 = 9 -> 9 + 4*2 = 17
    samples, stride 1*2*2 = 4, and 40 -> 40 -> 20 -> 10 steps; z_t sees the input samples
    4t - 8 .. 4t + 8.
    """
    rf, jump, found = 1, 1, False
    for m in encoder.modules():
        if not isinstance(m, (nn.Conv1d, nn.MaxPool1d, nn.AvgPool1d)):
            continue
        found = True
        k, s, p, d = (
            _first(getattr(m, a, 1)) for a in ("kernel_size", "stride", "padding", "dilation")
        )
        if not isinstance(p, int):
            raise ValueError(f"cpc: cannot work out the geometry of {m} (padding {p!r})")
        rf += (k - 1) * d * jump
        jump *= s
        length = (length + 2 * p - d * (k - 1) - 1) // s + 1
    if not found:
        raise ValueError("cpc: the encoder has no 1-D convolution to take time steps from")
    return rf, jump, length


def _first(v):
    return v[0] if isinstance(v, tuple) else v


def nce_given_z(pairs, tau: float, log_z: Tensor) -> Tensor:
    """The registered ``nce`` objective's formula (one data pair per anchor) with the
    normaliser given instead of estimated on the batch: logit = s/tau - log_z - log k,
    L = mean_i [softplus(-logit(data)) + sum_noise softplus(logit)]. Written here, not
    imported, so that an edit of it retrains the CPC cells (their code digest is this file's)."""
    log_k = pairs.n_neg.clamp_min(1).to(pairs.sim.dtype).log()
    anchors, cols = pairs.pos_index
    logit_pos = pairs.sim[anchors, cols] / tau - log_z - log_k[anchors]
    logit = torch.where(pairs.neg, pairs.sim / tau - log_z - log_k[:, None], -math.inf)
    return F.softplus(-logit_pos).mean() + F.softplus(logit).sum(1)[anchors].mean()


@register_method("cpc")
class CPC(Method):
    """z_t = the encoder's per-step features, c_t = GRU(z_<=t); for each horizon k the
    prediction W_k c_t must pick z_{t+k} of its own sequence (eq. 4 of the paper).

    Defaults are the paper's setting; the options name the variants.

    - Horizons: ``horizons`` of them, k = k0, ..., k0 + horizons - 1. ``first_horizon="auto"``
      (default) is the smallest k0 for which the receptive field of the target z_{t+k} does
      not overlap that of the context's last step z_t (which c_t has read): the windows of
      z_t and z_{t+k} are ``stride * k`` samples apart, so they are disjoint when
      ``k >= ceil(receptive_field / stride)``. For ``cnn1d`` (receptive field 17 samples,
      stride 4, 10 steps on mnist1d's 40 samples) k0 = ceil(17 / 4) = 5: z_{t+5} sees
      samples 4t + 12 .. 4t + 28, c_t at most up to sample 4t + 8 (three samples apart). With
      k <= 4 the target shares 17 - 4k input samples with the context, which can then be
      "predicted" by copying the overlap. Default k = 5, 6, 7 (5 + 4 + 3 anchors per
      sequence). An integer sets k0 (1 = the paper's k = 1, 2, ...).
    - ``critic="bilinear"`` (the paper's log-bilinear model f_k(x_{t+k}, c_t) =
      exp(z_{t+k}^T W_k c_t)): the objective scores the dot product of z with W_k c, with no
      normalisation and no temperature (1; a temperature given explicitly, e.g. by tuning, is
      honoured: it only rescales W_k). ``"cosine"``: cos(W_k c_t, z_{t+k}) over the
      objective's temperature (as SimCLR scores its views).
    - ``negatives="batch"`` (the paper's: negatives from other sequences): the candidates of
      W_k c_t are z_{t+k} of every sequence in the batch, so the B - 1 negatives share the
      position and only the content can tell them apart. ``"all"``: every z_s of every
      sequence, other time steps included (B*T - 1; cheap shortcuts through position are then
      available to the encoder).
    - ``target_view="same"`` (the paper's): context and targets come from one (augmented)
      view, so the target for (t, k) is exactly the latent at t + k of the sequence the
      context read. ``"independent"``: the targets come from a second, independently
      augmented view (as in CPC v2, Henaff et al. 2020); mnist1d's augmentation shifts each
      view by up to 4 samples and dilates it by 10%, so the two views' step t can be up to
      ~3 latent steps (12 samples at the edges) apart and the targets are misaligned.
    - ``features="context_mean"`` (default): the probes read the context network, as in the
      paper (which probes c_t, mean-pooled over positions on images): the mean over t of c_t.
      ``"context"``: the last step's c_T only. It has read the whole sequence but is never
      trained to predict (with k >= 5 only c_0..c_4 have targets on mnist1d), and probes
      worse: 74.9 / 78.3 / 75.1% against 82.0 / 81.9 / 77.9% for the mean (InfoNCE, mnist1d
      4000 samples, B=64, lr 5e-3, 6 epochs, seeds 0-2). ``"pooled"``: the encoder's
      pooled z (what the other methods probe).
    - ``nce_normalizer`` (objective ``nce`` with the bilinear critic only): NCE (Gutmann &
      Hyvarinen 2010) classifies data against k noise samples with the logit
      log f_k - log Z - log k. ``"learned"`` (default, the NCE paper's: the normalisation
      constant is estimated like any other parameter -- one log Z_k per horizon, initialised
      at 0, trained with the rest). ``"fixed"``: Z estimated on the first batch and then kept (Wu
      et al. 2018, as NPID does). ``"batch"``: the registered ``nce`` objective's own Monte
      Carlo estimate, re-taken on every batch without a gradient. That one suits the bounded
      cosine / temperature score it was written for, not the unbounded z^T W_k c: a shift
      of every score moves the estimate with it, so the loss has no restoring force on the
      overall scale, and log mean exp is pulled towards the largest score, so the positives'
      logits sit far below 0 and push every score up. On mnist1d (B=64, lr 5e-3, 8 epochs,
      seed 0) the scores, ~1 for three epochs, reach ~10^3 in epoch 4 and ~3 * 10^4 by epoch
      8 (positives and noise alike), the GRU saturates (|c_t| = sqrt(128)) and the probe falls
      to chance: 14.6% ("batch") against 83.0% ("learned"; the untrained encoder 77.9%).
    """

    objectives = SCORE_OBJECTIVES
    default_objective = "infonce"
    data_kinds = ("sequence",)
    option_rules = {
        "horizons": COUNT,
        "first_horizon": or_(one_of("auto"), COUNT),
        "context_dim": COUNT,
        "negatives": one_of(*NEGATIVE_POOLS),
        "target_view": one_of(*TARGET_VIEWS),
        "critic": one_of(*CRITICS),
        "features": one_of(*FEATURES),
        "nce_normalizer": one_of(*NCE_NORMALIZERS),
    }

    def __init__(
        self,
        encoder: nn.Module,
        augment: Augment,
        objective: Objective | None = None,
        *,
        input_shape: tuple[int, ...],
        horizons: int = 3,
        first_horizon: int | str = "auto",
        context_dim: int = 128,
        negatives: str = "batch",
        target_view: str = "same",
        critic: str = "bilinear",
        features: str = "context_mean",
        nce_normalizer: str = "learned",
    ) -> None:
        super().__init__(encoder, augment, objective)
        self.receptive_field, self.stride, self.steps = conv_geometry(encoder, input_shape[-1])
        first = first_horizon
        k0 = math.ceil(self.receptive_field / self.stride) if first == "auto" else first
        self.ks = tuple(range(k0, k0 + horizons))
        self.horizons = horizons
        self.negatives, self.target_view, self.feature_mode = negatives, target_view, features
        if self.ks[-1] >= self.steps:
            raise ValueError(
                f"cpc: horizons k = {self.ks[0]}..{self.ks[-1]} need more than the "
                f"{self.steps} time steps the encoder gives"
            )
        d, c = encoder.out_dim, context_dim
        self.context = nn.GRU(d, c, batch_first=True)
        # W_k for every horizon as one linear map c_t -> (K, D): one matmul for all of them
        self.predictor = nn.Linear(c, self.horizons * d, bias=False)
        self.views = 2 if target_view == "independent" else 1
        # NCE's normaliser log Z_k (one per horizon) when it is not the objective's own
        # per-batch estimate: a parameter ("learned") or set on the first batch ("fixed")
        nce = objective is not None and objective.name == "nce"
        self.nce_mode = nce_normalizer if nce and critic == "bilinear" else "batch"
        if self.nce_mode == "learned":
            self.log_z = nn.Parameter(torch.zeros(self.horizons))
        elif self.nce_mode == "fixed":
            self.register_buffer("log_z", torch.full((self.horizons,), math.nan))

    @classmethod
    def objective_settings(cls, options, spec, given, encoder):
        if options["critic"] == "cosine":
            return {"similarity": "cosine", "normalize": False}
        # log-bilinear: z^T (W_k c) as it is; a temperature only if one was asked for
        unscaled = "temperature" in spec.hyperparameters and "temperature" not in given
        return {
            "similarity": "dot",
            "normalize": False,
            **({"temperature": 1.0} if unscaled else {}),
        }

    def latents_and_contexts(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(z, c), each (B, T, .): z_t the encoder's steps, c_t = GRU(z_0, ..., z_t)."""
        z = self.encoder.local(x).transpose(1, 2)
        c, _ = self.context(z)
        return z, c

    def training_loss(self, batch: Batch) -> Tensor:
        z, c = self.latents_and_contexts(self.augment(batch.x))  # (B, T, D), (B, T, C)
        if self.target_view == "independent":
            target = self.encoder.local(self.augment(batch.x)).transpose(1, 2)
        else:
            target = z  # the paper: z_{t+k} of the very sequence the context read
        b, t, d = z.shape
        pred = self.predictor(c).view(b, t, self.horizons, d)  # pred[:, s, j] -> z_{s+ks[j]}
        if self.negatives == "batch":
            return self._batch_negatives(pred, target)
        return self._all_negatives(pred, target)

    def _batch_negatives(self, pred: Tensor, target: Tensor) -> Tensor:
        """One objective call per (horizon, step): anchors W_k c_s of every sequence,
        candidates z_{s+k} of every sequence, positive on the diagonal."""
        b, t, _ = target.shape
        labels = torch.arange(b, device=target.device)
        # unbind, not indexing: the backward of each index would zero-fill a full-size grad
        preds = [p.unbind(1) for p in pred.unbind(2)]  # preds[j][s]: (B, D)
        targets = target.unbind(1)
        losses = [
            self._loss(j, preds[j][s], labels, targets[s + k], labels)
            for j, k in enumerate(self.ks)
            for s in range(t - k)
        ]
        return torch.stack(losses).mean()

    def _all_negatives(self, pred: Tensor, target: Tensor) -> Tensor:
        """One objective call per horizon: candidates are every z of the batch."""
        b, t, d = target.shape
        candidates = target.reshape(b * t, d)
        cand_labels = torch.arange(b * t, device=target.device)
        steps = torch.arange(t, device=target.device)
        losses = []
        for j, k in enumerate(self.ks):
            anchors = pred[:, : t - k, j].reshape(-1, d)
            labels = (torch.arange(b, device=target.device)[:, None] * t + steps[k:]).reshape(-1)
            losses.append(self._loss(j, anchors, labels, candidates, cand_labels))
        return torch.stack(losses).mean()

    def _loss(self, j: int, anchors, labels, candidates, cand_labels) -> Tensor:
        """The objective for horizon ``ks[j]``; NCE with this method's normaliser log Z_j."""
        if self.nce_mode == "batch":
            return self.objective(anchors, labels, candidates, cand_labels)
        pairs = self.objective.pairs(anchors, labels, candidates, cand_labels)
        tau = self.objective.hparams["temperature"]
        if self.nce_mode == "fixed" and torch.isnan(self.log_z[j]):
            with torch.no_grad():  # log mean exp over the data and noise pairs: log(Z / n)
                kept = pairs.sim[pairs.pos | pairs.neg] / tau
                self.log_z[j] = torch.logsumexp(kept, 0) - math.log(len(kept))
        return nce_given_z(pairs, tau, self.log_z[j])

    @torch.no_grad()
    def features(self, x: Tensor, edge_index: Tensor | None = None) -> Tensor:
        mode = self.feature_mode
        if mode == "pooled":
            return self.encoder(x)
        _, c = self.latents_and_contexts(x)
        return c[:, -1] if mode == "context" else c.mean(1)

    def effective_negatives(self, batch_size: int) -> int:
        if self.negatives == "batch":
            available = batch_size - 1
        else:
            available = batch_size * self.steps - 1  # B * T candidates
        return min(available, self.num_negatives or available)
