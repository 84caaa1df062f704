"""The warm server (see ``benchmark.warm``): where it lives (its key, socket, lock, pid
and log files), and the process itself, which imports the third-party libraries once and
forks a child per stage command.

Started by the caller as a plain script (``python -I benchmark/warm/server.py serve KEY``),
so it imports only the standard library at top level and never ``benchmark``: each child
imports the package from the caller's ``sys.path``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import struct
import sys
import threading
import time
from pathlib import Path

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


def _idle_seconds() -> float:
    return float(os.environ.get("BENCHMARK_WARM_IDLE", "120"))


def server_key() -> str:
    """Same interpreter, same installed packages, same warm code -> same server."""
    h = hashlib.sha256()
    h.update(os.path.realpath(sys.executable).encode())
    h.update(sys.prefix.encode())
    for entry in sys.path:  # site-packages' mtime changes whenever pip installs
        if entry.endswith("site-packages") and os.path.isdir(entry):
            h.update(f"{entry}:{os.stat(entry).st_mtime_ns}".encode())
    for source in sorted(Path(__file__).parent.glob("*.py")):  # the caller and the server
        h.update(source.read_bytes())
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
