"""`python -m benchmark tune --pair METHOD-OBJECTIVE`: an Optuna study on the validation split.

Every objective gets the same budget (Musgrave et al. 2020): ``tune.trials`` trials of
``tuning.epochs`` epochs (or the block's ``tuning_epochs``) at ``tuning.batch_size`` or the
pair's first cell's batch size if smaller (a temperature tuned for 255 negatives does not
carry over to 63), a seeded TPE sampler and a median
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
import sys
from pathlib import Path

from benchmark import atomic
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
    out = TUNED_DIR / f"{args.pair}.json"
    trials_out = TRIALS_DIR / f"{args.pair}.csv"

    def nothing(suite_name: str, reason: str) -> int:
        _write_json(out, {"pair": args.pair, "suite": suite_name, "params": {}, "note": reason})
        write_header_only(trials_out, TRIAL_COLUMNS)
        print(f"tune@{args.pair}: nothing to tune ({reason})")
        return 0

    try:
        light = _untunable_answer(args.pair, args.params)
        if light is not None:  # answered from the YAML alone, without importing torch
            return nothing(*light)
        params, suite, cells = load_for_pair(args.pair, args.params)
    except ConfigError as err:
        raise UserError(str(err)) from None
    tunable = _tunable(cells)
    budget = trial_budget(params, suite)
    if not cells or not tunable or budget == 0:
        reason = (
            "not in suite"
            if not cells
            else "no tunable hyperparameter"
            if not tunable
            else "tune.trials = 0"
        )
        return nothing(suite.name, reason)
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


def _untunable_answer(pair: str, params_path: str) -> tuple[str, str] | None:
    """(suite, reason) when the pair's objective has nothing to tune, else None."""
    from benchmark.compat import TUNABLE
    from benchmark.config import all_pairs, load_params, load_suite, suite_pairs

    params = load_params(params_path)
    item = all_pairs().get(pair)
    if item is None or TUNABLE.get(item[1], ()):
        return None  # unknown pairs get load_for_pair's error
    suite = load_suite(params.suite, check_names=False)
    in_suite = pair in suite_pairs(suite)
    return suite.name, "no tunable hyperparameter" if in_suite else "not in suite"


def trial_budget(params, suite) -> int:
    """params.yaml's tune.trials, capped by the suite's tuning.trials (smoke: tiny)."""
    cap = suite.tuning.trials
    return params.tune.trials if cap is None else min(cap, params.tune.trials)


def _tunable(cells: list[dict]) -> tuple[str, ...]:
    from benchmark.compat import TUNABLE

    return TUNABLE.get(cells[0]["objective"], ()) if cells else ()


