"""Method and dataset option values, judged by the option's default (the registries hold
no schema), and the method's own ``check_options`` rules."""

from __future__ import annotations

import math
from typing import Any

from benchmark.config.models import (
    MAX_DATASET_OPTION,
    MAX_OPTION,
    MAX_SEED,
    ConfigError,
    _shown,
    one_line,
)


def _bad_value(where: str, value: Any, allowed: str) -> ConfigError:
    return ConfigError(one_line(f"{where}: {_shown(value)} is not allowed; allowed: {allowed}"))


def check_value(where: str, key: str, value: Any, default: Any, *, maximum: int) -> None:
    """``value`` of option ``key`` has the kind of its ``default``: a bool takes true/false;
    an integer default >= 1 (a size, a count) integers >= 1, a 0 integers >= 0 (seeds
    too); a float a finite number (a ``*_fraction`` one in [0, 1)); a string a string
    unless the option also takes numbers (defaults such as "auto"). None: anything but an
    integer beyond ``maximum``."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise _bad_value(where, value, "true or false")
    elif isinstance(default, int):
        low = 0 if default < 1 or key.endswith("seed") else 1
        high = MAX_SEED if key.endswith("seed") else maximum
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise _bad_value(where, value, f"an integer in [{low}, {high}]")
    elif isinstance(default, float):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not ok or not math.isfinite(value):
            raise _bad_value(where, value, "a finite number")
        if key.endswith("_fraction") and not 0 <= value < 1:
            raise _bad_value(where, value, "a fraction in [0, 1)")
    elif isinstance(default, str):
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise _bad_value(where, value, "a string")
    # whatever the default (None: "chosen by the method"), an integer past the bound is a
    # typo that would only show as a failed allocation
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > maximum:
        high = MAX_SEED if key.endswith("seed") else maximum
        if abs(value) > high:
            raise _bad_value(where, value, f"an integer of at most {high}")


def _at(where: str, key: str) -> str:
    """``where.key`` in a file, ``--flag key`` on the command line."""
    return f"{where} {key}" if where.startswith("--") else f"{where}.{key}"


def check_method_options(method: str, options: dict, where: str) -> None:
    """Option names against the method's ``option_defaults``; then the method's own
    ``check_options(options)`` (its rules, one-line ValueErrors); then, for what its rules
    leave open, the value against the option's default (:func:`check_value`: K=0 or a
    string where a size goes is refused even by a method that declares no rule)."""
    from benchmark.methods import METHODS

    cls = METHODS.get(method)
    defaults = cls.option_defaults
    for key in options:
        if key not in defaults:
            raise ConfigError(
                f"{where}: method {method!r} has no option {key!r}; "
                f"allowed: {', '.join(sorted(defaults)) or 'none'}"
            )
    check = getattr(cls, "check_options", None)
    if callable(check):
        try:
            check(dict(options))
        except (ValueError, TypeError, KeyError) as err:
            raise ConfigError(one_line(f"{where}: {err.args[0] if err.args else err}")) from None
    for key, value in options.items():
        check_value(_at(where, key), key, value, defaults[key], maximum=MAX_OPTION)


def check_dataset_options(dataset: str, options: dict, where: str) -> None:
    """Option names against the dataset builder's keyword arguments, values against their
    defaults (the builder checks the rest when it runs)."""
    from benchmark.datasets import dataset_options

    try:
        defaults = dataset_options(dataset)
        full = dataset_options(dataset, **options)
    except TypeError as err:
        raise ConfigError(one_line(f"{where}: {err}")) from None
    for key, value in options.items():
        check_value(_at(where, key), key, value, defaults[key], maximum=MAX_DATASET_OPTION)
    # the held-out fractions leave something to train on
    fractions = {k: v for k, v in full.items() if k.endswith("_fraction")}
    if len(fractions) > 1 and sum(fractions.values()) >= 1:
        shown = " + ".join(f"{k} {v:g}" for k, v in fractions.items())
        raise ConfigError(
            f"{where}: {shown} leaves no training data; allowed: fractions summing to < 1"
        )
