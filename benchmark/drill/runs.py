"""The drill's copies of the project and its `dvc repro` invocations: copied, configured,
run and killed at a planned moment (``Kill``), their stage timeline recorded."""

from __future__ import annotations

import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
TIMING = ("train_seconds", "views_per_second")
CATEGORIES = ("prepare", "tune", "train", "results")


@dataclass
class Kill:
    """Kill in ``stage`` (a stage name, or a category: prepare, tune, train, results)
    ``delay`` seconds after it starts, or after its output shows ``after``, or after
    ``mlflow.db`` holds ``runs`` runs (a flush under way)."""

    stage: str
    delay: float
    after: str | None = None
    runs: int | None = None


@dataclass
class Invocation:
    rc: int | None = None
    killed: bool = False
    killed_in: str | None = None
    killed_at: float | None = None
    stages: list = field(default_factory=list)  # (stage, seconds since start)
    output: list = field(default_factory=list)
    seconds: float = 0.0


def copy_project(dest: Path, root: Path = ROOT) -> Path:
    """The project's working tree in ``dest``: a git clone with the uncommitted edits
    copied over (and deleted files deleted), without git-ignored files."""
    subprocess.run(["git", "clone", "-q", str(root), str(dest)], check=True)

    def files(*flags: str) -> list[str]:
        out = subprocess.run(
            ["git", "-C", str(root), "ls-files", "-z", *flags],
            capture_output=True,
            check=True,
        ).stdout.decode()
        return [f for f in out.split("\0") if f]

    deleted = set(files("-d"))
    for rel in files("-m", "-o", "--exclude-standard"):
        src = root / rel
        if rel in deleted or not src.is_file():
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest / rel)
    for rel in deleted:
        (dest / rel).unlink(missing_ok=True)
    return dest


def configure(
    repo: Path, suite: str, threads: int, workers: int, suite_yaml: str | None = None
) -> None:
    """params.yaml for the drill; ``suite_yaml``: a suite written in, the only one (and
    dvc.yaml regenerated for it)."""
    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text())
    params.update(suite=suite, threads=threads, workers=workers, progress=False)
    params.pop("mlflow_uri", None)
    params["mlflow_uri"] = "sqlite:///mlflow.db"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    if suite_yaml is not None:
        for other in (repo / "suites").glob("*.yaml"):
            other.unlink()
        (repo / "suites" / f"{suite}.yaml").write_text(suite_yaml)
        proc = subprocess.run(
            [sys.executable, "-m", "benchmark", "pipeline"],
            cwd=repo,
            env=env(),
            capture_output=True,
            text=True,
        )
        if proc.returncode:
            raise RuntimeError(f"benchmark pipeline: {proc.stderr[-2000:]}")


