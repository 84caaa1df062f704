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

The budget: a study is done when ``trial_budget`` trials *count*, and a trial counts when
it is COMPLETE, PRUNED, or FAIL with a recorded ``error`` (an exception, a diverged cell:
the point was tried and is bad). A trial whose worker died (killed, machine lost: FAIL
with no ``error``) does not count; with shared-study workers it is retried.

Two ways to run a study:

- default (``tune.workers: null``): one process asks trials in batches of ``workers`` and
  runs each in a forked process. Deterministic: the same seed asks the same points
  whatever the workers' speed. One invocation per study at a time.
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
  (``tune.sampler_seed``, n). With one worker the study is deterministic, the same on
  SQLite and PostgreSQL (though not the default mode's sequence: another seeding); with
  several, which points are asked (and pruned) depends on which trials have finished
  when a worker asks, and which worker gets which number: the budget, the study's name,
  the search space and each trial's result for its parameters (cells seed themselves)
  are deterministic, the sequence of points and the best value are not.
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
from benchmark.tracking import redact


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pair", required=True, help="METHOD-OBJECTIVE, e.g. simclr-triplet")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="shared-study workers in this invocation (default: params tune.workers; unset: "
        "one process running batches of `workers` trials). Start one invocation per "
        "machine against one PostgreSQL tune.storage to spread a study over machines",
    )


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
    if getattr(args, "workers", None) is not None:
        if args.workers < 1:
            raise UserError(f"--workers: must be >= 1, got {args.workers}")
        params = params.model_copy(
            update={"tune": params.tune.model_copy(update={"workers": args.workers})}
        )
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


def _pruner(template: dict):
    import optuna

    return optuna.pruners.MedianPruner(
        n_startup_trials=3, n_warmup_steps=template["tuning_epochs"] // 2
    )


def _storage(url: str, tune=None):
    """``_make_storage``, retried: workers starting together on a fresh database race to
    create Optuna's tables, and all but one see the others' rows."""
    import time

    for attempt in range(5):
        try:
            return _make_storage(url, tune)
        except Exception as err:  # IntegrityError, OperationalError (locked), ...
            if attempt == 4 or "sqlalchemy" not in type(err).__module__:
                raise
            time.sleep(0.5 + attempt)


def _make_storage(url: str, tune=None):
    """An Optuna storage for ``url``: RDB URLs (sqlite, postgresql, mysql) get an
    RDBStorage, with heartbeats and the retry of dead workers' trials when ``tune`` (the
    shared-study settings) is given; anything else goes to Optuna as it is."""
    import optuna

    if "://" not in url or url.split("://", 1)[0].split("+")[0] not in _RDB_DIALECTS:
        return url
    kwargs: dict = {}
    if url.startswith("sqlite"):
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 120}}
    else:
        kwargs["engine_kwargs"] = {"pool_pre_ping": True}
    if tune is not None:
        import warnings

        retry = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)
        key = "heartbeat_stale_trial_callback"
        if retry is None:  # Optuna < 4.9
            retry, key = optuna.storages.RetryFailedTrialCallback, "failed_trial_callback"
        kwargs.update(
            heartbeat_interval=tune.heartbeat_seconds,
            grace_period=max(tune.grace_seconds, tune.heartbeat_seconds + 1),
            **{key: retry(max_retry=tune.retries)},
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # heartbeats are "experimental"
            return optuna.storages.RDBStorage(url, **kwargs)
    return optuna.storages.RDBStorage(url, **kwargs)


_RDB_DIALECTS = frozenset(
    {"sqlite", "postgresql", "postgres", "mysql", "mariadb", "oracle", "mssql"}
)


def _open(name: str, storage, params, template: dict, budget: int):
    import optuna

    return optuna.create_study(
        study_name=name,
        storage=storage,
        direction="maximize",
        load_if_exists=True,
        sampler=_sampler(params, budget),
        pruner=_pruner(template),
    )


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
    if params.tune.workers is not None:
        study = run_shared(pair, template, tunable, suite, params, name, budget)
        return _summary(study, pair, template, suite, name, storage, key)
    study = _open(name, _storage(storage), params, template, budget)
    # a trial an interruption left RUNNING will never report: closed as FAIL, not counted
    interrupted = [tr for tr in study.trials if tr.state == optuna.trial.TrialState.RUNNING]
    for tr in interrupted:
        study.tell(tr.number, state=optuna.trial.TrialState.FAIL)
    remaining = max(0, budget - sum(counts(tr) for tr in study.trials))
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
    return _summary(study, pair, template, suite, name, storage, key)


def _summary(study, pair: str, template: dict, suite, name: str, storage: str, key: str):
    import optuna

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
        storage=redact(storage),  # reports/tuned/*.json is committed: never a password
        key=key,
        n_trials=sum(counts(tr) for tr in study.trials),
    )
    return best, rows


