"""What every method shares: the batch it trains on, how it is built, the registry.

A method is thin wiring: it makes views, positives and negatives and calls an
objective from the registry. Queues, banks and momentum encoders live here, never in
an objective.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from benchmark.objectives import OBJECTIVES, Objective, ObjectiveSpec, build_objective
from benchmark.registry import Registry
from benchmark.sources import NO_OBJECTIVE

# what a method class may name as its ``objectives``, read from the objective registry
ALL_OBJECTIVES: tuple[str, ...] = tuple(sorted(OBJECTIVES.names()))
# the objectives that read a learned critic's score (DIM, DGI, CPC's predictions)
SCORE_OBJECTIVES: tuple[str, ...] = tuple(n for n in ALL_OBJECTIVES if OBJECTIVES.get(n).scores)

METHODS: Registry[type[Method]] = Registry("method")

# an option rule: (what is allowed, in words; a test of a value)
Rule = tuple[str, Callable[[Any], bool]]


def _integer(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


COUNT: Rule = ("an integer >= 1", lambda v: _integer(v) and v >= 1)
NONNEGATIVE: Rule = ("an integer >= 0", lambda v: _integer(v) and v >= 0)
UNIT: Rule = ("a number in [0, 1)", lambda v: _number(v) and 0 <= v < 1)
FLAG: Rule = ("true or false", lambda v: isinstance(v, bool))


def one_of(*choices: Any) -> Rule:
    return (", ".join(map(str, choices)), lambda v: isinstance(v, Hashable) and v in choices)


def or_(first: Rule, second: Rule) -> Rule:
    return (f"{first[0]} or {second[0]}", lambda v: first[1](v) or second[1](v))


@dataclass
class Batch:
    x: Tensor  # (B, ...) samples
    y: Tensor  # (B,) class labels (only `supervised` reads them)
    idx: Tensor  # (B,) positions in the training split (for memory banks)
    x2: Tensor | None = None  # paired second modality (CLIP)
    edge_index: Tensor | None = None  # graphs: x is every node, idx the training nodes


# what the data tells a method: a method asks for a fact by naming it as a keyword-only
# argument without a default (``num_train: int``); the training setup passes it by name
DATA_FACTS = ("input_shape", "num_train", "num_classes", "data_kind", "x2_shape", "make_encoder")

Augment = Callable[[Tensor], Tensor]


class Method(nn.Module):
    """Base class: subclasses set the class attributes and implement ``training_loss``.

    A method is built from its encoder, its augmentation and the objective the training
    setup built for it (None for a method that takes none), then typed keyword-only
    arguments: the data facts it names (:data:`DATA_FACTS`) and its options, each with its
    default, as ``SimCLR(encoder, augment, objective, proj_dim=64)``. The options and their
    defaults are read from that signature (:attr:`option_defaults`), so they are written
    once; :attr:`option_rules` says what each may be.
    """

    objectives: ClassVar[tuple[str, ...]] = ()  # compatible objectives; () = takes none
    default_objective: ClassVar[str] = NO_OBJECTIVE
    data_kinds: ClassVar[tuple[str, ...]] = ("image", "sequence")
    trains: ClassVar[bool] = True
    full_graph: ClassVar[bool] = False
    # derived from ``__init__``'s keyword-only arguments (``__init_subclass__``)
    option_defaults: ClassVar[dict] = {}
    data_needs: ClassVar[tuple[str, ...]] = ()
    # what each option's value may be, beside its default: key -> (allowed, test)
    option_rules: ClassVar[dict[str, Rule]] = {}
    views: ClassVar[int] = 1  # encoder inputs per sample and step (views_per_second)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        params = inspect.signature(cls.__init__).parameters.values()
        keywords = [p for p in params if p.kind is p.KEYWORD_ONLY]
        cls.data_needs = tuple(p.name for p in keywords if p.name in DATA_FACTS)
        options = [p for p in keywords if p.name not in DATA_FACTS]
        bare = [p.name for p in options if p.default is p.empty]
        if bare:
            raise TypeError(
                f"{cls.__name__}: option {bare[0]!r} needs a default (data facts: "
                f"{', '.join(DATA_FACTS)})"
            )
        cls.option_defaults = {p.name: p.default for p in options}

    def __init__(
        self, encoder: nn.Module, augment: Augment, objective: Objective | None = None
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.augment = augment
        self.objective = objective

    @classmethod
    def encoder_settings(cls, options: dict[str, Any]) -> dict[str, Any]:
        """Keyword arguments this method's ``options`` (defaults filled in) add to its
        encoder's builder (DGI's paper preset: a wider GCN)."""
        return {}

    @classmethod
    def objective_settings(
        cls,
        options: dict[str, Any],
        spec: ObjectiveSpec,
        given: dict[str, Any],
        encoder: nn.Module,
    ) -> dict[str, Any]:
        """Keyword arguments this method adds to the objective the setup builds for it,
        from its ``options`` (defaults filled in), the objective's ``spec`` and the
        hyperparameters ``given`` by the cell: a learned critic (DGI), a similarity (CPC),
        a learnable temperature (CLIP). The critic's parameters then belong to the method
        through ``self.objective``."""
        return {}

    @property
    def num_negatives(self) -> int | None:
        """Negatives per anchor the objective keeps (None: all)."""
        return None if self.objective is None else self.objective.num_negatives

    @classmethod
    def check_options(cls, options: dict) -> None:
        """Raise a one-line ValueError naming the method, the option, its value and what is
        allowed (the suite loader calls it too, so a bad suite is refused before it runs)."""
        for key, value in options.items():
            if key not in cls.option_defaults:
                raise ValueError(
                    f"method {cls.name!r} has no option {key!r} (given {value!r}); allowed: "
                    f"{', '.join(sorted(cls.option_defaults)) or 'none'}"
                )
            allowed, ok = cls.option_rules.get(key, ("", None))
            if ok is not None and not ok(value):
                raise ValueError(
                    f"method {cls.name!r}: option {key}={value!r} is not allowed; "
                    f"allowed: {allowed}"
                )

    name: ClassVar[str] = ""

    def training_loss(self, batch: Batch) -> Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def after_step(self, progress: float) -> None:
        """Called after every optimizer step; ``progress`` in [0, 1] over training."""

    def effective_negatives(self, batch_size: int) -> int:
        """Negatives per anchor the objective sees (DESIGN.md's ``negatives`` column)."""
        return 0

    @torch.no_grad()
    def features(self, x: Tensor, edge_index: Tensor | None = None) -> Tensor:
        """Frozen representation for the probes (the encoder output, before any head)."""
        return self.encoder(x) if edge_index is None else self.encoder(x, edge_index)


def register_method(name: str):
    def add(cls: type[Method]) -> type[Method]:
        cls.name = name
        return METHODS.register(name)(cls)

    return add


def assemble_method(
    name: str,
    encoder: nn.Module | Callable[..., nn.Module],
    augment: Augment,
    facts: dict[str, Any],
    *,
    objective: str = NO_OBJECTIVE,
    hyperparameters: dict[str, Any] | None = None,
    num_negatives: int | None = None,
    options: dict[str, Any] | None = None,
) -> Method:
    """Method ``name`` on ``encoder``: its options checked (once, here), the encoder built
    when ``encoder`` is a function (called with :meth:`Method.encoder_settings`, as
    :func:`benchmark.train.build_method` passes it), the objective built once (the cell's
    ``hyperparameters`` and what :meth:`Method.objective_settings` adds), the data
    ``facts`` it names passed by name."""
    cls = METHODS.get(name)
    cls.check_options(options or {})
    options = {**cls.option_defaults, **(options or {})}
    if not isinstance(encoder, nn.Module):
        encoder = encoder(**cls.encoder_settings(options))
    built = None
    if objective != NO_OBJECTIVE:
        given = dict(hyperparameters or {})
        extra = cls.objective_settings(options, OBJECTIVES.get(objective), given, encoder)
        built = build_objective(objective, num_negatives=num_negatives, **{**given, **extra})
    return cls(encoder, augment, built, **{k: facts[k] for k in cls.data_needs}, **options)


def check_compatible(method: str, objective: str, data_kind: str | None = None) -> None:
    """Raise ValueError with the compatible objectives when a pair makes no sense."""
    cls = METHODS.get(method)
    if objective != NO_OBJECTIVE and objective not in OBJECTIVES:
        OBJECTIVES.get(objective)  # raises with the list of valid names
    allowed = cls.objectives or (NO_OBJECTIVE,)
    if objective not in allowed:
        raise ValueError(
            f"method {method!r} cannot use objective {objective!r}; compatible: "
            f"{', '.join(allowed)}"
        )
    if data_kind is not None and data_kind not in cls.data_kinds:
        raise ValueError(
            f"method {method!r} cannot train on {data_kind} data; it needs: "
            f"{', '.join(cls.data_kinds)}"
        )


def momentum_copy(module: nn.Module) -> nn.Module:
    """A frozen copy updated by exponential moving average (MoCo, BYOL targets)."""
    target = copy.deepcopy(module)
    for p in target.parameters():
        p.requires_grad_(False)
    return target


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, momentum: float) -> None:
    for t, o in zip(target.parameters(), online.parameters(), strict=True):
        t.mul_(momentum).add_(o.detach(), alpha=1.0 - momentum)
    for t, o in zip(target.buffers(), online.buffers(), strict=True):
        t.copy_(o)


def two_views(method: Method, x: Tensor) -> tuple[Tensor, Tensor]:
    return method.augment(x), method.augment(x)


def instance_labels(batch_size: int, views: int, device: torch.device) -> Tensor:
    return torch.arange(batch_size, device=device).repeat(views)
