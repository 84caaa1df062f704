"""CLIP-style two towers (Radford et al. 2021) on instance-paired modalities."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from benchmark import distributed
from benchmark.encoders import mlp_head
from benchmark.methods.base import (
    ALL_OBJECTIVES,
    COUNT,
    FLAG,
    Augment,
    Batch,
    Method,
    Objective,
    one_of,
    register_method,
)
from benchmark.objectives import pairwise_similarity

# "clipped to prevent scaling the logits by more than 100" (Radford et al. 2021, sec. 2.5)
MAX_LOGIT_SCALE = math.log(100.0)
PROJECTIONS = ("linear", "mlp")


class LearnedTemperature(nn.Module):
    """A similarity whose scale is a learned temperature, for an objective built with a
    fixed one.

    The objectives divide their similarity by the temperature ``T0`` fixed when they are
    built. This critic returns ``s(x, y) * T0 * exp(logit_scale)``, so the objective's
    logits are ``s(x, y) * exp(logit_scale) = s(x, y) / T`` with ``T = exp(-logit_scale)``
    learned: CLIP's log-parameterised temperature (``logit_scale = log(1 / T)``),
    initialised at ``T0`` (the loss at initialisation is the fixed-temperature loss) and
    clamped at ``logit_scale <= log 100`` (``T >= 0.01``).
    """

    def __init__(self, metric: str, temperature: float) -> None:
        super().__init__()
        self.metric = metric
        self.base = float(temperature)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / self.base)))

    def scale(self) -> Tensor:
        """exp(logit_scale), the clamp applied (no gradient beyond it)."""
        return self.logit_scale.clamp(max=MAX_LOGIT_SCALE).exp()

    @property
    def temperature(self) -> float:
        return 1.0 / float(self.scale().detach())

    @torch.no_grad()
    def clamp_(self) -> None:
        self.logit_scale.clamp_(max=MAX_LOGIT_SCALE)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return pairwise_similarity(x, y, self.metric) * (self.base * self.scale())

    def extra_repr(self) -> str:
        return f"{self.metric}, T0={self.base:g}"


@register_method("clip")
class CLIP(Method):
    """Tower A encodes x (probed), tower B encodes the paired x2; each tower's features
    go through a projection into the shared space, and a pair is positive iff it comes
    from the same instance. The loss is symmetric over the two towers: the mean of the
    objective with A's embeddings as anchors and B's as candidates, and the reverse (with
    ``infonce``: the symmetric cross-entropy of the paper's Figure 3).

    Options (defaults follow the paper):

    - ``learn_temperature=True``: the temperature is a learned parameter
      (:class:`LearnedTemperature`), initialised at the objective's temperature (the
      configured or tuned value) and clamped at T >= 0.01. It applies to the objectives
      that have a temperature (infonce, ntxent, nce); the others have none to learn.
      ``False``: fixed at the objective's temperature (for temperature studies).
    - ``projection="linear"``: a linear map, no bias, from each tower's features to the
      ``proj_dim``-dimensional shared space (the paper's W_i, W_t); ``"mlp"``: a
      Linear-BN-ReLU-Linear head with ``proj_hidden`` hidden units (the SimCLR projector).

    Rows report the configured (initial) temperature; :attr:`learned_temperature` is the
    current value of the learned one.
    """

    objectives = ALL_OBJECTIVES
    default_objective = "infonce"
    option_rules = {
        "proj_dim": COUNT,
        "proj_hidden": COUNT,
        "projection": one_of(*PROJECTIONS),
        "learn_temperature": FLAG,
    }

    def __init__(
        self,
        encoder: nn.Module,
        augment: Augment,
        objective: Objective | None = None,
        *,
        x2_shape: tuple[int, ...] | None,
        make_encoder: Callable[[tuple[int, ...]], nn.Module],
        proj_dim: int = 64,
        proj_hidden: int = 256,
        projection: str = "linear",
        learn_temperature: bool = True,
    ) -> None:
        super().__init__(encoder, augment, objective)
        if x2_shape is None:
            raise ValueError(
                "method 'clip' needs a paired dataset (one with x2), e.g. mnist1d_pairs"
            )
        self.tower_b = make_encoder(x2_shape)
        self.proj_a = _projection(encoder.out_dim, projection, proj_hidden, proj_dim)
        self.proj_b = _projection(self.tower_b.out_dim, projection, proj_hidden, proj_dim)

    @classmethod
    def objective_settings(cls, options, spec, given, encoder):
        """A learnable temperature, initialised from the cell's (or the objective's
        default), scaling the objective's own metric."""
        if not options["learn_temperature"] or "temperature" not in spec.hyperparameters:
            return {}
        start = given.get("temperature", spec.hyperparameters["temperature"])
        return {"similarity": LearnedTemperature(spec.metric, start)}

    @property
    def temperature_critic(self) -> LearnedTemperature | None:
        critic = getattr(self.objective, "critic", None)
        return critic if isinstance(critic, LearnedTemperature) else None

    @property
    def learned_temperature(self) -> float | None:
        """The current learned temperature; None when it is fixed."""
        critic = self.temperature_critic
        return None if critic is None else critic.temperature

    def training_loss(self, batch: Batch) -> Tensor:
        a = self.proj_a(self.encoder(self.augment(batch.x)))
        b = self.proj_b(self.tower_b(batch.x2))
        ids = batch.idx
        if distributed.is_distributed():  # local anchors vs every process's other tower
            all_a, all_b = distributed.gather(a), distributed.gather(b)
            all_ids = distributed.gather_nograd(ids)
            return 0.5 * (
                self.objective(a, ids, all_b, all_ids) + self.objective(b, ids, all_a, all_ids)
            )
        return 0.5 * (self.objective(a, ids, b, ids) + self.objective(b, ids, a, ids))

    @torch.no_grad()
    def after_step(self, progress: float) -> None:
        critic = self.temperature_critic
        if critic is not None:
            critic.clamp_()  # the parameter itself stays within the clip (as OpenCLIP)

    def effective_negatives(self, batch_size: int) -> int:
        # each anchor of either direction: the other tower's B - 1 other instances
        return min(batch_size - 1, self.num_negatives or batch_size)


def _projection(d_in: int, kind: str, hidden: int, out: int) -> nn.Module:
    if kind == "linear":
        return nn.Linear(d_in, out, bias=False)
    return mlp_head(d_in, hidden, out)
