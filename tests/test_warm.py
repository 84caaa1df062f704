"""The warm server: a stage command forked from it behaves like a fresh process.

The server's children import `benchmark` from the caller's ``sys.path``; these tests put a
fake `benchmark.cli` first on that path, which records what the child saw (argv, cwd,
environment, parent) and can sleep, so the caller can be interrupted or killed mid-run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from benchmark import warm

CLIENT = textwrap.dedent(
    """
    import sys
    import benchmark.warm as warm
    sys.path.insert(0, sys.argv[1])  # the fake `benchmark` the warm child imports
    code = warm.run_warm(sys.argv[2:])
    raise SystemExit(99 if code is None else code)  # 99: not run through the server
    """
)

FAKE_CLI = textwrap.dedent(
    """
    import json, os, sys, time

    def main(argv):
        with open(os.environ["WARM_TEST_OUT"], "w") as f:
            json.dump({"argv": argv, "cwd": os.getcwd(), "pid": os.getpid(),
                       "ppid": os.getppid(), "marker": os.environ.get("WARM_TEST_MARKER")}, f)
        print("stdout of the child")
        print("stderr of the child", file=sys.stderr)
        if "--sleep" in argv:
            try:
                time.sleep(120)
            except KeyboardInterrupt:
                return 130
        return int(argv[argv.index("--exit") + 1]) if "--exit" in argv else 0
    """
)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A warm server in a private runtime directory, and the environment to reach it."""
    root = tmp_path_factory.mktemp("warm")
    fake = root / "fake"
    (fake / "benchmark").mkdir(parents=True)
    (fake / "benchmark" / "__init__.py").write_text("")
    (fake / "benchmark" / "cli.py").write_text(FAKE_CLI)
    runtime = root / "run"
    runtime.mkdir()
    env = {
        **os.environ,
        "XDG_RUNTIME_DIR": str(runtime),
        "BENCHMARK_WARM": "1",
        "BENCHMARK_WARM_IDLE": "60",
        "WARM_TEST_OUT": str(root / "seen.json"),
    }
    # the first caller finds no server: it starts one and runs in-process (exit 99 here)
    first = subprocess.run([sys.executable, "-c", CLIENT, str(fake), "train"], env=env)
    assert first.returncode == 99
    sock = runtime / f"benchmark-warm-{os.getuid()}" / f"{_key(env)}.sock"
    deadline = time.time() + 120
    while not sock.exists() and time.time() < deadline:
        time.sleep(0.2)
    assert sock.exists(), "the warm server did not come up"
    pid = int(sock.with_suffix(".pid").read_text())
    yield {"env": env, "fake": fake, "seen": root / "seen.json", "pid": pid}
    os.kill(pid, signal.SIGTERM)


def _key(env: dict) -> str:
    out = subprocess.run(
        [sys.executable, "-c", "from benchmark import warm; print(warm.server_key())"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def _client(server, *argv: str, cwd: Path, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", CLIENT, str(server["fake"]), *argv],
        cwd=cwd,
        env={**server["env"], "WARM_TEST_MARKER": str(cwd)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def _wait_seen(server, timeout: float = 30) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            return json.loads(server["seen"].read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            time.sleep(0.05)
    raise AssertionError("the warm child never started")


def _gone(pid: int, timeout: float = 10) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def test_not_a_stage_or_disabled_runs_in_process(monkeypatch):
    assert warm.run_warm(["list"]) is None
    assert warm.run_warm([]) is None
    monkeypatch.setenv("BENCHMARK_WARM", "0")
    assert warm.run_warm(["train", "--pair", "simclr-ntxent"]) is None


def test_child_runs_with_the_callers_argv_cwd_env_fds_and_exit_code(server, tmp_path):
    server["seen"].unlink(missing_ok=True)
    proc = _client(server, "train", "--pair", "x", "--exit", "3", cwd=tmp_path)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 3
    assert out == "stdout of the child\n"
    assert err == "stderr of the child\n"
    seen = _wait_seen(server)
    assert seen["argv"] == ["train", "--pair", "x", "--exit", "3"]
    assert seen["cwd"] == str(tmp_path)
    assert seen["marker"] == str(tmp_path)
    assert seen["ppid"] == server["pid"]  # forked by the server, not started by the caller


def test_ctrl_c_reaches_the_child(server, tmp_path):
    server["seen"].unlink(missing_ok=True)
    proc = _client(server, "train", "--sleep", cwd=tmp_path)
    child = _wait_seen(server)["pid"]
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert _gone(child)


def test_killing_the_caller_kills_the_child(server, tmp_path):
    server["seen"].unlink(missing_ok=True)
    proc = _client(server, "train", "--sleep", cwd=tmp_path, start_new_session=True)
    child = _wait_seen(server)["pid"]
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert _gone(child), "the warm child outlived its killed caller"


def test_real_stage_error_through_the_server(server, tmp_path):
    """The real package (no fake on the path): bad input is still one line and exit 2."""
    (tmp_path / "params.yaml").write_text("suite: nosuch\n")
    proc = subprocess.run(
        [sys.executable, "-m", "benchmark", "train", "--pair", "simclr-ntxent"],
        cwd=tmp_path,
        env=server["env"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1
    assert "nosuch" in proc.stderr
