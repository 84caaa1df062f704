"""Every objective's value on fixed inputs equals the committed golden value.

After an intended change of an objective, regenerate the file with one command,
``python -m benchmark golden`` (from the repository root), and commit it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmark.golden import differences, golden_entry
from benchmark.objectives import OBJECTIVES

GOLDEN = json.loads((Path(__file__).parent / "golden.json").read_text())
HINT = "if the change is intended, run `python -m benchmark golden` and commit golden.json"


@pytest.mark.parametrize("name", OBJECTIVES.names())
def test_golden_value(name):
    golden = {name: GOLDEN[name]} if name in GOLDEN else {}
    problems = differences(golden, {name: golden_entry(name)})
    assert not problems, "\n".join([*problems, HINT])


def test_no_stale_objectives():
    stale = sorted(set(GOLDEN) - set(OBJECTIVES.names()))
    assert not stale, f"golden values of unregistered objectives {stale}; {HINT}"


def test_differences_names_the_objective():
    """The failure message names the objective, configuration and input that changed."""
    name = OBJECTIVES.names()[0]
    entry = golden_entry(name)
    edited = json.loads(json.dumps(entry))
    edited["default"]["values"]["views"] += 1e-3
    (line,) = differences({name: edited}, {name: entry})
    assert repr(name) in line and "default" in line and "'views'" in line
    assert not differences({name: entry}, {name: entry})
    assert differences({}, {name: entry}) == [f"objective {name!r} has no golden values"]
