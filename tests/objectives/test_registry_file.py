"""The objective registry is the one list: discovered from the files, described by
``python -m benchmark list --json``, committed as benchmark/registry.json."""

from __future__ import annotations

import importlib
import json
import sys

import pytest

import benchmark.objectives
from benchmark import cli, compat, sources
from benchmark.listing import REGISTRY_FILE, registries, render
from benchmark.objectives import OBJECTIVES
from benchmark.objectives._core import register_objective
from benchmark.registry import submodule_names

REGENERATE = "run `python -m benchmark list --json --out benchmark/registry.json` and commit it"


@pytest.fixture(scope="module")
def current():
    return registries()


def by_name(entries):
    return {e["name"]: e for e in entries}


def test_committed_registry_file_is_current(current):
    assert REGISTRY_FILE.read_text() == render(current), (
        f"benchmark/registry.json is stale; {REGENERATE}"
    )


def test_every_objective_file_is_discovered_and_registers_its_own_name():
    """Each public module of benchmark/objectives/ registers one objective named as the file
    (benchmark/sources.py maps an objective to ``benchmark/objectives/<name>.py``)."""
    modules = submodule_names(benchmark.objectives.__path__)
    assert modules == OBJECTIVES.names()
    for name, spec in OBJECTIVES.items():
        assert spec.reduce.__module__ == f"benchmark.objectives.{name}"
        assert (sources.ROOT / sources.objective_file(name)).is_file()


def test_registration_checks_its_metadata():
    with pytest.raises(ValueError, match="duplicate objective name 'ntxent'"):
        register_objective("ntxent", metric="cosine", temperature=0.5)(lambda pairs: 0)
    with pytest.raises(ValueError, match="tunable"):
        register_objective("x", metric="cosine", tunable=("margin",), temperature=0.5)
    with pytest.raises(ValueError, match="unknown metric"):
        register_objective("x", metric="manhattan")
    assert "x" not in OBJECTIVES


def test_objective_entries_hold_the_registered_metadata(current):
    entries = by_name(current["objectives"])
    assert list(entries) == OBJECTIVES.names()
    for name, spec in OBJECTIVES.items():
        entry = entries[name]
        assert entry["hyperparameters"] == spec.hyperparameters
        assert set(entry["tunable"]) <= set(entry["hyperparameters"])
        assert entry["scores"] is spec.scores
        assert entry["order"] == spec.order


def test_method_entries_hold_the_compatible_objectives(current):
    from benchmark.methods import METHODS

    entries = by_name(current["methods"])
    assert list(entries) == METHODS.names()
    for name, cls in METHODS.items():
        assert set(entries[name]["objectives"]) == set(cls.objectives)
        assert set(cls.objectives) <= set(OBJECTIVES.names())
        assert entries[name]["default_objective"] == cls.default_objective


def test_display_order_agrees_with_the_report():
    """Until the report reads ``order`` from the registry, its hard-coded list must agree."""
    hard_coded = None
    for module in ("benchmark.report.tables", "benchmark.report"):
        try:
            hard_coded = getattr(importlib.import_module(module), "OBJECTIVE_ORDER", None)
        except ImportError:
            continue
        if hard_coded is not None:
            break
    if hard_coded is None:
        pytest.skip("the report keeps no objective order of its own")
    ordered = sorted((s for s in OBJECTIVES.values() if s.order is not None), key=lambda s: s.order)
    assert [s.name for s in ordered] == [o for o in hard_coded if o != compat.NO_OBJECTIVE], (
        "the report's hard-coded OBJECTIVE_ORDER disagrees with the registered `order`s"
    )


def test_list_json_prints_the_four_registries(capsys, monkeypatch, current):
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    assert cli.main(["list", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert list(printed) == ["objectives", "methods", "encoders", "datasets"]
    assert printed == current


def test_list_out_writes_the_file(tmp_path, capsys, monkeypatch, current):
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    out = tmp_path / "registry.json"
    assert cli.main(["list", "--json", "--out", str(out)]) == 0
    assert out.read_text() == render(current)
    assert cli.main(["list", "--out", str(out)]) == 2
    assert "--out needs --json" in capsys.readouterr().err
