"""Deep Graph Infomax (Velickovic et al. 2019): real vs feature-shuffled graph."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from benchmark.methods.base import (
    COUNT,
    NONNEGATIVE,
    SCORE_OBJECTIVES,
    Augment,
    Batch,
    Method,
    Objective,
    one_of,
    or_,
    register_method,
)

# the paper's transductive setting (Cora, Citeseer, Pubmed; sec. 4.3 and the reference
# code): a 1-layer GCN of 512 units with a PReLU (one shared slope, ``nn.PReLU()``),
# early stopping on the training loss with a patience of 20 epochs
PRESETS: dict[str, dict] = {
    "none": {},
    "paper": {"hidden": 512, "patience": 20, "shared_prelu": True},
}


class BilinearCritic(nn.Module):
    """D(h, s) = h^T W s (Velickovic et al. 2019, eq. 7), for every (summary, node) pair."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(dim, dim))
        nn.init.xavier_uniform_(self.weight)

    def forward(self, summaries: Tensor, nodes: Tensor) -> Tensor:
        return summaries @ self.weight.T @ nodes.T  # (S, N): [s, j] = h_j^T W s


class EarlyStopping:
    """The reference code's loop: the parameters at the lowest training loss are kept;
    after ``patience`` steps without a lower loss training stops (no further update);
    the kept parameters are the result."""

    def __init__(self, patience: int) -> None:
        self.patience = patience
        self.best = math.inf
        self.wait = 0
        self.stopped = False
        self.state: dict[str, Tensor] | None = None

    def update(self, loss: float, module: nn.Module) -> None:
        """Record the loss of ``module``'s current parameters (before their update)."""
        if loss < self.best:
            self.best, self.wait = loss, 0
            self.state = {k: v.detach().clone() for k, v in module.state_dict().items()}
        else:
            self.wait += 1
            self.stopped = self.wait >= self.patience

    @torch.no_grad()
    def restore(self, module: nn.Module) -> None:
        if self.state is not None:
            module.load_state_dict(self.state)


@register_method("dgi")
class DGI(Method):
    """Summary s = sigmoid(mean of node embeddings) is the anchor (the readout, eq. 6); the
    real graph's nodes are its positives, the nodes of the corrupted graph (the rows of X
    permuted, the same edges) its negatives, scored by the bilinear critic D(h, s).
    With ``jsd`` (the default) the loss is exactly the paper's binary cross-entropy
    (eq. 1), half the JSD estimator of the same scores (N real and N corrupted nodes).

    Options:

    - ``preset``: ``"none"`` (the encoder as configured, no early stopping) or
      ``"paper"`` (:data:`PRESETS`: the GCN built with 512 units and a shared PReLU,
      early stopping with patience 20). The optimiser is the training loop's: set the
      cell's ``lr: 0.001`` (the paper's Adam rate); the loop's weight decay (1e-5) and
      warm-up/cosine schedule stay (the paper: none, a constant rate).
    - ``hidden``: build the GCN with this many units (None: the preset's, or as configured);
    - ``patience`` (None: the preset's, else 0): early stopping on the training loss
      after this many epochs without improvement, the best parameters restored (0: off).

    ``hidden`` and ``patience`` given explicitly override the preset's.
    """

    objectives = SCORE_OBJECTIVES
    default_objective = "jsd"
    data_kinds = ("graph",)
    full_graph = True
    option_rules = {
        "preset": one_of(*PRESETS),
        "hidden": or_(("null", lambda v: v is None), COUNT),
        "patience": or_(("null", lambda v: v is None), NONNEGATIVE),
    }

    def __init__(
        self,
        encoder: nn.Module,
        augment: Augment,
        objective: Objective | None = None,
        *,
        preset: str = "none",
        hidden: int | None = None,
        patience: int | None = None,
    ) -> None:
        super().__init__(encoder, augment, objective)
        patience = _settings(preset, hidden, patience).get("patience", 0)
        self.stopping = EarlyStopping(patience) if patience else None

    @property
    def critic(self) -> BilinearCritic:
        return self.objective.critic

    @classmethod
    def encoder_settings(cls, options):
        """The preset's GCN (width, shared PReLU), a ``hidden`` given explicitly over it."""
        s = _settings(options["preset"], options["hidden"], options["patience"])
        return {k: s[k] for k in ("hidden", "shared_prelu") if s.get(k) is not None}

    @classmethod
    def objective_settings(cls, options, spec, given, encoder):
        return {"similarity": BilinearCritic(encoder.out_dim), "normalize": False}

    @staticmethod
    def corrupt(x: Tensor, edge_index: Tensor) -> tuple[Tensor, Tensor]:
        """The paper's corruption C: a row permutation of X, the same edges."""
        return x[torch.randperm(len(x), device=x.device)], edge_index

    @staticmethod
    def readout(h: Tensor) -> Tensor:
        """R(H) = sigmoid(mean_i h_i) (eq. 6), as a (1, D) summary."""
        return torch.sigmoid(h.mean(0, keepdim=True))

    def dgi_loss(self, batch: Batch) -> Tensor:
        x, edge_index = batch.x, batch.edge_index
        h = self.encoder(x, edge_index)
        h_corrupt = self.encoder(*self.corrupt(x, edge_index))
        s = self.readout(h)
        n = len(x)
        labels = torch.cat([torch.zeros(n, dtype=torch.long), torch.ones(n, dtype=torch.long)])
        loss = self.objective(
            s,
            torch.zeros(1, dtype=torch.long, device=x.device),
            torch.cat([h, h_corrupt]),
            labels.to(x.device),
        )
        # jsd = mean sp(-D) over real + mean sp(D) over corrupted = twice eq. 1's BCE
        return 0.5 * loss if self.objective.name == "jsd" else loss

    def training_loss(self, batch: Batch) -> Tensor:
        stop = self.stopping
        if stop is not None and stop.stopped:
            return self._frozen(stop.best)
        loss = self.dgi_loss(batch)
        if stop is not None:
            stop.update(loss.item(), self)
            if stop.stopped:  # as the reference loop: no update from this epoch's loss
                return self._frozen(stop.best)
        return loss

    def _frozen(self, value: float) -> Tensor:
        """A loss of ``value`` with zero gradients (``after_step`` undoes the step)."""
        return self.critic.weight.sum() * 0.0 + value

    @torch.no_grad()
    def after_step(self, progress: float) -> None:
        stop = self.stopping
        if stop is not None and (stop.stopped or progress >= 1.0):
            stop.restore(self)  # training ends with the lowest-loss parameters

    def effective_negatives(self, batch_size: int) -> int:
        # the summary is scored against every node of the corrupted graph (or K of them)
        return min(batch_size, self.num_negatives or batch_size)


def _settings(preset: str, hidden: int | None, patience: int | None) -> dict:
    """The preset's settings, then the options given explicitly (None: not given)."""
    given = {"hidden": hidden, "patience": patience}
    return {**PRESETS[preset], **{k: v for k, v in given.items() if v is not None}}
