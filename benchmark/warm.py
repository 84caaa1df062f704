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

This module is imported by every ``python -m benchmark`` call and by the server as a
plain script, so it imports only the standard library at top level.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

# the subcommands that DVC runs as stages; quick tools (list, --help) stay in-process
STAGE_COMMANDS = frozenset({"prepare", "mi", "tune", "train", "results", "report", "check"})
# what the server imports once; every module is optional (skipped when missing)
PRELOAD = (
    "numpy",
    "torch",
    "torch._dynamo",  # imported lazily by the first torch.optim optimizer: 2.6 s
    "torch.nn",
    "torch.optim",
    "torch_geometric",
    "pandas",
    "scipy",
    "sklearn.linear_model",
    "sklearn.neighbors",
    "optuna",
    "pydantic",
    "yaml",
    "tqdm.auto",
    "matplotlib",
    "matplotlib.pyplot",
    "seaborn",
    "mlflow",
    "psutil",
)
_HEADER = struct.Struct("!I")


def _enabled() -> bool:
    if not hasattr(socket, "send_fds") or not hasattr(os, "fork"):
        return False  # Windows: no fork, no descriptor passing
    return os.environ.get("BENCHMARK_WARM", "1").lower() not in {"0", "false", "no", "off"}


def _idle_seconds() -> float:
    return float(os.environ.get("BENCHMARK_WARM_IDLE", "120"))


def server_key() -> str:
    """Same interpreter, same installed packages, same server code -> same server."""
    h = hashlib.sha256()
    h.update(os.path.realpath(sys.executable).encode())
    h.update(sys.prefix.encode())
    for entry in sys.path:  # site-packages' mtime changes whenever pip installs
        if entry.endswith("site-packages") and os.path.isdir(entry):
            h.update(f"{entry}:{os.stat(entry).st_mtime_ns}".encode())
    h.update(Path(__file__).read_bytes())
    return h.hexdigest()[:16]


def runtime_dir() -> Path:
    """A directory only this user can enter (refused if someone else owns it)."""
    base = Path(os.environ.get("XDG_RUNTIME_DIR") or "/tmp") / f"benchmark-warm-{os.getuid()}"
    base.mkdir(mode=0o700, exist_ok=True)
    st = base.stat()
    if st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise PermissionError(f"{base}: not private to this user")
    return base


def paths(key: str | None = None) -> dict[str, Path]:
    key = key or server_key()
    d = runtime_dir()
    return {
        "socket": d / f"{key}.sock",
        "lock": d / f"{key}.lock",
        "pid": d / f"{key}.pid",
        "log": d / f"{key}.log",
    }


# --- the caller ---------------------------------------------------------------------------


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
            [sys.executable, "-I", str(Path(__file__).resolve()), "serve", p["socket"].stem],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            cwd="/",
            start_new_session=True,
            close_fds=True,
        )


# --- the server ---------------------------------------------------------------------------


def serve(key: str) -> int:
    import fcntl

    p = paths(key)
    lock = os.open(p["lock"], os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return 0  # another server won the race
    t0 = time.perf_counter()
    for name in PRELOAD:
        try:
            __import__(name)
        except Exception as err:  # noqa: BLE001 - an optional module failing is not fatal
            print(f"warm: skipped {name}: {err}", flush=True)
    print(f"warm {key}: imports took {time.perf_counter() - t0:.1f} s", flush=True)
    with contextlib.suppress(FileNotFoundError):
        p["socket"].unlink()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(p["socket"]))
    os.chmod(p["socket"], 0o600)
    listener.listen(16)
    listener.settimeout(1.0)
    p["pid"].write_text(str(os.getpid()))
    children: dict[int, dict] = {}  # pid -> the request it serves ({} for a flusher)
    flushers: dict[str, int] = {}  # working directory -> its background flusher
    close_in_child = (listener.fileno(), lock)
    last_busy = time.monotonic()
    try:
        while True:
            for request in _reap(children):
                if not request:
                    continue
                cwd = request["cwd"]
                if (
                    request["argv"][1:2] in (["tune"], ["train"])
                    and flushers.get(cwd) not in children
                ):
                    flushers[cwd] = _fork_flusher(request, close_in_child)
                    children[flushers[cwd]] = {}
            if children:
                last_busy = time.monotonic()
            elif time.monotonic() - last_busy > _idle_seconds():
                return 0
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            last_busy = time.monotonic()
            try:
                pid, request = _fork_child(conn, close_in_child)
            except OSError as err:
                print(f"warm: request failed: {err}", flush=True)
                conn.close()
                continue
            children[pid] = request
            conn.close()
    finally:
        listener.close()
        with contextlib.suppress(FileNotFoundError):
            p["socket"].unlink()
        with contextlib.suppress(FileNotFoundError):
            p["pid"].unlink()


