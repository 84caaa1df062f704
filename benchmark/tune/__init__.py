"""Tuning: an Optuna study of one (method, objective) on the validation split (the stage,
`python -m benchmark tune --pair METHOD-OBJECTIVE`, is ``benchmark/stages/tune.py``).

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

The budget: a study is done when ``trial_budget`` trials *count*, and a trial counts when
it is COMPLETE, PRUNED, or FAIL with a recorded ``error`` (an exception, a diverged cell:
the point was tried and is bad). A trial whose worker died (killed, machine lost: FAIL
with no ``error``) does not count; with shared-study workers it is retried.

Two ways to run a study:

- default (``tune.workers: null``): one process asks trials in batches of ``workers`` and
  runs each in a forked process. Deterministic: the same seed asks the same points
  whatever the workers' speed, trial number n sampling from its own stream seeded by
  (``tune.sampler_seed``, n). One invocation per study at a time. A kill is resumed
  exactly: the trials it left RUNNING are run again in place (same numbers, same
  parameters; cells seed themselves), their batch is completed and judged by the pruner
  on the same history, so the resumed study equals an uninterrupted one (the kill
  drills, ``benchmark/drill/``, check it).
- shared-study workers (``--workers N`` or ``tune.workers: N``, and/or one invocation per
  machine against one PostgreSQL ``tune.storage``): every worker asks, runs and tells
  one trial at a time. A worker claims a trial under a lock held in the storage's own
  database (a PostgreSQL advisory lock; a file lock beside a SQLite file), only while
  counted + running + queued trials are below the budget, so the study ends with exactly
  the budget: none lost, none duplicated. Each running trial sends a heartbeat every
  ``tune.heartbeat_seconds``; a trial silent for ``tune.grace_seconds`` (its worker was
  killed) is failed by the next worker that looks, and re-queued with the same
  parameters (``RetryHeartbeatStaleTrialCallback``, ``tune.retries`` times), so the
  budget is still met. Trial number n samples from its own stream, seeded by
  (``tune.sampler_seed``, n), as in the default mode. With one worker the study is
  deterministic, the same on SQLite and PostgreSQL; with
  several, which points are asked (and pruned) depends on which trials have finished
  when a worker asks, and which worker gets which number: the budget, the study's name,
  the search space and each trial's result for its parameters (cells seed themselves)
  are deterministic, the sequence of points and the best value are not.

The package: ``studies`` (the study, its sampler and pruner, budget and key, telling and
journaling trials), ``storage`` (Optuna storages, the claim lock, heartbeats),
``runner`` (one trial trained and pruned, here or in a forked process), ``shared``
(the shared-study workers); this module runs a study (``study``).
"""

from __future__ import annotations

import sys

from benchmark.config import SuiteCell
from benchmark.tracking import redact
from benchmark.tune.runner import _run_batch, _run_here, _trial_worker, run_trial
from benchmark.tune.shared import _work, _work_forked, run_shared
from benchmark.tune.storage import (
    _RDB_DIALECTS,
    _ClaimLock,
    _heartbeat,
    _make_storage,
    _storage,
)
from benchmark.tune.studies import (
    _open,
    _outcome,
    _pruner,
    _sampler,
    _suggest,
    _summary,
    _tell,
    _trial_config,
    _trial_seed,
    _tunable,
    counts,
    log_trial,
    study_key,
    trial_budget,
)

__all__ = [
    "_RDB_DIALECTS",
    "_ClaimLock",
    "_heartbeat",
    "_make_storage",
    "_open",
    "_outcome",
    "_pruner",
    "_run_batch",
    "_run_here",
    "_sampler",
    "_storage",
    "_suggest",
    "_summary",
    "_tell",
    "_trial_config",
    "_trial_seed",
    "_trial_worker",
    "_tunable",
    "_work",
    "_work_forked",
    "counts",
    "log_trial",
    "redact",
    "run_shared",
    "run_trial",
    "study",
    "study_key",
    "trial_budget",
]