def env() -> dict:
    out = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    out["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{out['PATH']}"
    out["PYTHONUNBUFFERED"] = "1"  # stage output as it happens: the kills follow it
    return out


def category(stage: str | None) -> str:
    return (stage or "").split("@")[0]


def repro(
    repo: Path, kill: Kill | None = None, timeout: float = 3600, timeline: dict | None = None
) -> Invocation:
    """`dvc repro` in ``repo``; with ``kill``, SIGKILL to its process group at that moment
    (if it comes: an invocation that ends first is not killed).

    ``timeline`` (stage -> (pipeline position, reference seconds)): a kill whose stage an
    earlier invocation already finished (DVC skips it) lands in the first stage after it
    that runs, at most half that stage's reference time in."""
    inv = Invocation()
    t0 = time.monotonic()
    errlog = (repo / ".drill-stderr.log").open("a")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "dvc"), "repro"],
        cwd=repo,
        env=env(),
        stdout=subprocess.PIPE,
        stderr=errlog,
        text=True,
        start_new_session=True,
    )
    armed = threading.Event()  # set when the kill's countdown starts
    state = {"stage": None, "since": None, "delay": kill.delay if kill else 0.0}
    timeline = timeline or {}

    def arm(delay: float) -> None:
        state["since"], state["delay"] = time.monotonic(), delay
        armed.set()

    def read() -> None:
        for line in proc.stdout:
            now = time.monotonic() - t0
            inv.output.append(line.rstrip("\n"))
            if line.startswith("Running stage '"):
                state["stage"] = line.split("'")[1]
                inv.stages.append((state["stage"], now))
            if not kill or armed.is_set():
                continue
            cur = state["stage"]
            if _matches(kill.stage, cur) and kill.runs is None:
                if kill.after is None or kill.after in line:
                    arm(kill.delay)
            elif kill.after is None and kill.runs is None and line.startswith("Running stage '"):
                here, there = timeline.get(cur), timeline.get(kill.stage)
                if here and there and here[0] > there[0]:  # the target was done before
                    arm(min(kill.delay, 0.5 * here[1]))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        while proc.poll() is None:
            if time.monotonic() - t0 > timeout:
                raise TimeoutError(f"dvc repro in {repo} took over {timeout} s")
            if kill and kill.runs is not None and not armed.is_set():
                if _matches(kill.stage, state["stage"]):
                    try:
                        if _count_runs(repo / "mlflow.db") >= kill.runs:
                            arm(kill.delay)
                    except sqlite3.Error:  # locked by the flush: look again
                        pass
            if armed.is_set() and time.monotonic() - state["since"] >= state["delay"]:
                inv.killed_in, inv.killed_at = state["stage"], time.monotonic() - t0
                os.killpg(proc.pid, signal.SIGKILL)
                inv.killed = True
                break
            time.sleep(0.02)
        proc.wait()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        reader.join(timeout=10)
        errlog.close()
    inv.rc = proc.returncode
    inv.seconds = time.monotonic() - t0
    with (repo / ".drill-stdout.log").open("a") as log:
        log.write(f"=== dvc repro: rc {inv.rc}, killed in {inv.killed_in} at {inv.killed_at}\n")
        log.write("\n".join(inv.output) + "\n")
    if inv.killed and inv.killed_in == "results" and any("rows from" in x for x in inv.output):
        inv.killed_in = "results (MLflow flush)"
    return inv


def _matches(target: str, stage: str | None) -> bool:
    return stage is not None and (stage == target or category(stage) == target)


def durations(inv: Invocation) -> list[tuple[str, float, float]]:
    """(stage, start, seconds) of each stage an invocation ran."""
    ends = [t for _, t in inv.stages[1:]] + [inv.seconds]
    return [(s, t, e - t) for (s, t), e in zip(inv.stages, ends, strict=True)]


def plan(reference: Invocation, kills: int, seed: int) -> list[Kill]:
    """``kills`` seeded moments in the reference's stages, in pipeline order: one in each
    category first (prepare, a real study, a stage training cells, the results stage's
    flush), the rest uniform over the time spent in those stages."""
    rng = random.Random(seed)
    stages = [d for d in durations(reference) if category(d[0]) in CATEGORIES]
    order = {s: i for i, (s, _, _) in enumerate(stages)}
    picks: list[tuple[str, float]] = []
    for cat in CATEGORIES[: min(kills, len(CATEGORIES))]:
        pool = [d for d in stages if category(d[0]) == cat]
        longest = max(d[2] for d in pool)
        pool = [d for d in pool if d[2] >= 0.5 * longest]  # the stages doing real work
        name, _, secs = rng.choice(pool)
        # early enough to land in the stage when the drilled run is faster than the
        # reference; results: past its rows, into the flush
        lo, hi = (0.5, 0.9) if cat == "results" else (0.05, 0.6)
        picks.append((name, rng.uniform(lo, hi) * secs))
    total = sum(d[2] for d in stages)
    for _ in range(kills - len(picks)):
        at = rng.uniform(0, total)
        for name, _, secs in stages:
            if at < secs:
                picks.append((name, at))
                break
            at -= secs
    picks.sort(key=lambda p: (order[p[0]], p[1]))
    return [Kill(name, round(delay, 2)) for name, delay in picks]


def _count_runs(db: Path) -> int:
    """Runs in an MLflow SQLite store (0 before it exists): how far a flush got."""
    if not db.is_file():
        return 0
    conn = sqlite3.connect(db, timeout=0.5)
    try:
        return conn.execute(
            "SELECT COUNT(*) FROM runs WHERE lifecycle_stage = 'active'"
        ).fetchone()[0]
    except sqlite3.OperationalError as err:  # created, no tables yet
        if "no such table" in str(err):
            return 0
        raise
    finally:
        conn.close()
