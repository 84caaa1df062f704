"""Published-trend verdicts on synthetic results: each outcome, and missing data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmark.report import trends

NOISE = [0.004, -0.003, 0.001]  # per seed, fractions


def batch_rows(make_rows, slope_pts: float, noise: list[float] = NOISE) -> pd.DataFrame:
    """ntxent on a batch sweep: accuracy = 80% + slope_pts per doubling + per-seed noise."""
    cells = [
        dict(sweep="batch", batch_size=b, seed=s, linear_acc=0.8 + slope_pts / 100 * i + n)
        for i, b in enumerate([32, 64, 128, 256])
        for s, n in enumerate(noise)
    ]
    return make_rows(cells)


@pytest.mark.parametrize(
    "slope, noise, verdict",
    [
        (2.0, NOISE, "reproduced"),
        (-2.0, NOISE, "not reproduced"),
        (0.0, NOISE, "not reproduced"),  # flat and precise: inside the +/-0.5 band
        (0.5, [0.05, -0.05, 0.0], "inconclusive"),  # too noisy to tell
    ],
)
def test_batch_trend_verdicts(make_rows, slope, noise, verdict) -> None:
    (row,) = trends.batch_trends(batch_rows(make_rows, slope, noise))
    assert row["verdict"] == verdict
    assert row["measured_effect"] == pytest.approx(slope, abs=0.3)
    assert row["ci_low"] < row["measured_effect"] < row["ci_high"]
    assert "simclr/ntxent on digits/mlp" in row["trend"] and "12 runs" in row["detail"]


def headline(make_rows, accs: dict[str, float], tuned: bool = True, spread=NOISE) -> list[dict]:
    return [
        dict(objective=o, tuned=tuned, seed=s, linear_acc=acc + n)
        for o, acc in accs.items()
        for s, n in enumerate(spread)
    ]


def test_ntxent_against_the_best_margin_loss_and_nce(make_rows) -> None:
    accs = {"ntxent": 0.90, "triplet": 0.80, "contrastive": 0.86, "lifted": 0.70, "nce": 0.91}
    cells = headline(make_rows, accs)
    # nce's noise runs against ntxent's, so its paired difference has spread
    for cell in cells:
        if cell["objective"] == "nce":
            cell["linear_acc"] = 0.90 + [0.01, -0.012, 0.002][cell["seed"]]
    rows = trends.ntxent_trends(make_rows(cells))
    assert len(rows) == 2
    margin, logistic = rows
    assert "contrastive (best mean of triplet, contrastive, lifted)" in margin["detail"]
    assert margin["measured_effect"] == pytest.approx(4.0)  # 90 - 86, the best margin loss
    assert margin["verdict"] == "reproduced"
    assert logistic["verdict"] == "inconclusive" and "ntxent - nce" in logistic["detail"]


def test_tuning_gap_trend(make_rows) -> None:
    untuned = {"ntxent": 0.80, "triplet": 0.90}
    tuned = {"ntxent": 0.89, "triplet": 0.90}
    cells = headline(make_rows, untuned, tuned=False) + headline(make_rows, tuned)
    (row,) = trends.tuning_trends(make_rows(cells))
    assert row["measured_effect"] == pytest.approx(10.0 - 1.0)  # spreads 10 vs 1 point
    assert row["verdict"] == "reproduced"
    assert "untuned 10.00 vs tuned 1.00" in row["detail"] and "3 seeds" in row["detail"]


def temperature_rows(make_rows, accs: dict[float, float]) -> pd.DataFrame:
    cells = [
        dict(sweep="temperature", temperature=t, seed=s, linear_acc=acc + n)
        for t, acc in accs.items()
        for s, n in enumerate(NOISE)
    ]
    return make_rows(cells)


def test_temperature_trend(make_rows) -> None:
    (u,) = trends.temperature_trends(temperature_rows(make_rows, {0.05: 0.80, 0.2: 0.90, 1: 0.85}))
    assert u["verdict"] == "reproduced"
    assert u["measured_effect"] == pytest.approx(5.0)  # the smaller of 10 and 5 points
    assert "best interior temperature 0.2" in u["detail"]
    (mono,) = trends.temperature_trends(
        temperature_rows(make_rows, {0.05: 0.80, 0.2: 0.85, 1: 0.90})
    )
    assert mono["verdict"] == "not reproduced"
    (two,) = trends.temperature_trends(temperature_rows(make_rows, {0.05: 0.80, 1: 0.90}))
    assert two["verdict"] == "inconclusive" and "three or more" in two["detail"]


def test_queue_trend_per_method(make_rows) -> None:
    cells = [
        dict(method=m, objective=o, sweep="queue", negatives=k, seed=s, linear_acc=acc)
        for m, o, gain in [("moco", "infonce", 1.0), ("npid", "nce", -1.0)]
        for i, k in enumerate([64, 256, 1024])
        for s, n in enumerate(NOISE)
        for acc in [0.8 + gain / 100 * 2 * i + n]  # gain points per doubling (K x4 per step)
    ]
    rows = {r["trend"]: r for r in trends.queue_trends(make_rows(cells))}
    moco = rows["Accuracy rises with the number of negatives K (moco/infonce on digits/mlp)"]
    npid = rows["Accuracy rises with the number of negatives K (npid/nce on digits/mlp)"]
    assert (
        moco["measured_effect"] == pytest.approx(1.0, abs=0.2) and moco["verdict"] == "reproduced"
    )
    assert npid["verdict"] == "not reproduced"


def test_missing_data_is_inconclusive_never_a_crash(make_rows) -> None:
    only_refs = make_rows([dict(method="supervised", objective="none", seed=s) for s in range(3)])
    table = trends.published_trends(only_refs)
    assert list(table.columns) == trends.TREND_COLUMNS
    assert set(table["verdict"]) == {"inconclusive"} and len(table) == 5
    assert table["measured_effect"].isna().all()
    details = " ".join(table["detail"])
    for needle in ["ntxent", "tuned and untuned", "no queue sweep", "no temperature sweep"]:
        assert needle in details
    assert "no batch sweep" in details
    diverged = batch_rows(make_rows, 2.0).assign(diverged=True)
    assert trends.batch_trends(diverged)[0]["verdict"] == "inconclusive"
    assert np.isnan(trends.batch_trends(diverged)[0]["ci_low"])
