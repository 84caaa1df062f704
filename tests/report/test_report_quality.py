"""reports/quality.csv: each check meets or misses its target on hand-made results."""

from __future__ import annotations

import pandas as pd
from conftest import rows_of

from benchmark.report.quality import measurement_checks
from benchmark.report.tables import leaderboard


def _cells(method, objective, values, **extra):
    return [
        dict(method=method, objective=objective, seed=s, linear_acc=v, **extra)
        for s, v in enumerate(values)
    ]


def _checks(cells, trials=None) -> pd.DataFrame:
    results = rows_of(cells)
    return measurement_checks(results, leaderboard(results), trials).set_index("check")


def test_headroom_met_only_with_ten_points_and_intervals_apart():
    floor = _cells("random", "none", [0.70, 0.71, 0.70])
    wide = _checks(_cells("simclr", "ntxent", [0.81, 0.80, 0.82]) + floor)
    assert wide.loc["headroom", "met"] == "yes" and "+10.7 pts" in wide.loc["headroom", "measured"]
    short = _checks(_cells("simclr", "ntxent", [0.79, 0.80, 0.79]) + floor)
    assert short.loc["headroom", "met"] == "no"
    # ten points on the means, but the seeds scatter so much that the intervals overlap
    noisy = _checks(_cells("simclr", "ntxent", [0.70, 0.94, 0.80]) + floor)
    assert noisy.loc["headroom", "met"] == "no"
    assert "overlap" in noisy.loc["headroom", "measured"]


def test_precision_takes_the_widest_headline_entry():
    tight = _cells("simclr", "ntxent", [0.800, 0.801, 0.799, 0.800, 0.802])
    loose = _cells("simclr", "triplet", [0.78, 0.80, 0.82, 0.79, 0.81])
    checks = _checks(tight + loose)
    assert checks.loc["precision", "met"] == "no"
    assert "(simclr/triplet)" in checks.loc["precision", "measured"]
    assert "1 of 2 entries within" in checks.loc["precision", "measured"]
    assert "1 of 1 entries within" in _checks(tight).loc["precision", "measured"]
    assert "0 of 1 entries within" in _checks(loose).loc["precision", "measured"]
    assert _checks(tight).loc["precision", "met"] == "yes"
    # the cost of the target: triplet's seeds spread 1.58 points (sd), so a half-width of
    # 1.0 needs 13 seeds (t(0.975, 12) * 1.58 / sqrt(13) = 0.955; 12 give 1.004): 8 more
    assert "up to 13 seeds: +8 cells" in checks.loc["precision", "measured"]
    assert "seeds:" not in _checks(tight).loc["precision", "measured"]


def test_tuning_spread_from_completed_trials_only():
    trials = pd.DataFrame(
        {
            "method": "simclr",
            "objective": "ntxent",
            "trial": range(4),
            "temperature": [0.1, 0.2, 0.5, 1.0],
            "margin": float("nan"),
            "val_acc": [0.80, 0.81, 0.815, 0.50],
            "state": ["COMPLETE", "COMPLETE", "COMPLETE", "PRUNED"],
        }
    )
    checks = _checks(_cells("simclr", "ntxent", [0.8, 0.8, 0.8]), trials)
    assert checks.loc["tuning spread", "met"] == "no"  # 1.5 points: the pruned trial is out
    assert checks.loc["tuning spread", "measured"].startswith("1.5 pts over 3")
    trials.loc[3, "state"] = "COMPLETE"
    assert (
        _checks(_cells("simclr", "ntxent", [0.8] * 3), trials).loc["tuning spread", "met"] == "yes"
    )


def test_tuned_worse_than_untuned_is_flagged():
    tuned = _cells("simclr", "ntxent", [0.80, 0.81, 0.79], tuned=True, config_hash="t")
    better = _cells("simclr", "ntxent", [0.85, 0.86, 0.845], tuned=False, config_hash="u")
    checks = _checks(tuned + better)
    assert checks.loc["tuned vs untuned", "met"] == "no"
    assert "3 paired seeds" in checks.loc["tuned vs untuned", "measured"]
    same = _cells("simclr", "ntxent", [0.80, 0.815, 0.79], tuned=False, config_hash="u")
    assert _checks(tuned + same).loc["tuned vs untuned", "met"] == "yes"
