"""`python -m benchmark summary`: the lines `make run` ends with."""

from __future__ import annotations

import json

import pandas as pd

from benchmark import cli


def test_summary_names_the_report_the_best_cells_the_floor_and_the_verdict(tmp_path, capsys):
    rows = []
    for method, objective, acc in [
        ("simclr", "ntxent", 0.84),
        ("simclr", "triplet", 0.80),
        ("random", "none", 0.70),
        ("supervised", "none", 0.95),
    ]:
        for seed in (0, 1):
            rows.append(
                dict(
                    suite="core",
                    method=method,
                    objective=objective,
                    dataset="mnist1d",
                    encoder="cnn1d",
                    sweep="method",
                    tuned=True,
                    diverged=False,
                    seed=seed,
                    batch_size=256,
                    linear_acc=acc + 0.01 * seed,
                )
            )
    pd.DataFrame(rows).to_csv(tmp_path / "results.csv", index=False)
    failing = [{"method": "simclr", "objective": "triplet", "batch_size": 256}]
    (tmp_path / "check.json").write_text(json.dumps({"passed": False, "failing": failing}))
    code = cli.main(
        [
            "summary",
            "--results",
            str(tmp_path / "results.csv"),
            "--check",
            str(tmp_path / "check.json"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "reports/index.html" in out
    assert "mnist1d/cnn1d: simclr/ntxent 84.5, simclr/triplet 80.5  (untrained 70.5)" in out
    assert "supervised" not in out.split("mnist1d/cnn1d:")[1].splitlines()[0]
    assert "FAIL: 1 failing cells (simclr/triplet B=256)" in out
    assert "rm -rf reports/runs" in out