# ---------------------------------------------------------------- shared-study workers


def run_shared(pair: str, template: dict, tunable, suite, params, name: str, budget: int):
    """``params.tune.workers`` worker processes on the study until ``budget`` trials count
    (they may share it with workers of other invocations, on other machines). Returns the
    study, re-opened after the workers are done."""
    import multiprocessing as mp
    from multiprocessing.connection import wait

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
            ctx = mp.get_context("fork")
            live, procs = {}, []
            for _ in range(n):
                parent, child = ctx.Pipe(duplex=False)
                proc = ctx.Process(target=_work_process, args=(child, spec), daemon=True)
                proc.start()
                child.close()
                live[parent] = proc
                procs.append(proc)
            try:
                while live:
                    for conn in wait(list(live)):
                        try:
                            msg = conn.recv()
                        except EOFError:  # finished, or died (its trial is retried)
                            del live[conn]
                            conn.close()
                            continue
                        if msg[0] == "trial":
                            log_trial(suite.name, stage, pair, msg[1], bar)
                        elif msg[0] == "error":
                            raise UserError(f"{stage}: a worker failed: {msg[1]}")
            finally:
                for proc in procs:
                    if proc.is_alive() and live:
                        proc.kill()
                    proc.join()
        bar.close()
    study = _open(name, _storage(params.tune.storage), params, template, budget)
    got = sum(counts(tr) for tr in study.trials)
    if got < budget:
        raise UserError(f"{stage}: the workers stopped with {got} of {budget} trials")
    return study


def _work_process(conn, spec) -> None:
    try:
        _work(*spec, report=lambda outcome: conn.send(("trial", outcome)))
    except BaseException as err:  # noqa: BLE001 - reported to the parent, then re-raised
        conn.send(("error", f"{type(err).__name__}: {err}"))
        raise
    finally:
        conn.close()


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
                    trial.set_user_attr("worker", me)
                    if isinstance(storage, optuna.storages.RDBStorage):
                        storage.record_heartbeat(trial._trial_id)
            if trial is None:
                time.sleep(idle)  # the budget is claimed; wait for the running ones
                continue
            stop = threading.Event()
            beat = threading.Thread(
                target=_heartbeat, args=(storage, trial._trial_id, tune, stop), daemon=True
            )
            beat.start()
            try:
                # each trial draws from its own seeded stream: workers never propose the same
                # point for want of a different seed, and one worker is deterministic
                study.sampler = _sampler(params, budget, seed=_trial_seed(tune, trial.number))
                hp = {}
                for name_ in tunable:
                    r = getattr(suite.search_space, name_)
                    hp[name_] = trial.suggest_float(name_, r.low, r.high, log=r.log)
                cfg = _trial_config(template, t, hp)
                started = time.time()
                state, row, history, error = _run_here(trial, cfg)
                _tell(study, trial, state, row, error)
            finally:
                stop.set()
                beat.join()
            report(
                {
                    "number": trial.number,
                    "params": dict(trial.params),
                    "state": state,
                    "row": row,
                    "history": history,
                    "error": error,
                    "start_ms": int(started * 1000),
                    "config_hash": cfg.config_hash(),
                    "worker": me,
                }
            )
    finally:
        lock.close()


