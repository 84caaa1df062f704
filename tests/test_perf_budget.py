"""`perf budget`: the seeds-per-entry policies are subsets of the committed rows, and their
figures are the leaderboard's on that subset."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmark.errors import UserError
from benchmark.perf.budget import perf_budget, policy_rows, policy_summary
from benchmark.report import stats

BASE = dict(suite="core", dataset="mnist1d", encoder="cnn1d", negatives=254, batch_size=128,
            temperature=np.nan, margin=np.nan, knn_acc=0.5, val_acc=0.5, diverged=False,
            views_per_second=1.0, epochs=1, config_hash="x", code_digest="d")  # fmt: skip


def results() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    rows = []

    def add(method, objective, sweep, seeds, acc, tuned=True, seconds=10.0, **extra):
        for seed in seeds:
            rows.append(BASE | dict(method=method, objective=objective, sweep=sweep, seed=seed,
                                    tuned=tuned, linear_acc=acc + rng.normal(0, 0.01),
                                    train_seconds=seconds) | extra)  # fmt: skip

    add("simclr", "ntxent", "method", range(10), 0.85)
    add("simclr", "ntxent", "method", range(3), 0.83, tuned=False)  # the untuned comparison
    add("simclr", "triplet", "method", [0, 2, 4, 6], 0.80, seconds=20.0)  # seeds with gaps
    add("simclr", "ntxent", "batch", range(3), 0.84, batch_size=256, negatives=510)
    add("random", "none", "method", range(5), 0.70, tuned=False, seconds=0.0, negatives=0)
    return pd.DataFrame(rows)


def test_a_policy_keeps_the_first_seeds_of_each_headline_entry_and_every_other_row():
    r = results()
    kept = policy_rows(r, 3)
    head = kept[(kept.sweep == "method") & kept.tuned]
    assert sorted(head[head.objective == "ntxent"].seed) == [0, 1, 2]
    assert sorted(head[head.objective == "triplet"].seed) == [0, 2, 4]  # the first 3 it has
    assert len(kept[kept.sweep == "batch"]) == 3  # sweeps are kept whole
    assert len(kept[~kept.tuned & (kept.method == "simclr")]) == 3  # 3 untuned: all kept
    assert sorted(kept[kept.method == "random"].seed) == [0, 1, 2]
    assert policy_rows(r, None) is r


def test_a_policy_summary_is_the_leaderboard_of_its_rows():
    r = results()
    s = policy_summary(r, 3)
    ntxent = r[(r.objective == "ntxent") & (r.sweep == "method") & r.tuned & (r.seed < 3)]
    triplet = r[(r.objective == "triplet") & r.seed.isin([0, 2, 4])]
    halves = [100 * stats.ci95_halfwidth(g.linear_acc) for g in (ntxent, triplet)]
    assert s["widest"] == pytest.approx(max(halves))
    assert s["median"] == pytest.approx(np.median(halves))
    assert s["entries"] == 2
    assert s["cells"] == 3 + 3 + 3 + 3 + 3
    assert s["cpu_min"] == pytest.approx((3 * 10 + 3 * 10 + 3 * 20 + 3 * 10) / 60)
    random = r[(r.method == "random") & (r.seed < 3)].linear_acc.mean()
    assert s["headroom"] == pytest.approx(100 * (ntxent.linear_acc.mean() - random))
    assert policy_summary(r, None)["cells"] == len(r)


def test_the_command_prints_a_line_per_policy_and_the_sweeps(tmp_path, capsys):
    path = tmp_path / "results.csv"
    results().to_csv(path, index=False)
    assert perf_budget(path, [5, 3], wall=600.0, suite="core") == 0
    out = capsys.readouterr().out
    assert [ln.split()[1] for ln in out.splitlines() if ln.strip().startswith("first")] == [
        "3",
        "5",
    ]
    full = next(ln for ln in out.splitlines() if ln.strip().startswith("all"))
    assert full.split()[3] == "10.0"  # the measured wall itself for the committed grid
    assert "batch" in out and "method" in out


def test_missing_results_or_suite_or_no_seeds_is_a_one_line_error(tmp_path):
    with pytest.raises(UserError, match="--seeds: 0 is not allowed"):
        perf_budget(tmp_path / "none.csv", [3, 0], None, "core")
    with pytest.raises(UserError, match="--results"):
        perf_budget(tmp_path / "none.csv", [3], None, "core")
    path = tmp_path / "results.csv"
    results().to_csv(path, index=False)
    with pytest.raises(UserError, match="--suite: .* 'smoke'; allowed: core"):
        perf_budget(path, [3], None, "smoke")
