"""Shared-study workers (``tune --workers N``, ``tune.workers: N``, or one invocation per
machine): each claims a trial under the study's lock, runs it and tells it, until the
study's counted trials reach the budget (see ``benchmark.tune``)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from benchmark.errors import UserError
from benchmark.tune.runner import _run_here
from benchmark.tune.storage import _ClaimLock, _heartbeat, _storage
from benchmark.tune.studies import (
    _open,
    _outcome,
    _sampler,
    _suggest,
    _tell,
    _trial_config,
    _trial_seed,
    counts,
    log_trial,
)
from benchmark.workers import forked

if TYPE_CHECKING:
    from benchmark.config import SuiteCell


def run_shared(pair: str, template: SuiteCell, tunable, suite, params, name: str, budget: int):
    """``params.tune.workers`` worker processes on the study until ``budget`` trials count
    (they may share it with workers of other invocations, on other machines). Returns the
    study, re-opened after the workers are done."""
    from tqdm.auto import tqdm

    from benchmark import tracking

    n = params.tune.workers
    stage = f"tune@{pair}"
    spec = (pair, template, tunable, suite, params, name, budget)
    storage = _storage(params.tune.storage, params.tune)  # tables and study made once here
    _open(name, storage, params, template, budget)
    if hasattr(storage, "engine"):
        storage.engine.dispose()  # no connection crosses the fork
    del storage
    with tracking.stage_run(
        suite.name,
        stage,
        uri=params.mlflow_uri,
        params={"pair": pair, "trials": budget, "study": name, "tune_workers": n},
    ):
        bar = tqdm(desc=stage, unit="trial", disable=not params.progress, file=sys.stderr)
        if n == 1:  # in this process: kill -9 of this command is the death of a worker
            _work(*spec, report=lambda o: log_trial(suite.name, stage, pair, o, bar))
        else:

            def journal(_: int, outcome: dict) -> str:  # before the worker tells it
                log_trial(suite.name, stage, pair, outcome, bar)
                return "journaled"

            try:  # a worker that dies leaves its trial to be retried by the others
                for _ in forked(_work_forked, [(spec,)] * n, at_once=n, answer=journal):
                    pass
            except Exception as err:  # noqa: BLE001 - a worker's own error, raised again here
                raise UserError(f"{stage}: a worker failed: {type(err).__name__}: {err}") from None
        bar.close()
    study = _open(name, _storage(params.tune.storage), params, template, budget)
    got = sum(counts(tr) for tr in study.trials)
    if got < budget:
        raise UserError(f"{stage}: the workers stopped with {got} of {budget} trials")
    return study


def _work_forked(ask, spec) -> None:
    """A worker in a forked process: each finished trial is journaled by the parent (the
    answer to ``ask``) before this worker tells it."""
    _work(*spec, report=ask)


def _work(pair, template, tunable, suite, params, name, budget, *, report) -> None:
    """One worker: claim a trial, run it in this process, tell it; until the study's
    counted trials reach the budget (waiting, not leaving, while others still run:
    a trial of a worker that dies is re-queued and someone must run it)."""
    import os
    import socket
    import threading
    import time

    import optuna
    import torch
    from optuna.trial import TrialState

    torch.set_num_threads(params.threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    import warnings

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message="Heartbeat of storage")
    tune = params.tune
    storage = _storage(tune.storage, tune)
    study = _open(name, storage, params, template, budget)
    lock = _ClaimLock(tune.storage, name)
    me = f"{socket.gethostname()}:{os.getpid()}"
    idle = min(2.0, tune.heartbeat_seconds)
    t = suite.tuning
    try:
        while True:
            with lock:
                optuna.storages.fail_stale_trials(study)  # dead workers' trials: retried
                trials = study.get_trials(deepcopy=False)
                running = [tr for tr in trials if tr.state == TrialState.RUNNING]
                for tr in running:  # left by an interrupted single-process run: no heartbeat
                    if "worker" not in tr.user_attrs:
                        study.tell(tr.number, state=TrialState.FAIL)
                done = sum(counts(tr) for tr in trials)
                running = [tr for tr in running if "worker" in tr.user_attrs]
                waiting = any(tr.state == TrialState.WAITING for tr in trials)
                if done >= budget:
                    return
                trial = None
                if waiting or done + len(running) < budget:
                    trial = study.ask()  # a re-queued trial first
                    if isinstance(storage, optuna.storages.RDBStorage):
                        storage.record_heartbeat(trial._trial_id)
                    # each trial draws from its own seeded stream: workers never propose
                    # the same point for want of a different seed, and one worker is
                    # deterministic. Its point is drawn before it is marked as this
                    # worker's, so a worker killed at any moment of a claimed trial leaves
                    # it with its parameters: the retry runs the same point
                    study.sampler = _sampler(params, budget, seed=_trial_seed(tune, trial.number))
                    hp = _suggest(trial, tunable, suite.search_space)
                    trial.set_user_attr("worker", me)
            if trial is None:
                time.sleep(idle)  # the budget is claimed; wait for the running ones
                continue
            stop = threading.Event()
            beat = threading.Thread(
                target=_heartbeat, args=(storage, trial._trial_id, tune, stop), daemon=True
            )
            beat.start()
            try:
                cfg = _trial_config(template, t, hp)
                started = time.time()
                state, row, history, error = _run_here(trial, cfg)
                # journaled before told, as in ``benchmark.tune.study``: a worker killed in
                # between leaves the trial RUNNING, failed and retried with its parameters
                # (journaled again; never told and not journaled)
                report(_outcome(trial, cfg, state, row, history, error, int(started * 1000), me))
                _tell(study, trial, state, row, error)
            finally:
                stop.set()
                beat.join()
    finally:
        lock.close()
