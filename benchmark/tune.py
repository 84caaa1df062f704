"""`python -m benchmark tune --pair METHOD-OBJECTIVE`: an Optuna study on the validation split.

Every objective gets the same budget (Musgrave et al. 2020): ``tune.trials`` trials of
``tuning.epochs`` epochs at ``tuning.batch_size``, a seeded TPE sampler and a median
pruner fed the per-epoch validation kNN accuracy (cheap); a trial's value is the linear
probe's validation accuracy. Diverged or failing trials are recorded as FAIL and the study
goes on. Studies live in ``tune.storage`` (default ``sqlite:///optuna.db``) under a name
that includes the search space, so a re-run continues the same study and a changed space
starts a new one. The best values go to ``reports/tuned/<pair>.json``, which the pair's
train stage reads; the trials go to ``reports/trials/<pair>.csv`` for the report.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
from pathlib import Path

from benchmark.cli import UserError
from benchmark.config import ConfigError
from benchmark.stages.common import (
    TRIAL_COLUMNS,
    TRIALS_DIR,
    TUNED_DIR,
    apply_device,
    load_for_pair,
    write_header_only,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pair", required=True, help="METHOD-OBJECTIVE, e.g. simclr-triplet")
    parser.add_argument("--params", default="params.yaml")


def run(args: argparse.Namespace) -> int:
    try:
        params, suite, cells = load_for_pair(args.pair, args.params)
    except ConfigError as err:
        raise UserError(str(err)) from None
    tunable = _tunable(cells)
    budget = trial_budget(params, suite)
    out = TUNED_DIR / f"{args.pair}.json"
    trials_out = TRIALS_DIR / f"{args.pair}.csv"
    if not cells or not tunable or budget == 0:
        reason = (
            "not in suite"
            if not cells
            else "no tunable hyperparameter"
            if not tunable
            else "tune.trials = 0"
        )
        _write_json(out, {"pair": args.pair, "suite": suite.name, "params": {}, "note": reason})
        write_header_only(trials_out, TRIAL_COLUMNS)
        print(f"tune@{args.pair}: nothing to tune ({reason})")
        return 0
    apply_device(params)
    key = study_key(args.pair, cells[0], tunable, suite, params)
    if out.is_file() and trials_out.is_file():
        previous = json.loads(out.read_text())
        if previous.get("key") == key and previous.get("n_trials", 0) >= budget:
            print(
                f"tune@{args.pair}: already tuned ({previous['n_trials']} trials, same "
                f"search space and code): {previous['params']}"
            )
            return 0
    best, rows = study(args.pair, cells[0], tunable, suite, params, key)
    _write_json(out, best)
    _write_trials(rows, trials_out)
    print(
        f"tune@{args.pair}: best {best['params']} val_acc={best['best_val_acc']:.4f} "
        f"({best['n_trials']} trials)"
    )
    return 0


def trial_budget(params, suite) -> int:
    """params.yaml's tune.trials, capped by the suite's tuning.trials (smoke: tiny)."""
    cap = suite.tuning.trials
    return params.tune.trials if cap is None else min(cap, params.tune.trials)


def _tunable(cells: list[dict]) -> tuple[str, ...]:
    if not cells or cells[0]["objective"] == "none":
        return ()
    from benchmark.objectives import OBJECTIVES

    return OBJECTIVES.get(cells[0]["objective"]).tunable


def study_key(pair: str, template: dict, tunable: tuple[str, ...], suite, params) -> str:
    """What determines a study: search space, tuning budget and setting, and the code."""
    from benchmark.stages.common import source_digest

    blob = json.dumps(
        {
            "space": suite.search_space.model_dump(),
            "tuning": suite.tuning.model_dump(),
            "tunable": tunable,
            "template": template,
            "sampler_seed": params.tune.sampler_seed,
            "threads": params.threads,
            "code": source_digest(template["method"], template["objective"]),
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:10]


def study(
    pair: str, template: dict, tunable: tuple[str, ...], suite, params, key: str
) -> tuple[dict, list]:
    import optuna

    from benchmark import tracking
    from benchmark.train import CellConfig, run_cell, val_knn_tracker

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = suite.search_space
    t = suite.tuning
    name = f"{suite.name}/{pair}/{key}"
    storage = params.tune.storage
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        direction="maximize",
        load_if_exists=True,
        sampler=optuna.samplers.TPESampler(seed=params.tune.sampler_seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=t.epochs // 2),
    )
    finished = [tr for tr in study.trials if tr.state.is_finished()]
    remaining = max(0, trial_budget(params, suite) - len(finished))
    stage = f"tune@{pair}"

    with tracking.stage_run(
        suite.name,
        stage,
        uri=params.mlflow_uri,
        params={"pair": pair, "trials": params.tune.trials, "study": name},
    ):

        def objective(trial: optuna.Trial) -> float:
            hp = {}
            for key in tunable:
                r = getattr(space, key)
                hp[key] = trial.suggest_float(key, r.low, r.high, log=r.log)
            batch = t.batch_size
            cfg = CellConfig(
                method=template["method"],
                objective=template["objective"],
                dataset=template["dataset"],
                encoder=template["encoder"],
                batch_size=batch,
                negatives=None,
                seed=t.seed,
                epochs=t.epochs,
                lr=template["lr"],
                method_options=template["method_options"],
                dataset_options=template["dataset_options"],
                data_root=template["data_root"],
                **hp,
            )
            history: list[dict] = []
            tracker = val_knn_tracker(history)

            def on_epoch(epoch: int, loss: float, method, data, device) -> None:
                acc = tracker(epoch, loss, method, data, device)
                trial.report(acc, epoch)
                if trial.should_prune():
                    raise optuna.TrialPruned()

            row = run_cell(cfg, test=False, on_epoch=on_epoch, progress=params.progress)
            tracking.log_cell(
                suite.name,
                stage,
                params={**hp, "trial": trial.number, "pair": pair},
                row=row,
                history=history,
                kind="trial",
                run_name=f"trial_{trial.number}",
            )
            if row["diverged"] or not math.isfinite(row["val_acc"]):
                trial.set_user_attr("diverged", True)
                raise RuntimeError("diverged")
            return row["val_acc"]

        study.optimize(objective, n_trials=remaining, catch=(RuntimeError, ValueError))

    rows = []
    method, obj = template["method"], template["objective"]
    for tr in study.trials:
        rows.append(
            {
                "method": method,
                "objective": obj,
                "trial": tr.number,
                "temperature": tr.params.get("temperature"),
                "margin": tr.params.get("margin"),
                "val_acc": tr.value
                if tr.value is not None
                else (max(tr.intermediate_values.values()) if tr.intermediate_values else None),
                "state": tr.state.name,
            }
        )
    complete = [tr for tr in study.trials if tr.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        best = {"params": {}, "best_val_acc": math.nan, "note": "no trial completed"}
    else:
        b = max(complete, key=lambda tr: tr.value)
        best = {"params": b.params, "best_val_acc": b.value}
    best.update(
        pair=pair,
        suite=suite.name,
        study=name,
        storage=storage,
        key=key,
        n_trials=len(study.trials),
    )
    return best, rows


def _write_json(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
    tmp.replace(path)


def _write_trials(rows: list[dict], path: Path) -> None:
    import pandas as pd

    from benchmark.stages.common import write_csv_atomic

    write_csv_atomic(pd.DataFrame(rows, columns=TRIAL_COLUMNS), path)
