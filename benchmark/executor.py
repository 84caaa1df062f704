"""Where a train stage's cells run: ``params.executor``.

- ``local`` (default): worker processes on this machine (``run_many``).
- ``slurm``: a Slurm job array through submitit, one cell per task, with the
  ``cluster:`` settings of params.yaml (partition, timeout, CPUs, GPUs and memory per
  task, how many tasks at once, any other sbatch option).
- ``submitit-local``: submitit's ``LocalExecutor``: every cell a real subprocess, submitted,
  pickled and collected through the same code as Slurm (at most ``workers`` at a time).

Each task trains one cell exactly as a local worker does (``run_cell`` with the stage's
per-epoch tracker, one torch thread per CPU) and returns (row, history, seconds); the
stage writes the row atomically as it comes back, as with local workers. Resuming: the
jobs of a submission are recorded in ``<cluster.folder>/<pair>/jobs.json`` (config hash
and code digest -> job id) as soon as they are submitted; a re-run of the stage (after
Ctrl-C, a kill, a lost login node) collects a recorded job's result when it finished,
waits for it when it is still queued or running on Slurm, and submits only the cells that
have neither, so no finished cell is trained twice.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from benchmark.errors import UserError

if TYPE_CHECKING:
    from benchmark.config import SuiteCell

KINDS = ("local", "slurm", "submitit-local")


CURVE_POINTS = 6


def train_one(cell: SuiteCell, cfg, progress: bool):
    from benchmark.train import run_cell, val_knn_tracker

    t0 = time.perf_counter()
    history: list[dict] = []
    # the learning curve MLflow shows: CURVE_POINTS validation kNN values, the last at
    # the end (a trained cell's model is not selected on them: each point costs an
    # encoding of the draw and the validation split)
    tracker = val_knn_tracker(history, epochs=cfg.epochs, evals=CURVE_POINTS)
    row = run_cell(cfg, on_epoch=tracker, progress=progress)
    return cell, cfg, row, history, time.perf_counter() - t0


def run_many(jobs: list, workers: int, progress: bool):
    """The ``local`` executor: train cells, ``workers`` processes at a time (one torch thread each), yielding
    (cell, cfg, row, history, seconds) as each finishes. Every cell seeds itself, so the
    numbers do not depend on which worker ran it."""
    if workers <= 1 or len(jobs) <= 1:
        for cell, cfg in jobs:
            yield _guard(lambda cell=cell, cfg=cfg: train_one(cell, cfg, progress), cfg)
        return
    import torch

    from benchmark.workers import DIED, forked

    threads = torch.get_num_threads()
    argsets = [(cell, cfg, threads) for cell, cfg in jobs]
    for i, result in forked(_train_forked, argsets, at_once=workers):
        cfg = jobs[i][1]
        if result is DIED:
            raise UserError(f"cell {cfg.config_hash()}: its worker process died")
        kind, value = result
        if kind == "error":
            raise UserError(f"cell {cfg.config_hash()}: {value}")
        yield value


def _train_forked(ask, cell: SuiteCell, cfg, threads: int) -> tuple:
    """A cell in a forked worker: ("done", what ``train_one`` gives) or ("error", the
    message of a bad-input error, which the parent turns into a UserError)."""
    import torch

    torch.set_num_threads(threads)
    try:
        return "done", train_one(cell, cfg, False)
    except BAD_INPUT as err:
        return "error", str(err)


# what a cell raises for bad input (a UserError naming the cell), wherever it runs
BAD_INPUT = (ValueError, KeyError, FileNotFoundError)


def _guard(fn, cfg):
    try:
        return fn()
    except BAD_INPUT as err:
        raise UserError(f"cell {cfg.config_hash()}: {err}") from None


def task(cell: SuiteCell, cfg, threads: int, device: str, cwd: str) -> tuple[dict, list, float]:
    """One cell, in a job: the same training as a local worker's (``train_one``)."""
    os.chdir(cwd)  # relative data roots and suites, as in the stage
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    if device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    import torch

    torch.set_num_threads(threads)
    _, _, row, history, seconds = train_one(cell, cfg, False)
    return row, history, seconds


