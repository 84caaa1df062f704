"""Kill drill, small: `dvc repro` of a tiny suite killed with SIGKILL mid-trial (a
RUNNING trial left in the Optuna study), mid-train (between two cells) and mid-flush,
resumed each time by a plain `dvc repro`: results.csv, the Optuna study and the MLflow
run tree equal an uninterrupted run's (benchmark/drill/; `python -m benchmark perf
drill` runs the 10 seeded kills on the smoke suite)."""

from __future__ import annotations

import pytest

from benchmark.drill import Kill, drill

pytestmark = pytest.mark.slow

SUITE = """\
name: drill
description: kill drill (tests/test_drill.py)
epochs: 2
seeds: [0, 1]
lr: 0.002
tuning: {trials: 4, epochs: 1, batch_size: 256}
blocks:
  - {method: simclr, objectives: [ntxent], dataset: digits, encoder: mlp, batch_sizes: [256]}
"""

KILLS = [
    Kill("tune@simclr-ntxent", 0.3, after="trial 0:"),  # trial 1 RUNNING
    Kill("train@simclr-ntxent", 0.2, after="seed=0"),  # the second cell training
    Kill("results", 0.0, runs=2),  # its MLflow flush, 2 runs written
]


def test_killed_three_times_resumes_to_the_uninterrupted_run(tmp_path):
    lines: list[str] = []
    s = drill(KILLS, suite="drill", suite_yaml=SUITE, workdir=tmp_path, out=lines.append)
    print("\n".join(lines))
    landed = [r["killed_in"] for r in s["kills"]]
    assert landed == ["tune@simclr-ntxent", "train@simclr-ntxent", "results (MLflow flush)"]
    assert 2 <= s["kills"][2]["mlflow_runs"] < s["runs"] - 1, lines  # mid-flush (+ report run)
    assert all(r["resumed"].startswith("yes") for r in s["kills"]), lines
    assert not any(r["problems"] for r in s["kills"]), lines
    assert s["trials"] == 4 and s["results_rows"] == 2, lines
    assert s["differences"] == [], "\n".join(lines)
