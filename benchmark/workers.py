"""The one way cells and trials run in parallel processes (the train stage's cells, a
tuning batch's trials, a shared study's workers): each task is a forked child with a duplex
pipe to this process.

A child runs ``target(ask, *args)``. ``ask(message)`` sends a question and waits for the
answer, which ``answer(index, message)`` gives in the parent (a trial's epoch accuracy ->
the pruner's verdict; a finished trial -> "journaled" once it is journaled). What
``target`` returns comes back last; an exception it raises is raised again in the parent.
A child that dies without a word (SIGKILL, out of memory) yields :data:`DIED`.

Fork, not spawn: the child starts with the parent's imports (torch, the registries), so a
short trial does not pay for them again; every cell and trial seeds itself, so numbers do
not depend on which child ran it. Written here on multiprocessing's Pipe because the
callers need the question-and-answer channel, which concurrent.futures does not offer.
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection, wait
from typing import Any

DIED = object()  # the outcome of a child that died without a word
Ask = Callable[[Any], Any]


def forked(
    target: Callable[..., Any],
    argsets: list[tuple],
    *,
    at_once: int,
    answer: Callable[[int, Any], Any] | None = None,
) -> Iterator[tuple[int, Any]]:
    """Run ``target(ask, *args)`` for each ``args`` of ``argsets`` in forked children, at
    most ``at_once`` at a time; yield
    (index, what it returned, or :data:`DIED`) as each finishes. Leaving early (an
    exception here or in a child) kills the children still running."""
    ctx = mp.get_context("fork")
    queue = list(enumerate(argsets))
    live: dict[Connection, tuple[int, Any]] = {}
    try:
        while queue or live:
            while queue and len(live) < max(1, at_once):
                i, args = queue.pop(0)
                parent, child = ctx.Pipe()
                proc = ctx.Process(target=_child, args=(child, target, args), daemon=True)
                proc.start()
                child.close()
                live[parent] = (i, proc)
            for conn in wait(list(live)):
                i, proc = live[conn]
                try:
                    kind, value = conn.recv()
                except EOFError:
                    kind, value = "died", None
                if kind == "ask":
                    conn.send(answer(i, value) if answer is not None else None)
                    continue
                del live[conn]
                conn.close()
                proc.join()
                if kind == "raise":
                    raise value
                yield i, DIED if kind == "died" else value
    finally:
        for conn, (_, proc) in live.items():
            proc.kill()
            proc.join()
            conn.close()


def _child(conn: Connection, target: Callable[..., Any], args: tuple) -> None:
    def ask(message: Any) -> Any:
        conn.send(("ask", message))
        return conn.recv()

    try:
        result = ("done", target(ask, *args))
    except BaseException as err:  # noqa: BLE001 - raised again in the parent
        result = ("raise", _picklable(err))
    try:
        conn.send(result)
    finally:
        conn.close()


def _picklable(err: BaseException) -> BaseException:
    import pickle

    try:
        pickle.loads(pickle.dumps(err))
        return err
    except Exception:  # noqa: BLE001 - an exception that does not survive the pipe
        return RuntimeError(f"{type(err).__name__}: {err}")
