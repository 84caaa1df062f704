"""The study: its budget (``trial_budget``, ``counts``), its name (``study_key``), its
seeded TPE sampler and median pruner (``_open``), the points a trial asks
(``_suggest``, ``_trial_config``), telling and journaling a trial (``_tell``,
``log_trial``) and the summary of a finished study (``_summary``)."""

from __future__ import annotations

import hashlib
import json
import math
from typing import TYPE_CHECKING

from benchmark.tracking import redact

if TYPE_CHECKING:
    from benchmark.config import SuiteCell


def trial_budget(params, suite) -> int:
    """params.yaml's tune.trials, capped by the suite's tuning.trials (smoke: tiny)."""
    cap = suite.tuning.trials
    return params.tune.trials if cap is None else min(cap, params.tune.trials)


def _tunable(cells: list[SuiteCell], space) -> tuple[str, ...]:
    return space.searched(cells[0].objective) if cells else ()


def study_key(pair: str, template: SuiteCell, tunable: tuple[str, ...], suite, params) -> str:
    """What determines a study: search space, tuning budget and setting, and the code."""
    from benchmark.sources import code_digest

    blob = json.dumps(
        {
            "space": suite.search_space.model_dump(),
            "tuning": suite.tuning.model_dump(),
            "tunable": tunable,
            "template": template.record(),
            "sampler_seed": params.tune.sampler_seed,
            "threads": params.threads,
            "code": code_digest(template.method, template.objective),
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:10]


def counts(trial) -> bool:
    """Whether a trial counts against the budget (see the module's docstring)."""
    from optuna.trial import TrialState

    if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
        return True
    return trial.state == TrialState.FAIL and "error" in trial.user_attrs


def _sampler(params, budget: int, seed: int | None = None):
    import optuna

    # TPE's own start-up (10 random trials) would outlast the whole budget
    return optuna.samplers.TPESampler(
        seed=params.tune.sampler_seed if seed is None else seed,
        n_startup_trials=max(2, budget // 3),
    )


def _trial_seed(tune, number: int) -> int:
    digest = hashlib.sha256(f"{tune.sampler_seed}/{number}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def _pruner(template: SuiteCell):
    import optuna

    return optuna.pruners.MedianPruner(
        n_startup_trials=3, n_warmup_steps=template.tuning_epochs // 2
    )


def _open(name: str, storage, params, template: SuiteCell, budget: int):
    import optuna

    return optuna.create_study(
        study_name=name,
        storage=storage,
        direction="maximize",
        load_if_exists=True,
        sampler=_sampler(params, budget),
        pruner=_pruner(template),
    )


def _summary(study, pair: str, template: SuiteCell, suite, name: str, storage: str, key: str):
    import optuna

    rows = []
    method, obj = template.method, template.objective
    for tr in study.trials:
        rows.append(
            {
                "method": method,
                "objective": obj,
                "trial": tr.number,
                "temperature": tr.params.get("temperature"),
                "margin": tr.params.get("margin"),
                # what a search space adds (semihard, l2_reg) after the two every study has
                **{k: v for k, v in tr.params.items() if k not in ("temperature", "margin")},
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
        storage=redact(storage),  # reports/tuned/*.json is committed: never a password
        key=key,
        n_trials=sum(counts(tr) for tr in study.trials),
    )
    return best, rows


def _suggest(trial, tunable: tuple[str, ...], space) -> dict:
    """The trial's point: each tunable hyperparameter from its range in the search space."""
    hp = {}
    for name in tunable:
        r = space.range(name)
        hp[name] = trial.suggest_float(name, r.low, r.high, log=r.log)
    return hp


def _trial_config(template: SuiteCell, tuning, hp: dict):
    """A trial's CellConfig: the template cell at the trial's point ``hp``, with tuning's
    batch size (at most the cell's), seed and epochs, and every negative."""
    return template.config(
        hp,
        batch_size=min(tuning.batch_size, template.batch_size),
        negatives=None,
        seed=tuning.seed,
        epochs=template.tuning_epochs,
    )


def _outcome(trial, cfg, state, row, history, error, start_ms: int, worker=None) -> dict:
    """What ``log_trial`` journals and prints of a finished trial."""
    return {
        "number": trial.number,
        "params": dict(trial.params),
        "state": state,
        "row": row,
        "history": history,
        "error": error,
        "start_ms": start_ms,
        "config_hash": cfg.config_hash(),
        "worker": worker,
    }


def log_trial(suite_name: str, stage: str, pair: str, outcome: dict, bar) -> None:
    """Journal one finished trial (an MLflow nested run) and print its line: before it
    is told to Optuna (``_tell``), so a kill in between runs it again, never loses it."""
    from benchmark import tracking

    state, row, error = outcome["state"], outcome["row"], outcome["error"]
    tracking.log_cell(
        suite_name,
        stage,
        params={**outcome["params"], "trial": outcome["number"], "pair": pair, "state": state},
        row=row or {"config_hash": outcome["config_hash"]},
        history=outcome["history"],
        kind="trial",
        run_name=f"trial_{outcome['number']}",
        start_ms=outcome["start_ms"],
    )
    bar.update()
    bar.write(
        f"  {stage} trial {outcome['number']}: {outcome['params']} -> {state}"
        + (f" val_acc={row['val_acc']:.4f}" if state == "COMPLETE" else "")
        + (f" ({error})" if error else "")
        + (f" [{outcome['worker']}]" if outcome.get("worker") else "")
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
