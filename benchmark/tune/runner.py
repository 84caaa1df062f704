"""The trial runner: one trial trained on the validation split and pruned by the
study's median pruner, either in this process (``_run_here``: shared-study workers) or in
forked processes whose parent answers their prune questions (``_run_batch``: the default
mode). Both go through ``run_trial``."""

from __future__ import annotations

import math


def run_trial(cfg, should_prune) -> tuple:
    """Train one trial: (state, row, history, error), state COMPLETE, PRUNED or FAIL (an
    exception, a diverged cell or a non-finite accuracy). ``should_prune(epoch, acc)`` gets
    each evaluated epoch's validation kNN accuracy; True stops the trial, PRUNED."""
    from benchmark.train import run_cell, val_knn_tracker

    history: list[dict] = []
    tracker = val_knn_tracker(history, epochs=cfg.epochs)

    class Pruned(Exception):
        pass

    def on_epoch(epoch: int, loss: float, method, data, device) -> None:
        acc = tracker(epoch, loss, method, data, device)
        if acc is None:  # an epoch between evaluations
            return
        if should_prune(epoch, acc):
            raise Pruned

    try:
        row = run_cell(cfg, test=False, on_epoch=on_epoch, progress=False)
    except Pruned:
        return "PRUNED", None, history, None
    except Exception as err:  # recorded as a failed trial; the study goes on
        return "FAIL", None, history, f"{type(err).__name__}: {err}"
    if row["diverged"] or not math.isfinite(row["val_acc"]):
        return "FAIL", row, history, "diverged"
    return "COMPLETE", row, history, None


def _run_here(trial, cfg) -> tuple:
    """Train one trial in this process, reporting to the trial itself: as ``run_trial``."""

    def should_prune(epoch: int, acc: float) -> bool:
        trial.report(acc, epoch)
        return trial.should_prune()

    return run_trial(cfg, should_prune)


def _run_batch(batch: list, threads: int, before: int | None = None) -> list[tuple]:
    """Run each (trial, cfg) in a forked process (:func:`benchmark.workers.forked`), all
    at once; answer their per-epoch prune questions.

    The pruner sees only the trials numbered below ``before`` (the batch's first): those
    told before the batch was asked. A batch run again after a kill that came while its
    trials were being told gets the same verdicts as the first time.

    Returns, in batch order, (state, row, history, error, start_ms) with state COMPLETE,
    PRUNED or FAIL (an exception, a diverged cell or a non-finite accuracy).
    """
    import time

    from benchmark.workers import DIED, forked

    def answer(i: int, epoch_acc: tuple[int, float]) -> bool:
        trial = batch[i][0]
        trial.report(epoch_acc[1], epoch_acc[0])
        return _should_prune(trial, before)

    outcome: list = [None] * len(batch)
    start_ms = int(time.time() * 1000)
    argsets = [(cfg, threads) for _, cfg in batch]
    for i, result in forked(_trial_worker, argsets, at_once=len(batch), answer=answer):
        died = ("FAIL", None, [], "worker process died")
        outcome[i] = (*(died if result is DIED else result), start_ms)
    return outcome


class _Before:
    """A study seen as it was before trial number ``before`` was asked (for the pruner)."""

    def __init__(self, study, before: int) -> None:
        self._study, self._before = study, before

    def get_trials(self, deepcopy: bool = True, states=None):
        trials = self._study.get_trials(deepcopy=deepcopy, states=states)
        return [tr for tr in trials if tr.number < self._before]

    @property
    def trials(self):
        return self.get_trials()

    def __getattr__(self, name: str):
        return getattr(self._study, name)


def _should_prune(trial, before: int | None) -> bool:
    if before is None:
        return trial.should_prune()
    frozen = trial.study._storage.get_trial(trial._trial_id)
    return trial.study.pruner.prune(_Before(trial.study, before), frozen)


def _trial_worker(ask, cfg, threads: int) -> tuple:
    """A forked trial: each evaluated epoch's accuracy goes to the parent, which answers
    with the pruner's verdict; returns the outcome of ``run_trial``."""
    import torch

    import benchmark.train  # noqa: F401 - imported before the threads are set, as always

    torch.set_num_threads(threads)
    return run_trial(cfg, lambda epoch, acc: ask((epoch, acc)))