def _reap(children: dict[int, dict]) -> list[dict]:
    """Forget the children that have exited; returns their requests."""
    finished = []
    for pid in list(children):
        with contextlib.suppress(ChildProcessError):
            done, _ = os.waitpid(pid, os.WNOHANG)
            if not done:
                continue
        finished.append(children.pop(pid))
    return finished


def _recv_request(conn: socket.socket) -> tuple[dict, list[int]]:
    conn.settimeout(10)
    data, fds, _flags, _addr = socket.recv_fds(conn, 1 << 16, 3)
    if len(data) < _HEADER.size or len(fds) != 3:
        for fd in fds:
            os.close(fd)
        raise OSError("malformed request")
    (size,) = _HEADER.unpack_from(data)
    data = data[_HEADER.size :]
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise OSError("truncated request")
        data += chunk
    conn.settimeout(None)
    return json.loads(data), fds


def _fork_child(conn: socket.socket, close_in_child: tuple[int, ...]) -> tuple[int, dict]:
    """Fork the caller's stage: the child becomes the caller's process (descriptors,
    directory, environment), runs the command and reports its exit code on ``conn``."""
    request, fds = _recv_request(conn)

    def stage() -> int:
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        _become(request)
        conn.sendall(f"pid {os.getpid()}\n".encode())
        threading.Thread(target=_die_with_caller, args=(conn,), daemon=True).start()
        return _run(request["argv"][1:])

    pid = _fork(close_in_child, stage, report=lambda code: conn.sendall(f"exit {code}\n".encode()))
    for fd in fds:
        os.close(fd)
    return pid, request


def _fork_flusher(request: dict, close_in_child: tuple[int, ...]) -> int:
    """Write the finished stages' MLflow journals in ``request``'s directory, in a child at
    the lowest priority; its output goes to the server's log. Failing is harmless: the
    results stage flushes whatever is left."""

    def flush() -> int:
        os.nice(19)
        _become(request)
        from benchmark import tracking

        n = tracking.flush()
        print(f"warm: {request['cwd']}: {n} MLflow runs written in the background")
        return 0

    return _fork(close_in_child, flush)


def _fork(close_in_child: tuple[int, ...], body, report=None) -> int:
    """Fork; returns the child's pid. The child closes the server's descriptors (the
    listening socket and its lock), takes a process group of its own, runs ``body`` and
    exits with its code (1 and a traceback on an exception), calling ``report(code)`` first.
    """
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        for fd in close_in_child:
            os.close(fd)
        os.setpgid(0, 0)
        code = body()
    except BaseException:  # noqa: BLE001 - the child must always report and exit
        import traceback

        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        if report is not None:
            with contextlib.suppress(OSError):
                report(code)
        os._exit(code)


def _become(request: dict) -> None:
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.path[:] = request["path"]
    sys.argv = list(request["argv"])
    for name in [m for m in sys.modules if m == "benchmark" or m.startswith("benchmark.")]:
        del sys.modules[name]
    sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115
    sys.stdout = open(1, "w", encoding="utf-8", closefd=False, buffering=1 if os.isatty(1) else -1)  # noqa: SIM115
    sys.stderr = open(
        2, "w", encoding="utf-8", errors="backslashreplace", closefd=False, buffering=1
    )  # noqa: SIM115
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    # a fresh process seeds these from the OS; forked ones would share the server's state
    import random

    random.seed()
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed()


def _die_with_caller(conn: socket.socket) -> None:
    """The caller never writes after its request: EOF means it died (e.g. kill -9)."""
    with contextlib.suppress(OSError):
        while conn.recv(1024):
            pass
    os.killpg(0, signal.SIGKILL)


def _run(argv: list[str]) -> int:
    import atexit
    import traceback

    try:
        from benchmark.cli import main

        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except BaseException:  # noqa: BLE001 - report like an uncaught exception would
        traceback.print_exc()
        code = 1
    atexit._run_exitfuncs()
    return code


if __name__ == "__main__" and sys.argv[1:2] == ["serve"]:
    raise SystemExit(serve(sys.argv[2]))
