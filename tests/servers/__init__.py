"""Real servers for the engine tests (and for measuring by hand): a throwaway PostgreSQL
cluster and an ``mlflow server``, both on 127.0.0.1, both stopped at the end.

PostgreSQL comes from the machine: ``pg_ctl``/``initdb`` on PATH or under
``/usr/lib/postgresql/*/bin`` (Debian's ``postgresql`` package, which ``.ci/run``
installs). As root, the cluster is initialised and run as the ``postgres`` user (or
``nobody``): PostgreSQL refuses to run as root. Nothing here skips: a server that cannot
start raises ``ServerError`` with the reason and the server's log.

By hand::

    .venv/bin/python tests/servers postgres   # prints a URL, runs until Ctrl-C
    .venv/bin/python tests/servers mlflow
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

PG_USER, PG_PASSWORD = "bench", "s3cret-pw"


class ServerError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin(name: str) -> str:
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None
    )
    if not found:
        raise ServerError(
            f"PostgreSQL's {name} not found on PATH or in /usr/lib/postgresql/*/bin: install "
            "it (`apt-get install -y postgresql`, as .ci/run does)"
        )
    return found


def _run_as() -> tuple[list[str], str | None]:
    """(command prefix, user) to run PostgreSQL's binaries, which refuse root."""
    if os.geteuid() != 0:
        return [], None
    for user in ("postgres", "nobody"):
        try:
            pwd.getpwnam(user)
        except KeyError:
            continue
        return ["runuser", "-u", user, "--"], user
    raise ServerError("running as root and no 'postgres' or 'nobody' user to run PostgreSQL")


@contextlib.contextmanager
def postgres() -> Iterator[dict]:
    """A fresh PostgreSQL cluster: yields {"url", "port", "dir", "seconds"} (the URL holds
    the password: ``postgresql://bench:...@127.0.0.1:PORT/postgres``)."""
    t0 = time.perf_counter()
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    prefix, user = _run_as()
    base = Path(tempfile.mkdtemp(prefix="bench-pg-"))
    data, log, pwfile = base / "data", base / "server.log", base / "pw"
    pwfile.write_text(PG_PASSWORD + "\n")
    if user:
        ent = pwd.getpwnam(user)
        os.chown(base, ent.pw_uid, ent.pw_gid)
        os.chown(pwfile, ent.pw_uid, ent.pw_gid)
    port = free_port()

    def run(*cmd: str, timeout: int = 120) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [*prefix, *cmd], capture_output=True, text=True, timeout=timeout, cwd=base
        )
        if proc.returncode != 0:
            extra = log.read_text()[-2000:] if log.is_file() else ""
            raise ServerError(
                f"{' '.join(cmd[:2])} failed ({proc.returncode}): {proc.stderr[-2000:]}{extra}"
            )
        return proc

    try:
        run(
            initdb, "-D", str(data), "-U", PG_USER, f"--pwfile={pwfile}", "-A", "scram-sha-256",
            "-E", "UTF8", "--no-sync",
        )  # fmt: skip
        options = (
            f"-p {port} -h 127.0.0.1 -k {base} -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off -c max_connections=100"
        )
        run(pg_ctl, "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60", "start")
    except BaseException:
        shutil.rmtree(base, ignore_errors=True)
        raise
    url = f"postgresql://{PG_USER}:{PG_PASSWORD}@127.0.0.1:{port}/postgres"
    try:
        yield {"url": url, "port": port, "dir": base, "seconds": time.perf_counter() - t0}
    finally:
        subprocess.run(
            [*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"],
            capture_output=True,
            timeout=60,
            cwd=base,
        )
        shutil.rmtree(base, ignore_errors=True)


def create_database(url: str, name: str) -> str:
    """A new empty database on the server of ``url``; returns its URL."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return url.rsplit("/", 1)[0] + "/" + name


class MlflowServer:
    """``mlflow server`` with a SQLite backend store and a local artifact root, on
    127.0.0.1; ``stop()`` and ``start()`` again on the same port and store."""

    def __init__(self, root: Path, port: int | None = None) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.start_seconds = 0.0

    def start(self, timeout: float = 180) -> None:
        t0 = time.perf_counter()
        mlflow = Path(sys.executable).parent / "mlflow"
        log = (self.root / "server.log").open("ab")
        self.proc = subprocess.Popen(
            [
                str(mlflow),
                "server",
                "--backend-store-uri",
                f"sqlite:///{self.root / 'mlflow.db'}",
                "--artifacts-destination",
                str(self.root / "artifacts"),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                "1",
            ],  # fmt: skip
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"},
        )
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise ServerError(f"mlflow server exited: {self.log()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as resp:
                    if resp.status == 200:
                        self.start_seconds = time.perf_counter() - t0
                        return
            except OSError:
                pass
            time.sleep(0.3)
        self.stop()
        raise ServerError(f"mlflow server not up after {timeout:.0f} s: {self.log()[-3000:]}")

    def log(self) -> str:
        path = self.root / "server.log"
        return path.read_text(errors="replace") if path.is_file() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None


def main(argv: list[str]) -> int:
    what = argv[0] if argv else "postgres"
    if what == "postgres":
        with postgres() as pg:
            print(f"{pg['url']}  (up in {pg['seconds']:.1f} s; Ctrl-C stops)", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                signal.pause()
        return 0
    server = MlflowServer(Path(tempfile.mkdtemp(prefix="bench-mlflow-")))
    server.start()
    print(f"{server.uri}  (up in {server.start_seconds:.1f} s; Ctrl-C stops)", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        signal.pause()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))


# ---------------------------------------------------------------- a throwaway project

ROOT = Path(__file__).resolve().parents[2]

# a tiny study with a budget above the smoke suite's 2 trials, on digits (prepared in ~1 s)
ENGINES_SUITE = """\
name: engines
description: tests of the engines (tests/test_engines_*.py)
epochs: 1
seeds: [0]
tuning:
  trials: 8
  epochs: 2
  batch_size: 256
blocks:
  - {sweep: method, method: simclr, objectives: [ntxent], dataset: digits, encoder: mlp,
     batch_sizes: [128, 256]}
"""


def project(path: Path, params: dict, *, prepare: bool = True) -> Path:
    """A directory to run stages in: suites/ (the repository's plus ``engines``), a
    params.yaml, and its prepared data. The package is the installed one."""
    import yaml

    path.mkdir(parents=True, exist_ok=True)
    shutil.copytree(ROOT / "suites", path / "suites", dirs_exist_ok=True)
    (path / "suites" / "engines.yaml").write_text(ENGINES_SUITE)
    (path / "params.yaml").write_text(yaml.safe_dump({"progress": False, **params}))
    if prepare:
        proc = bench(path, "prepare")
        assert proc.returncode == 0, proc.stderr[-3000:]
    return path


def env(**extra: str) -> dict:
    out = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    out["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{out['PATH']}"
    out.update(extra)
    return out


def bench(path: Path, *args: str, timeout: int = 600, **extra: str):
    return subprocess.run(
        [sys.executable, "-m", "benchmark", *args],
        cwd=path,
        env=env(**extra),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def bench_popen(path: Path, *args: str, **extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "benchmark", *args],
        cwd=path,
        env=env(**extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