def study(
    pair: str, template: SuiteCell, tunable: tuple[str, ...], suite, params, key: str
) -> tuple[dict, list]:
    """Run the study's missing trials, ``params.workers`` at a time, and summarise it.

    Trials are asked in batches of ``workers`` and run in forked processes (one torch
    thread each). A worker reports its validation kNN accuracy after every epoch and the
    parent answers with the pruner's verdict; trials are told only when their whole batch
    is over, so the pruner and the sampler see the same history whichever worker is
    faster, and a re-run with the same seed asks the same points. A batch a kill cut
    short is finished first (``_resume_batch``).
    """
    import optuna
    from tqdm.auto import tqdm

    from benchmark import tracking

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    t = suite.tuning
    name = f"{suite.name}/{pair}/{key}"
    storage = params.tune.storage
    budget = trial_budget(params, suite)
    if params.tune.workers is not None:
        study = run_shared(pair, template, tunable, suite, params, name, budget)
        return _summary(study, pair, template, suite, name, storage, key)
    study = _open(name, _storage(storage), params, template, budget)
    batch = _resume_batch(study, params, budget, tunable, suite.search_space, template, t)
    remaining = max(0, budget - sum(counts(tr) for tr in study.trials) - len(batch))
    stage = f"tune@{pair}"

    with tracking.stage_run(
        suite.name,
        stage,
        uri=params.mlflow_uri,
        params={"pair": pair, "trials": budget, "study": name, "workers": params.workers},
    ):
        bar = tqdm(
            total=remaining + len(batch),
            desc=stage,
            unit="trial",
            disable=not params.progress,
            file=sys.stderr,
        )
        while batch or remaining > 0:
            if not batch:
                first = len(study.get_trials(deepcopy=False))
                for _ in range(min(max(1, params.workers), remaining)):
                    trial = _ask(study, params, budget)
                    hp = _suggest(trial, tunable, suite.search_space)
                    batch.append((trial, _trial_config(template, t, hp)))
                remaining -= len(batch)
            else:  # the batch an interruption cut short
                first = min(trial.number for trial, _ in batch)
            outcomes = _run_batch(batch, params.threads, before=first)
            # journaled first, told after: a kill in between leaves the batch RUNNING, run
            # again in place on resume and journaled again (``tracking.flush`` keeps one
            # run per trial, the last journaled); told first, a kill in between would
            # leave a trial told but never journaled, its MLflow run lost
            for (trial, cfg), (state, row, history, error, start_ms) in zip(
                batch, outcomes, strict=True
            ):
                done = _outcome(trial, cfg, state, row, history, error, start_ms)
                log_trial(suite.name, stage, pair, done, bar)
            for (trial, _), (state, row, _, error, _) in zip(batch, outcomes, strict=True):
                _tell(study, trial, state, row, error)
            batch = []
        bar.close()
    return _summary(study, pair, template, suite, name, storage, key)


def _ask(study, params, budget: int):
    """A new trial whose point is drawn from its own stream, seeded by
    (``tune.sampler_seed``, its number): a study resumed after a kill asks each number the
    same point as an uninterrupted one (one seeded sampler would restart its stream)."""
    number = len(study.get_trials(deepcopy=False))
    study.sampler = _sampler(params, budget, seed=_trial_seed(params.tune, number))
    return study.ask()


def _resume_batch(study, params, budget: int, tunable, space, template: SuiteCell, tuning) -> list:
    """The batch an interruption (a kill, a lost machine) cut short, to be run again.

    Its trials are still RUNNING: each is run again in place, under its own number with
    the parameters it was asked (a trial seeds its cells itself), and the batch is topped
    up with the trials it had not asked yet, so the resumed study equals an uninterrupted
    one: the same numbers, points, values and states, and no FAIL left by the kill. A
    RUNNING trial beyond the budget (it was lowered) is closed as FAIL, not counted."""
    import warnings

    import optuna
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    stale = sorted(
        (tr for tr in trials if tr.state == TrialState.RUNNING), key=lambda tr: tr.number
    )
    if not stale:
        return []
    first = stale[0].number
    before = sum(counts(tr) for tr in trials if tr.number < first)
    size = max(0, min(max(1, params.workers), budget - before))
    keep, drop = stale[:size], stale[size:]
    for tr in drop:
        study.tell(tr.number, state=TrialState.FAIL)
    batch = []
    for tr in keep:
        study.sampler = _sampler(params, budget, seed=_trial_seed(params.tune, tr.number))
        trial = optuna.trial.Trial(study, tr._trial_id)
        batch.append((trial, _trial_config(template, tuning, _suggest(trial, tunable, space))))
    asked = sum(1 for tr in trials if tr.number >= first)  # its trials told before the kill too
    for _ in range(max(0, size - asked)):  # killed while asking its trials
        trial = _ask(study, params, budget)
        batch.append((trial, _trial_config(template, tuning, _suggest(trial, tunable, space))))
    warnings.filterwarnings("ignore", message="The reported value is ignored")
    return batch
