"""The train stage's cells through submitit's LocalExecutor (the Slurm code path, real
subprocesses): the same rows as local workers, and a re-run collects finished jobs."""

from __future__ import annotations

import json
import time

import pandas as pd
import pytest
from servers import bench, project

pytestmark = pytest.mark.slow
PAIR = "simclr-ntxent"
SAME = ["config_hash", "sweep", "linear_acc", "knn_acc", "val_acc", "negatives", "diverged"]


def _rows(path):
    runs = pd.read_csv(path / "reports" / "runs" / f"{PAIR}.csv")
    return runs.sort_values(["config_hash", "sweep"])[SAME].reset_index(drop=True)


def test_submitit_local_cells_equal_local_cells_and_resume(tmp_path):
    base = {"suite": "smoke", "epochs_scale": 0.34, "workers": 2}
    local = project(tmp_path / "local", base)
    t0 = time.perf_counter()
    proc = bench(local, "train", "--pair", PAIR)
    assert proc.returncode == 0, proc.stderr[-3000:]
    t_local = time.perf_counter() - t0
    cluster = project(tmp_path / "cluster", {**base, "executor": "submitit-local"})
    t0 = time.perf_counter()
    proc = bench(cluster, "train", "--pair", PAIR)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    t_cluster = time.perf_counter() - t0
    assert len(_rows(local)) >= 4
    pd.testing.assert_frame_equal(_rows(cluster), _rows(local))
    manifest = json.loads((cluster / ".submitit" / PAIR / "jobs.json").read_text())
    assert len(manifest) == len(set(_rows(cluster)["config_hash"]))
    # an interruption that lost the rows (not the jobs): the re-run trains nothing again
    (cluster / "reports" / "runs" / f"{PAIR}.csv").unlink()
    proc = bench(cluster, "train", "--pair", PAIR)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"{len(manifest)} cell(s) collected from an earlier submission" in proc.stdout
    assert json.loads((cluster / ".submitit" / PAIR / "jobs.json").read_text()) == manifest
    pd.testing.assert_frame_equal(_rows(cluster), _rows(local))
    print(f"train@{PAIR}: local {t_local:.0f} s, submitit-local {t_cluster:.0f} s")
