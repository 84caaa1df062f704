"""benchmark.workers.forked: the one way cells and trials run in parallel processes."""

from __future__ import annotations

import os
import signal
import time

import pytest

from benchmark.workers import DIED, forked


def _square(ask, x):
    return x * x


def _asks_twice(ask, x):
    return ask(x) + ask(x + 1)


def _pid_and_window(ask, pause):
    start = time.monotonic()
    time.sleep(pause)
    return os.getpid(), start, time.monotonic()


def _fails(ask, x):
    if x == 1:
        raise ValueError(f"bad cell {x}")
    time.sleep(30)  # killed when the parent leaves


def _dies(ask, x):
    if x == 0:
        os.kill(os.getpid(), signal.SIGKILL)
    return x


def test_every_task_comes_back_with_its_index():
    got = dict(forked(_square, [(x,) for x in range(5)], at_once=2))
    assert got == {x: x * x for x in range(5)}


def test_a_child_asks_and_the_parent_answers():
    seen = []

    def answer(i, message):
        seen.append((i, message))
        return 10 * message

    got = dict(forked(_asks_twice, [(1,), (5,)], at_once=2, answer=answer))
    assert got == {0: 10 * 1 + 10 * 2, 1: 10 * 5 + 10 * 6}
    assert sorted(seen) == [(0, 1), (0, 2), (1, 5), (1, 6)]


def test_at_most_at_once_children_run_together_each_in_its_own_process():
    windows = [w for _, w in forked(_pid_and_window, [(0.3,)] * 4, at_once=2)]
    pids = {pid for pid, _, _ in windows}
    assert len(pids) == 4 and os.getpid() not in pids
    moments = sorted(t for _, start, end in windows for t in ((start, 1), (end, -1)))
    running = peak = 0
    for _, step in moments:
        running += step
        peak = max(peak, running)
    assert peak == 2


def test_a_childs_exception_is_raised_again_and_the_others_are_stopped():
    start = time.monotonic()
    with pytest.raises(ValueError, match="bad cell 1"):
        list(forked(_fails, [(0,), (1,)], at_once=2))
    assert time.monotonic() - start < 20  # the sleeping child was killed, not awaited


def test_a_child_that_dies_without_a_word_is_reported_as_died():
    got = dict(forked(_dies, [(0,), (1,)], at_once=2))
    assert got[0] is DIED and got[1] == 1