def study_key(pair: str, template: dict, tunable: tuple[str, ...], suite, params) -> str:
    """What determines a study: search space, tuning budget and setting, and the code."""
    from benchmark.sources import code_digest

    blob = json.dumps(
        {
            "space": suite.search_space.model_dump(),
            "tuning": suite.tuning.model_dump(),
            "tunable": tunable,
            "template": template,
            "sampler_seed": params.tune.sampler_seed,
            "threads": params.threads,
            "code": code_digest(template["method"], template["objective"]),
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:10]


def study(
    pair: str, template: dict, tunable: tuple[str, ...], suite, params, key: str
) -> tuple[dict, list]:
    """Run the study's missing trials, ``params.workers`` at a time, and summarise it.

    Trials are asked in batches of ``workers`` and run in forked processes (one torch
    thread each). A worker reports its validation kNN accuracy after every epoch and the
    parent answers with the pruner's verdict; trials are told only when their whole batch
    is over, so the pruner and the sampler see the same history whichever worker is
    faster, and a re-run with the same seed asks the same points.
    """
    import optuna
    from tqdm.auto import tqdm

    from benchmark import tracking

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    t = suite.tuning
    name = f"{suite.name}/{pair}/{key}"
    storage = params.tune.storage
    budget = trial_budget(params, suite)
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        direction="maximize",
        load_if_exists=True,
        # TPE's own start-up (10 random trials) would outlast the whole budget
        sampler=optuna.samplers.TPESampler(
            seed=params.tune.sampler_seed, n_startup_trials=max(2, budget // 3)
        ),
        pruner=optuna.pruners.MedianPruner(
            n_startup_trials=3, n_warmup_steps=template["tuning_epochs"] // 2
        ),
    )
    # a trial an interruption left RUNNING will never report: closed as FAIL, not counted
    interrupted = [tr for tr in study.trials if tr.state == optuna.trial.TrialState.RUNNING]
    for tr in interrupted:
        study.tell(tr.number, state=optuna.trial.TrialState.FAIL)
    remaining = max(0, budget - (len(study.trials) - len(interrupted)))
    stage = f"tune@{pair}"

    with tracking.stage_run(
        suite.name,
        stage,
        uri=params.mlflow_uri,
        params={"pair": pair, "trials": budget, "study": name, "workers": params.workers},
    ):
        bar = tqdm(
            total=remaining, desc=stage, unit="trial", disable=not params.progress, file=sys.stderr
        )
        while remaining > 0:
            batch = []
            for _ in range(min(max(1, params.workers), remaining)):
                trial = study.ask()
                hp = {}
                for name_ in tunable:
                    r = getattr(suite.search_space, name_)
                    hp[name_] = trial.suggest_float(name_, r.low, r.high, log=r.log)
                batch.append((trial, _trial_config(template, t, hp)))
            outcomes = _run_batch(batch, params.threads)
            for (trial, cfg), (state, row, history, error, start_ms) in zip(
                batch, outcomes, strict=True
            ):
                _tell(study, trial, state, row, error)
                tracking.log_cell(
                    suite.name,
                    stage,
                    params={**trial.params, "trial": trial.number, "pair": pair, "state": state},
                    row=row or {"config_hash": cfg.config_hash()},
                    history=history,
                    kind="trial",
                    run_name=f"trial_{trial.number}",
                    start_ms=start_ms,
                )
                bar.update()
                bar.write(
                    f"  {stage} trial {trial.number}: {trial.params} -> {state}"
                    + (f" val_acc={row['val_acc']:.4f}" if state == "COMPLETE" else "")
                    + (f" ({error})" if error else "")
                )
            remaining -= len(batch)
        bar.close()

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


def _trial_config(template: dict, tuning, hp: dict):
    from benchmark.train import CellConfig

    return CellConfig(
        method=template["method"],
        objective=template["objective"],
        dataset=template["dataset"],
        encoder=template["encoder"],
        batch_size=min(tuning.batch_size, template["batch_size"]),
        negatives=None,
        seed=tuning.seed,
        epochs=template["tuning_epochs"],
        lr=template["lr"],
        method_options=template["method_options"],
        dataset_options=template["dataset_options"],
        data_root=template["data_root"],
        **hp,
    )


def _tell(study, trial, state: str, row: dict | None, error: str | None) -> None:
    from optuna.trial import TrialState

    if state == "COMPLETE":
        study.tell(trial, row["val_acc"])
    elif state == "PRUNED":
        study.tell(trial, state=TrialState.PRUNED)
    else:
        trial.set_user_attr("error", error or state)
        study.tell(trial, state=TrialState.FAIL)


def _run_batch(batch: list, threads: int) -> list[tuple]:
    """Run each (trial, cfg) in a forked process; answer their per-epoch prune questions.

    Returns, in batch order, (state, row, history, error, start_ms) with state COMPLETE,
    PRUNED or FAIL (an exception, a diverged cell or a non-finite accuracy).
    """
    import multiprocessing as mp
    import time
    from multiprocessing.connection import wait

    ctx = mp.get_context("fork")
    live, procs, outcome = {}, [], [None] * len(batch)
    for i, (trial, cfg) in enumerate(batch):
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_trial_worker, args=(child, cfg, threads), daemon=True)
        proc.start()
        child.close()
        live[parent] = (i, trial, time.time())
        procs.append(proc)
    try:
        while live:
            for conn in wait(list(live)):
                i, trial, started = live[conn]
                try:
                    msg = conn.recv()
                except EOFError:  # the worker died without a word (e.g. killed)
                    msg = ("FAIL", None, [], "worker process died")
                if msg[0] == "epoch":
                    _, epoch, acc = msg
                    trial.report(acc, epoch)
                    conn.send(trial.should_prune())
                    continue
                state, row, history, error = msg
                outcome[i] = (state, row, history, error, int(started * 1000))
                del live[conn]
                conn.close()
    finally:
        for proc in procs:
            if proc.is_alive() and live:
                proc.kill()
            proc.join()
    return outcome


def _trial_worker(conn, cfg, threads: int) -> None:
    import torch

    from benchmark.train import run_cell, val_knn_tracker

    torch.set_num_threads(threads)
    history: list[dict] = []
    tracker = val_knn_tracker(history, epochs=cfg.epochs)

    class Pruned(Exception):
        pass

    def on_epoch(epoch: int, loss: float, method, data, device) -> None:
        acc = tracker(epoch, loss, method, data, device)
        if acc is None:  # an epoch between evaluations
            return
        conn.send(("epoch", epoch, acc))
        if conn.recv():
            raise Pruned

    try:
        row = run_cell(cfg, test=False, on_epoch=on_epoch, progress=False)
    except Pruned:
        conn.send(("PRUNED", None, history, None))
    except Exception as err:  # recorded as a failed trial; the study goes on
        conn.send(("FAIL", None, history, f"{type(err).__name__}: {err}"))
    else:
        if row["diverged"] or not math.isfinite(row["val_acc"]):
            conn.send(("FAIL", row, history, "diverged"))
        else:
            conn.send(("COMPLETE", row, history, None))
    conn.close()


def _write_json(path: Path, obj: dict) -> None:
    atomic.write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def _write_trials(rows: list[dict], path: Path) -> None:
    import pandas as pd

    from benchmark.stages.common import write_csv_atomic

    write_csv_atomic(pd.DataFrame(rows, columns=TRIAL_COLUMNS), path)
