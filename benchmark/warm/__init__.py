"""A warm process that stage commands fork from, so 60-odd DVC stages do not each pay
~7 s of imports (torch 3 s, torch._dynamo 2.6 s on the first optimizer, pandas, optuna...).

`python -m benchmark <stage>` first tries ``run_warm``: it connects to a server on a Unix
socket, which forks a child that runs the command exactly as a fresh process would: with
the caller's argv, working directory, environment, ``sys.path`` and stdin/stdout/stderr
(the file descriptors themselves are passed over the socket). The server has imported
only third-party libraries, never ``benchmark``: each child imports this package from
disk, so an edited source file takes effect at once. The child's exit code is the
caller's. Ctrl-C and SIGTERM sent to the caller are forwarded to the child's process
group; if the caller dies (even by kill -9), the child and its workers are killed too, so
an interrupted stage never keeps running behind DVC's back.

After a tune or train stage's child exits, the server flushes the MLflow journals that
stages leave behind (``tracking.flush``) in a background child at the lowest CPU priority,
using the core that DVC's own per-stage bookkeeping leaves idle; the ``results`` stage
then has little left to write (the two take turns through a lock file).

When no server is running the caller starts one in the background and runs its own
command in-process (it does not wait). The server is keyed on the Python interpreter, its
installed packages and this file, and exits after ``BENCHMARK_WARM_IDLE`` seconds (default
120) without work. ``BENCHMARK_WARM=0`` turns all this off.

This package is imported by every ``python -m benchmark`` call: the caller lives here, the
server (and where it lives: its key and files) in ``benchmark/warm/server.py``, which runs
as a plain script. Both import only the standard library at top level.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from benchmark.warm.server import _HEADER, paths, runtime_dir, serve, server_key

__all__ = ["STAGE_COMMANDS", "paths", "run_warm", "runtime_dir", "serve", "server_key"]

# the subcommands that DVC runs as stages; quick tools (list, --help) stay in-process
STAGE_COMMANDS = frozenset({"prepare", "mi", "tune", "train", "results", "report", "check"})
SERVER_SCRIPT = Path(__file__).resolve().with_name("server.py")


def _enabled() -> bool:
    if not hasattr(socket, "send_fds") or not hasattr(os, "fork"):
        return False  # Windows: no fork, no descriptor passing
    return os.environ.get("BENCHMARK_WARM", "1").lower() not in {"0", "false", "no", "off"}


def run_warm(argv: list[str]) -> int | None:
    """Run ``argv`` (a stage subcommand) in a child of the warm server and return its exit
    code; None when it should run in-process instead (disabled, not a stage, no server)."""
    if not argv or argv[0] not in STAGE_COMMANDS or not _enabled():
        return None
    try:
        p = paths()
    except OSError:
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(p["socket"]))
    except OSError:
        sock.close()
        _start_server(p)
        return None
    with sock:
        request = json.dumps(
            {
                "argv": [sys.argv[0], *argv],
                "cwd": os.getcwd(),
                "env": dict(os.environ),
                "path": sys.path,
            }
        ).encode()
        try:
            socket.send_fds(sock, [_HEADER.pack(len(request)) + request], [0, 1, 2])
            reader = sock.makefile("r", encoding="utf-8")
            line = reader.readline()
        except OSError:
            return None
        if not line.startswith("pid "):
            return None  # the server was exiting: nothing has run, run it here
        child = int(line.split()[1])
        forward = _forward_signals(child)
        try:
            line = reader.readline()
        finally:
            for sig, old in forward.items():
                signal.signal(sig, old)
    if line.startswith("exit "):
        return int(line.split()[1])
    return 1  # the child died without reporting (killed)


def _forward_signals(child: int) -> dict:
    def forward(signum, _frame):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child, signum)

    return {
        sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    }


def _start_server(p: dict[str, Path]) -> None:
    """Start a server in the background unless one is running or starting (it holds the
    lock file for its whole life)."""
    import fcntl

    try:
        fd = os.open(p["lock"], os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return  # a server holds it: starting up, or busy and reachable shortly
    os.close(fd)  # released: the server takes it; two racing servers: the second exits
    with contextlib.suppress(OSError), open(p["log"], "ab") as log:
        subprocess.Popen(
            # -I: no script directory on sys.path (benchmark/ would shadow real packages)
            [sys.executable, "-I", str(SERVER_SCRIPT), "serve", p["socket"].stem],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            cwd="/",
            start_new_session=True,
            close_fds=True,
        )
