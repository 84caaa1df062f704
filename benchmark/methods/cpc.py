"""Contrastive Predictive Coding (van den Oord et al. 2018) on sequences."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from benchmark.methods.base import SCORE_OBJECTIVES, Batch, Context, Method, register_method

NEGATIVE_POOLS = ("batch", "all")
TARGET_VIEWS = ("independent", "same")


@register_method("cpc")
class CPC(Method):
    """z_t = the encoder's per-step features, c_t = GRU(z_<=t); for each horizon
    k = 1..``horizons`` the prediction W_k c_t must pick z_{t+k} of its own sequence.

    Options:

    - ``negatives="batch"`` (the paper's setting, eq. 4 with negatives from other
      sequences): the candidates of W_k c_t are z_{t+k} of every sequence in the batch,
      so the B - 1 negatives share the position and only the content can tell them apart.
      ``"all"``: every z_s of every sequence, other time steps included (B*T - 1; cheap
      shortcuts through position are then available to the encoder).
    - ``target_view="independent"``: the targets z_{t+k} come from a second, independently
      augmented view of the sequence (as in CPC v2, Henaff et al. 2020), so matching
      low-level noise between context and target does not solve the task. ``"same"``: one
      view for both (the original).
    """

    objectives = SCORE_OBJECTIVES
    default_objective = "infonce"
    data_kinds = ("sequence",)
    option_defaults = {
        "horizons": 3,
        "context_dim": 128,
        "negatives": "batch",
        "target_view": "independent",
    }

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        opts = self.options
        for key, allowed in (("negatives", NEGATIVE_POOLS), ("target_view", TARGET_VIEWS)):
            if opts[key] not in allowed:
                raise ValueError(f"cpc option {key}={opts[key]!r}; allowed: {', '.join(allowed)}")
        if int(opts["horizons"]) < 1:
            raise ValueError(f"cpc option horizons={opts['horizons']!r}; allowed: >= 1")
        self.horizons = int(opts["horizons"])
        d, c = ctx.encoder.out_dim, opts["context_dim"]
        self.context = nn.GRU(d, c, batch_first=True)
        # W_1..W_K as one linear map c_t -> (K, D): one matmul for every horizon
        self.predictor = nn.Linear(c, self.horizons * d, bias=False)
        self.views = 2 if opts["target_view"] == "independent" else 1

    def training_loss(self, batch: Batch) -> Tensor:
        z = self.encoder.local(self.augment(batch.x)).transpose(1, 2)  # (B, T, D)
        if self.options["target_view"] == "independent":
            target = self.encoder.local(self.augment(batch.x)).transpose(1, 2)
        else:
            target = z
        b, t, d = z.shape
        if self.horizons >= t:
            raise ValueError(f"cpc: horizons={self.horizons} needs sequences longer than {t} steps")
        c, _ = self.context(z)  # (B, T, C)
        pred = self.predictor(c).view(b, t, self.horizons, d)  # pred[:, s, k-1] -> z_{s+k}
        if self.options["negatives"] == "batch":
            return self._batch_negatives(pred, target)
        return self._all_negatives(pred, target)

    def _batch_negatives(self, pred: Tensor, target: Tensor) -> Tensor:
        """One objective call per (horizon, step): anchors W_k c_s of every sequence,
        candidates z_{s+k} of every sequence, positive on the diagonal."""
        b, t, _ = target.shape
        labels = torch.arange(b, device=target.device)
        # unbind, not indexing: the backward of each index would zero-fill a full-size grad
        preds = [p.unbind(1) for p in pred.unbind(2)]  # preds[k-1][s]: (B, D)
        targets = target.unbind(1)
        losses = [
            self.objective(preds[k - 1][s], labels, targets[s + k], labels)
            for k in range(1, self.horizons + 1)
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
        for k in range(1, self.horizons + 1):
            anchors = pred[:, : t - k, k - 1].reshape(-1, d)
            labels = (torch.arange(b, device=target.device)[:, None] * t + steps[k:]).reshape(-1)
            losses.append(self.objective(anchors, labels, candidates, cand_labels))
        return torch.stack(losses).mean()

    def effective_negatives(self, batch_size: int) -> int:
        if self.options["negatives"] == "batch":
            available = batch_size - 1
        else:
            available = batch_size * 10 - 1  # B * T candidates (T = 10 steps for mnist1d)
        return min(available, self.num_negatives or available)