def _heartbeat(storage, trial_id: int, tune, stop) -> None:
    import optuna

    if not isinstance(storage, optuna.storages.RDBStorage):
        return
    while not stop.wait(tune.heartbeat_seconds):
        try:
            storage.record_heartbeat(trial_id)
        except Exception:  # noqa: BLE001 - a missed beat; the grace period allows several
            pass


def _run_here(trial, cfg) -> tuple:
    """Train one trial in this process: (state, row, history, error), as ``_trial_worker``."""
    from benchmark.train import run_cell, val_knn_tracker

    history: list[dict] = []
    tracker = val_knn_tracker(history, epochs=cfg.epochs)

    class Pruned(Exception):
        pass

    def on_epoch(epoch: int, loss: float, method, data, device) -> None:
        acc = tracker(epoch, loss, method, data, device)
        if acc is None:
            return
        trial.report(acc, epoch)
        if trial.should_prune():
            raise Pruned

    try:
        row = run_cell(cfg, test=False, on_epoch=on_epoch, progress=False)
    except Pruned:
        return "PRUNED", None, history, None
    except Exception as err:  # a failed trial; the study goes on
        return "FAIL", None, history, f"{type(err).__name__}: {err}"
    if row["diverged"] or not math.isfinite(row["val_acc"]):
        return "FAIL", row, history, "diverged"
    return "COMPLETE", row, history, None


class _ClaimLock:
    """A lock shared by every worker of one study, held in the storage itself: a
    PostgreSQL advisory lock (or MySQL's GET_LOCK), a file lock beside a SQLite file.
    Released by the database / the kernel when its holder dies."""

    def __init__(self, url: str, study_name: str) -> None:
        self.url, self.name = url, study_name
        self.key = int.from_bytes(hashlib.sha256(study_name.encode()).digest()[:8], "big") >> 1
        dialect = url.split("://", 1)[0].split("+")[0] if "://" in url else ""
        self.kind = {"postgresql": "pg", "postgres": "pg", "mysql": "my", "mariadb": "my"}.get(
            dialect, "file" if dialect == "sqlite" else None
        )
        if self.kind is None:
            raise UserError(
                f"tune.storage {redact(url)}: shared-study workers need a sqlite, postgresql "
                "or mysql storage (for the lock that keeps the budget exact)"
            )
        self._conn = self._file = None

    def __enter__(self):
        import sqlalchemy

        if self.kind == "file":
            import fcntl

            db = sqlalchemy.engine.make_url(self.url).database or "optuna.db"
            if self._file is None:
                self._file = open(f"{db}.claim.lock", "a")  # noqa: SIM115
            fcntl.flock(self._file, fcntl.LOCK_EX)
            return self
        if self._conn is None:
            engine = sqlalchemy.create_engine(self.url, poolclass=sqlalchemy.pool.NullPool)
            self._conn = engine.connect()
        if self.kind == "pg":
            self._conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": self.key})
        else:
            self._conn.execute(
                sqlalchemy.text("SELECT GET_LOCK(:k, -1)"), {"k": f"optuna-{self.key}"}
            )
        self._conn.commit()
        return self

    def __exit__(self, *exc) -> None:
        import sqlalchemy

        if self.kind == "file":
            import fcntl

            fcntl.flock(self._file, fcntl.LOCK_UN)
        elif self.kind == "pg":
            self._conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
            self._conn.commit()
        else:
            self._conn.execute(
                sqlalchemy.text("SELECT RELEASE_LOCK(:k)"), {"k": f"optuna-{self.key}"}
            )
            self._conn.commit()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        if self._file is not None:
            self._file.close()


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


def log_trial(suite_name: str, stage: str, pair: str, outcome: dict, bar) -> None:
    """Journal one told trial (an MLflow nested run) and print its line."""
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