def _executor(kind: str, folder: Path, params):
    import submitit

    c = params.cluster
    if kind == "submitit-local":
        ex = submitit.LocalExecutor(folder=folder)
        ex.update_parameters(timeout_min=c.timeout_min, gpus_per_node=c.gpus_per_task)
        return ex
    ex = submitit.SlurmExecutor(folder=folder)
    options = dict(
        time=c.timeout_min,
        cpus_per_task=c.cpus_per_task,
        ntasks_per_node=1,
        nodes=1,
        job_name=f"benchmark-{folder.name}",
    )
    if c.gpus_per_task:
        options["gpus_per_task"] = c.gpus_per_task
    if c.partition:
        options["partition"] = c.partition
    if c.mem_gb:
        options["mem"] = f"{int(c.mem_gb * 1024)}M"
    if c.array_parallelism:
        options["array_parallelism"] = c.array_parallelism
    if c.slurm_additional:
        options["additional_parameters"] = dict(c.slurm_additional)
    ex.update_parameters(**options)
    return ex


def _job(kind: str, folder: Path, job_id: str):
    import submitit

    cls = submitit.LocalJob if kind == "submitit-local" else submitit.SlurmJob
    return cls(folder=folder, job_id=job_id)


def _key(cfg, digest: str) -> str:
    return f"{cfg.config_hash()}:{digest}"


def run_cells(
    jobs: list, params, pair: str, digest: str, *, kind: str | None = None
) -> Iterator[tuple]:
    """Train (cell, cfg) jobs on ``params.executor``; yields (cell, cfg, row, history,
    seconds) as each finishes, in completion order."""
    kind = kind or params.executor
    if kind == "local":
        yield from run_many(jobs, params.workers, params.progress)
        return
    if kind not in KINDS:
        raise ValueError(f"executor {kind!r}; allowed: {', '.join(KINDS)}")
    folder = Path(params.cluster.folder).resolve() / pair
    folder.mkdir(parents=True, exist_ok=True)
    manifest_path = folder / "jobs.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    ex = _executor(kind, folder, params)
    cwd = str(Path.cwd())
    running: list[tuple] = []  # (job, cell, cfg)
    todo: list[tuple] = []
    for cell, cfg in jobs:  # a recorded job of an earlier, interrupted submission
        job_id = manifest.get(_key(cfg, digest))
        job = _job(kind, folder, job_id) if job_id else None
        if job is not None and job.paths.result_pickle.exists():
            try:
                job.result()  # a task that failed is submitted again
            except Exception:
                todo.append((cell, cfg))
                continue
            running.append((job, cell, cfg))
        elif job is not None and kind == "slurm" and job.state in _SLURM_ALIVE:
            running.append((job, cell, cfg))
        else:
            todo.append((cell, cfg))
    if running:
        print(f"  {pair}: {len(running)} cell(s) collected from an earlier submission")
    at_once = params.workers if kind == "submitit-local" else len(todo)
    at_once = max(1, at_once)

    def submit(batch: list[tuple]) -> None:
        if not batch:
            return
        args = [(cell, cfg, params.threads, params.device, cwd) for cell, cfg in batch]
        submitted = ex.map_array(task, *zip(*args, strict=True))  # one job array
        for job, (cell, cfg) in zip(submitted, batch, strict=True):
            manifest[_key(cfg, digest)] = job.job_id
            running.append((job, cell, cfg))
        from benchmark import atomic

        atomic.write_text(manifest_path, json.dumps(manifest, indent=1, sort_keys=True) + "\n")

    submit(todo[:at_once])
    todo = todo[at_once:]
    poll = params.cluster.poll_seconds
    while running:
        finished = [r for r in running if r[0].done()]
        if not finished:
            time.sleep(poll)
            continue
        for item in finished:
            running.remove(item)
            job, cell, cfg = item
            try:
                row, history, seconds = job.result()
            except Exception as err:
                raise RuntimeError(
                    f"cell {cfg.config_hash()} failed in {kind} job {job.job_id}: "
                    f"{str(err)[-2000:]}"
                ) from None
            yield cell, cfg, row, history, seconds
        free = at_once - len(running) if kind == "submitit-local" else len(todo)
        if todo and free > 0:
            submit(todo[:free])
            todo = todo[free:]


_SLURM_ALIVE = frozenset(
    {"PENDING", "RUNNING", "REQUEUED", "CONFIGURING", "COMPLETING", "RESIZING", "SUSPENDED"}
)
