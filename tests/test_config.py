"""Suites and params: the shipped ones validate; bad input gives one line, exit 2, no writes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from benchmark.compat import COMPATIBLE, NO_OBJECTIVE, TUNABLE
from benchmark.config import (
    ConfigError,
    all_pairs,
    load_params,
    load_suite,
    suite_cells,
    suite_pairs,
)

ROOT = Path(__file__).resolve().parents[1]


def test_every_suite_pair_has_a_train_stage_and_tunable_ones_a_tune_stage():
    doc = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    pairs: set[str] = set()
    for name in ("core", "smoke", "gpu"):
        pairs |= set(suite_pairs(load_suite(ROOT / "suites" / f"{name}.yaml", check_data=False)))
    assert set(all_pairs(ROOT / "suites")) == pairs
    assert set(doc["stages"]["train"]["foreach"]) == pairs
    # tune@ stages: exactly the pairs whose objective has a temperature or margin
    assert set(doc["stages"]["tune"]["foreach"]) == {
        k for k, (_, objective) in all_pairs(ROOT / "suites").items() if TUNABLE.get(objective)
    }
    for item in doc["stages"]["train"]["foreach"].values():
        assert (ROOT / item["objective_src"]).is_file() and (ROOT / item["method_src"]).is_file()


def test_params_yaml_holds_no_pair_lists(tmp_path):
    """The stage lists live in the generated dvc.yaml, not in params.yaml."""
    path = tmp_path / "params.yaml"
    path.write_text((ROOT / "params.yaml").read_text() + "pairs: {}\n")
    with pytest.raises(ConfigError, match="pairs"):
        load_params(path)


def test_compat_table_matches_the_method_registry():
    from benchmark.methods import METHODS
    from benchmark.objectives import OBJECTIVES

    assert set(COMPATIBLE) == set(METHODS.names())
    for name in METHODS.names():
        assert METHODS.get(name).objectives == COMPATIBLE[name]
        assert set(COMPATIBLE[name]) <= set(OBJECTIVES.names())
    for name in OBJECTIVES.names():
        assert OBJECTIVES.get(name).tunable == TUNABLE.get(name, ())


def test_smoke_covers_every_method_and_objective():
    from benchmark.methods import METHODS
    from benchmark.objectives import OBJECTIVES

    cells = suite_cells(load_suite(ROOT / "suites" / "smoke.yaml", check_data=False))
    assert {c["method"] for c in cells} == set(METHODS.names())
    assert {c["objective"] for c in cells} - {NO_OBJECTIVE} == set(OBJECTIVES.names())


def test_core_has_three_seeds_and_the_sweeps():
    suite = load_suite(ROOT / "suites" / "core.yaml", check_data=False)
    cells = suite_cells(suite)
    assert suite.seeds == [0, 1, 2]
    batch = {c["batch_size"] for c in cells if c["sweep"] == "batch"}
    assert min(batch) == 32 and max(batch) == 512
    assert {c["sweep"] for c in cells} == {"batch", "negatives", "queue", "method"}
    assert any(not c["tuned"] for c in cells)


def test_gpu_suite_validates_without_data():
    suite = load_suite(ROOT / "suites" / "gpu.yaml")
    assert suite.validate_only and {c["encoder"] for c in suite_cells(suite)} >= {"resnet18"}


def _benchmark(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "benchmark", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def _run_prepare(tmp_path: Path, suite: dict, params: dict | None = None):
    (tmp_path / "suites").mkdir(exist_ok=True)
    (tmp_path / "suites" / "bad.yaml").write_text(yaml.safe_dump(suite))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"suite": "bad", **(params or {})}))
    return _benchmark(tmp_path, "prepare")


BASE = {
    "name": "bad",
    "blocks": [
        {"method": "simclr", "objectives": ["ntxent"], "dataset": "digits", "encoder": "mlp"}
    ],
}


def _with(block=None, **top):
    return {**BASE, **top, "blocks": [{**BASE["blocks"][0], **(block or {})}]}


@pytest.mark.parametrize(
    ("suite", "params", "expected"),
    [
        (_with({"method": "simclrr"}), None, "blocks.0.method: unknown 'simclrr'; allowed: byol"),
        (_with({"objectives": ["ntxnet"]}), None, "unknown objective 'ntxnet'; valid: contrastive"),
        (
            _with({"method": "dgi", "objectives": ["triplet"], "dataset": "csbm"}),
            None,
            "method 'dgi' cannot use objective 'triplet'; compatible: jsd",
        ),
        (_with({"batch_sizes": "big"}), None, "blocks.0.batch_sizes"),
        (_with({"epochs": "ten"}), None, "blocks.0.epochs"),
        (
            _with(search_space={"temperature": {"low": 0, "high": 1}}),
            None,
            "search_space.temperature.low: Input should be greater than 0",
        ),
        (
            _with({"batch_sizes": [5000]}),
            None,
            "blocks.0.batch_sizes: 5000 is larger than the training split of 'digits' (1257",
        ),
        (
            _with({"dataset": "mnist", "encoder": "cnn2d", "data_root": "nowhere"}),
            None,
            "blocks.0.data_root: mnist: looked in nowhere/MNIST/raw (does not exist)",
        ),
        (
            _with({"dataset": "mnist1d", "method": "rotation", "objectives": "none"}),
            None,
            "method 'rotation' cannot train on sequence data",
        ),
        (BASE, {"epochs_scale": -1}, "params.yaml: epochs_scale: Input should be greater than 0"),
        (BASE, {"seeds": "zero"}, "params.yaml: seeds"),
    ],
    ids=[
        "method",
        "objective",
        "incompatible",
        "type",
        "epochs-type",
        "temperature",
        "batch-too-large",
        "missing-data",
        "data-kind",
        "params-range",
        "params-type",
    ],
)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, suite, params, expected):
    proc = _run_prepare(tmp_path, suite, params)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, proc.stderr
    assert expected in lines[0]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "data").exists()
    assert not (tmp_path / "reports").exists()


def test_unknown_suite_names_the_allowed_ones(tmp_path):
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "core.yaml").write_text(yaml.safe_dump(BASE))
    (tmp_path / "params.yaml").write_text("suite: coer\n")
    proc = _benchmark(tmp_path, "prepare")
    assert proc.returncode == 2
    assert "suite: 'coer' not found; allowed: core" in proc.stderr


def test_run_command_bad_input(tmp_path):
    proc = _benchmark(tmp_path, "run", "--method", "byol", "--objective", "ntxent", "--epochs", "0")
    assert proc.returncode == 2
    assert "method 'byol' cannot use objective 'ntxent'; compatible: none" in proc.stderr


def test_lock_has_no_entries_of_stages_that_no_longer_exist():
    """DVC keeps a removed stage's dvc.lock entry; every entry costs time on every stage
    (DVC rewrites the whole lock after each one)."""
    from dvc.repo import Repo

    live = {s.addressing for s in Repo(str(ROOT)).index.stages}
    locked = set(yaml.safe_load((ROOT / "dvc.lock").read_text())["stages"])
    assert locked <= live, sorted(locked - live)
