"""Reading suites and params.yaml: YAML (a key given twice refused), validation, and the
one-line ``ConfigError`` a pydantic error becomes."""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from benchmark.config.cells import block_objectives, pair_name
from benchmark.config.models import (
    SUITES_DIR,
    ConfigError,
    Params,
    Suite,
    _shown,
    one_line,
    suite_path,
)
from benchmark.config.validation import validate_names


def _model_at(model: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    """The model class that holds the last key of ``loc`` (for 'unknown key' messages)."""
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return None
        inner = [
            t
            for t in (field.annotation, *typing.get_args(field.annotation))
            if isinstance(t, type) and issubclass(t, BaseModel)
        ]
        if not inner:
            return None
        model = inner[0]
    return model


def _one_line(
    err: ValidationError, source: str, model: type[BaseModel] | None = None
) -> ConfigError:
    e = err.errors()[0]
    loc_parts = tuple(p for p in e["loc"] if p != "[key]")
    loc = ".".join(str(p) for p in loc_parts)
    value = e.get("input")
    msg = e["msg"].removeprefix("Value error, ")
    if e["type"] == "extra_forbidden":
        holder = _model_at(model, loc_parts) if model is not None else None
        allowed = f"; allowed: {', '.join(holder.model_fields)}" if holder is not None else ""
        msg = f"unknown key{allowed}"
    elif e["type"] == "missing":
        msg = "required key is missing"
    # scalars and lists of scalars are shown; a whole mapping would not fit on the line
    scalar = not isinstance(value, dict | list) or (
        isinstance(value, list) and all(not isinstance(v, dict | list) for v in value)
    )
    quiet = e["type"] in ("missing", "extra_forbidden")
    shown = f" (got {_shown(value)})" if loc and scalar and not quiet else ""
    return ConfigError(one_line(f"{source}: {loc}: {msg}{shown}" if loc else f"{source}: {msg}"))


class _UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """safe_load that refuses a key given twice in one mapping (PyYAML keeps the last)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False):
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            duplicate = key in seen
        except TypeError:  # an unhashable key: let the constructor say so
            break
        if duplicate:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} appears twice", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _read_yaml(path: Path) -> Any:
    if not path.is_file():
        raise ConfigError(f"{path}: file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not valid YAML (not UTF-8 text)") from None
    except OSError as err:
        raise ConfigError(one_line(f"{path}: cannot be read ({err.strerror or err})")) from None
    try:
        doc = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as err:
        problem = getattr(err, "problem", None)
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        detail = f"{problem}{where}" if problem else str(err).splitlines()[0]
        raise ConfigError(one_line(f"{path}: not valid YAML ({detail})")) from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid YAML (nested too deeply)") from None
    return {} if doc is None else doc


def load_params(path: str | Path = "params.yaml") -> Params:
    path = Path(path)
    try:
        return Params.model_validate(_read_yaml(path))
    except ValidationError as err:
        raise _one_line(err, str(path), Params) from None


def load_suite(
    name_or_path: str | Path, *, check_data: bool = True, check_names: bool = True
) -> Suite:
    """Load and validate a suite by name (suites/<name>.yaml) or path.

    ``check_names`` validates registry names and compatibility (imports torch);
    ``check_data`` also the data (batch sizes against the splits, data directories).
    """
    p = Path(name_or_path)
    path = p if p.suffix in (".yaml", ".yml") else suite_path(str(name_or_path))
    if not path.is_file():
        names = sorted(f.stem for f in SUITES_DIR.glob("*.yaml"))
        allowed = ", ".join(names) if names else f"none (no *.yaml in {SUITES_DIR}/)"
        raise ConfigError(one_line(f"suite: {str(name_or_path)!r} not found; allowed: {allowed}"))
    try:
        suite = Suite.model_validate(_read_yaml(path))
    except ValidationError as err:
        raise _one_line(err, str(path), Suite) from None
    if check_names:
        validate_names(suite, str(path), check_data=check_data)
    return suite


def all_pairs(suites_dir: Path = SUITES_DIR) -> dict[str, tuple[str, str]]:
    """pair name -> (method, objective) of every pair any suite in ``suites_dir`` uses, in
    suite-file then block order: the train@/tune@ stages of dvc.yaml (benchmark.pipeline)."""
    seen: dict[str, tuple[str, str]] = {}
    for path in sorted(suites_dir.glob("*.yaml")):
        suite = load_suite(path, check_names=False)
        for block in suite.blocks:
            for objective in block_objectives(block):
                seen.setdefault(pair_name(block.method, objective), (block.method, objective))
    return seen


def searched_pairs(suites_dir: Path = SUITES_DIR) -> set[str]:
    """The pairs some suite in ``suites_dir`` has something to search for (its search
    space, :meth:`SearchSpace.searched`): the tune@ stages of dvc.yaml."""
    out: set[str] = set()
    for path in sorted(suites_dir.glob("*.yaml")):
        suite = load_suite(path, check_names=False)
        for block in suite.blocks:
            for objective in block_objectives(block):
                if suite.search_space.searched(objective):
                    out.add(pair_name(block.method, objective))
    return out
