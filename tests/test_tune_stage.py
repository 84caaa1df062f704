"""`python -m benchmark tune --pair P` with nothing to do: it writes an empty answer, runs
no trial and says why."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


SMALL = {"num_train": 200, "num_val": 100, "num_test": 100}


def _tune(tmp_path: Path, blocks: list[dict], pair: str = "simclr-ntxent", **suite_keys):
    suite = {"name": "mini", "epochs": 1, "tuning": {"trials": 2, "epochs": 1}, "blocks": blocks}
    suite.update(suite_keys)
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "mini.yaml").write_text(yaml.safe_dump(suite))
    (tmp_path / "params.yaml").write_text(
        yaml.safe_dump({"suite": "mini", "progress": False, "mlflow_uri": "sqlite:///mlflow.db"})
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "benchmark", "tune", "--pair", pair],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return done


def test_a_pair_whose_blocks_are_all_untuned_runs_no_study(tmp_path):
    block = {"method": "simclr", "objectives": ["ntxent"], "dataset": "mnist1d",
             "dataset_options": SMALL, "batch_sizes": [64], "tuned": False}  # fmt: skip
    done = _tune(tmp_path, [block])
    assert "nothing to tune (no tuned cell" in done.stdout
    answer = json.loads((tmp_path / "reports/tuned/simclr-ntxent.json").read_text())
    assert answer["params"] == {} and "no tuned cell" in answer["note"]
    assert not (tmp_path / "optuna.db").exists()  # no study was opened


def test_a_hyperparameter_given_a_range_is_searched_and_reaches_the_loss(tmp_path):
    """triplet's semihard is not tunable by default; a range in the search space makes
    Optuna search it beside the margin, and the cell is built with the tuned value."""
    from benchmark.config import load_suite, suite_cells
    from benchmark.stages.train import tuned_for

    block = {"method": "simclr", "objectives": ["triplet"], "dataset": "mnist1d",
             "dataset_options": SMALL, "batch_sizes": [64]}  # fmt: skip
    space = {"semihard": {"low": 0.01, "high": 1.0}}
    done = _tune(tmp_path, [block], pair="simclr-triplet", search_space=space)
    answer = json.loads((tmp_path / "reports/tuned/simclr-triplet.json").read_text())
    assert set(answer["params"]) == {"margin", "semihard"}, done.stdout
    assert 0.01 <= answer["params"]["semihard"] <= 1.0
    trials = (tmp_path / "reports/trials/simclr-triplet.csv").read_text().splitlines()
    assert "semihard" in trials[0].split(",")
    suite = load_suite(tmp_path / "suites/mini.yaml", check_data=False)
    (cell,) = [c for c in suite_cells(suite) if c.tuned]
    kwargs = cell.trained_config(tuned_for(cell, answer)).objective_kwargs()
    assert kwargs == answer["params"]


def test_a_pair_on_two_testbeds_gets_a_study_on_each(tmp_path):
    from benchmark.config import load_suite, suite_cells
    from benchmark.stages.train import tuned_for

    base = {"method": "simclr", "objectives": ["ntxent"], "dataset": "mnist1d",
            "batch_sizes": [64]}  # fmt: skip
    signals = {**base, "dataset_options": SMALL}
    images = {**base, "dataset_options": {**SMALL, "image": True, "image_size": 16},
              "encoder": "cnn2d"}  # fmt: skip
    done = _tune(tmp_path, [signals, images])
    answer = json.loads((tmp_path / "reports/tuned/simclr-ntxent.json").read_text())
    assert len(answer["testbeds"]) == 2 and answer["n_trials"] == 4
    studies = {b["study"] for b in answer["testbeds"].values()}
    assert len(studies) == 2, "each testbed has its own study"
    assert {b["testbed"].split(" (")[0] for b in answer["testbeds"].values()} == {
        "mnist1d / cnn1d",
        "mnist1d / cnn2d",
    }
    assert done.stdout.count("best {'temperature'") == 2
    trials = (tmp_path / "reports/trials/simclr-ntxent.csv").read_text().splitlines()
    assert trials[0].startswith("method,objective,dataset,encoder,trial")
    assert {line.split(",")[3] for line in trials[1:]} == {"cnn1d", "cnn2d"}
    # each cell takes its own testbed's values
    suite = load_suite(tmp_path / "suites/mini.yaml", check_data=False)
    for cell in suite_cells(suite):
        mine = next(b for b in answer["testbeds"].values() if cell.encoder in b["testbed"])
        assert tuned_for(cell, answer) == mine["params"]


def test_tuned_for_picks_the_cells_testbed():
    from dataclasses import replace

    from benchmark.config import SuiteCell, testbed_key
    from benchmark.stages.train import tuned_for

    a = SuiteCell(pair="simclr-ntxent", sweep="method", tuned=True, method="simclr",
                  objective="ntxent", dataset="mnist1d", encoder="cnn1d", batch_size=64,
                  negatives=None, seed=0, epochs=1, tuning_epochs=1, lr=0.1)  # fmt: skip
    b = replace(a, encoder="cnn2d", dataset_options={"image": True})
    answer = {
        "params": {"temperature": 0.1},
        "testbeds": {
            testbed_key(a): {"params": {"temperature": 0.1}},
            testbed_key(b): {"params": {"temperature": 0.7}},
        },
    }
    assert tuned_for(a, answer) == {"temperature": 0.1}
    assert tuned_for(b, answer) == {"temperature": 0.7}
    assert tuned_for(b, {"params": {"margin": 0.5}}) == {"margin": 0.5}  # one testbed
    assert tuned_for(b, {}) == {}
