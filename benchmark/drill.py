"""Kill drills: `dvc repro` killed with SIGKILL at seeded random moments, then resumed.

``python -m benchmark perf drill [--kills 10] [--seed 0] [--suite smoke]`` copies the
project (its working tree, uncommitted edits included, without its databases, data and
journals) twice into a temporary directory and sets ``params.yaml`` (``--threads``,
``--workers``, progress bars off). Stages run with ``BENCHMARK_WARM=0``, so every process
of a stage, the ``results`` stage's MLflow flush included, is in the process group that
is killed (``--warm``: stages fork from a warm server of the drill's own, which flushes
the journals in the background, outside the killed group). The first copy runs ``dvc repro`` uninterrupted: the
reference, and the timeline (when each stage starts) from which the moments are drawn.
In the second copy ``dvc repro`` is killed, the whole process group with SIGKILL, at each
moment in turn, a plain ``dvc repro`` resuming after every kill; a last one must finish.

A moment is a stage and a delay into it (seeded): the first four are one in ``prepare``,
one in a ``tune@`` stage with a real study, one in a ``train@`` stage with cells to
train, and one in ``results`` after its rows are written (its MLflow flush); the rest
are uniform over the reference run's time spent in those stages. After each kill every
file is checked (every CSV parses, no duplicate rows, SQLite databases pass
``integrity_check``, no torn journal line except a last one, no stray temporary file).
At the end the copy's ``reports/results.csv`` (without ``train_seconds`` and
``views_per_second``), its Optuna studies (each trial's number, state, parameters and
value) and its MLflow run tree (runs under their stage, with their tags, params and
metrics, without run ids, times and timing metrics) must equal the reference's. Each
killed invocation also leaves its stage's parent run with status KILLED (the record of
the kill; its finished trials and cells are not run again): those are counted, not
compared. Prints a table per kill and a summary; exit 1 on any difference.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
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


# -- the copies ---------------------------------------------------------------------------


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


WARM: dict = {"on": False, "runtime": None}  # see drill(warm=...)


def env() -> dict:
    out = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    out["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{out['PATH']}"
    out["PYTHONUNBUFFERED"] = "1"  # stage output as it happens: the kills follow it
    if WARM["on"]:  # a warm server of the drill's own (benchmark/warm.py)
        out["XDG_RUNTIME_DIR"] = str(WARM["runtime"])
    else:  # every process of a stage, its MLflow flush included, in the killed group
        out["BENCHMARK_WARM"] = "0"
    return out


def stop_warm_server() -> None:
    """SIGTERM to the drill's own warm server, by the pid it wrote (if it runs)."""
    if not WARM["on"] or WARM["runtime"] is None:
        return
    for pidfile in Path(WARM["runtime"]).glob("benchmark-warm-*/*.pid"):
        try:
            os.kill(int(pidfile.read_text().split()[0]), signal.SIGTERM)
        except (ValueError, OSError):
            pass


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


# -- the moments ----------------------------------------------------------------------------


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


# -- what a run leaves ----------------------------------------------------------------------


def snapshot(repo: Path) -> dict:
    """results.csv's rows (untimed), the Optuna studies, the MLflow run tree."""
    import pandas as pd

    out: dict = {}
    df = pd.read_csv(repo / "reports" / "results.csv").drop(columns=list(TIMING))
    out["results"] = sorted(df.to_csv(index=False, header=False).splitlines())
    out["results_rows"] = len(df)
    out["studies"] = _studies(repo / "optuna.db")
    out["runs"], out["killed_stage_runs"] = _run_tree(repo / "mlflow.db")
    return out


def _studies(db: Path) -> dict:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = f"sqlite:///{db}"
    studies = {}
    for summary in optuna.get_all_study_summaries(url):
        study = optuna.load_study(study_name=summary.study_name, storage=url)
        studies[summary.study_name] = [
            (tr.number, tr.state.name, json.dumps(tr.params, sort_keys=True), tr.value)
            for tr in study.trials
        ]
    return studies


def _run_tree(db: Path) -> tuple[list, int]:
    import logging

    import mlflow

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{db}")
    runs = []
    for exp in client.search_experiments():
        token = None
        while True:
            page = client.search_runs([exp.experiment_id], max_results=1000, page_token=token)
            runs += [(exp.name, r) for r in page]
            token = page.token
            if not token:
                break
    by_id = {r.info.run_id: r for _, r in runs}
    tree, killed = [], 0
    for exp, r in runs:
        tags = r.data.tags
        if tags.get("kind") == "stage" and r.info.status == "KILLED":
            killed += 1
            continue
        parent = by_id.get(tags.get("mlflow.parentRunId", ""))
        by = by_id.get(tags.get("superseded_by", ""))
        kept = {
            k: v
            for k, v in tags.items()
            if not k.startswith("mlflow.") and k not in ("journal_id", "superseded_by")
        }
        if by is not None:
            kept["superseded_by"] = by.info.run_name
        metrics = {k: v for k, v in r.data.metrics.items() if k not in TIMING and k != "seconds"}
        tree.append(
            json.dumps(
                {
                    "experiment": exp,
                    "parent_stage": parent.info.run_name if parent else None,
                    "name": r.info.run_name,
                    "status": r.info.status,
                    "tags": kept,
                    "params": r.data.params,
                    "metrics": metrics,
                },
                sort_keys=True,
                default=str,
            )
        )
    return sorted(tree), killed


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


def integrity(repo: Path) -> list[str]:
    """What is wrong with the files a (killed) run left: [] when nothing."""
    import pandas as pd

    problems = []
    for csv in sorted((repo / "reports").rglob("*.csv")):
        try:
            df = pd.read_csv(csv)
        except pd.errors.EmptyDataError:
            problems.append(f"{csv.relative_to(repo)}: empty")
            continue
        except Exception as err:  # noqa: BLE001 - any unreadable file is the finding
            problems.append(f"{csv.relative_to(repo)}: {type(err).__name__}")
            continue
        if {"config_hash", "sweep"} <= set(df.columns) and df.duplicated(
            ["config_hash", "sweep"]
        ).any():
            problems.append(f"{csv.relative_to(repo)}: duplicate rows")
    for db in ("optuna.db", "mlflow.db"):
        if (repo / db).is_file():
            with sqlite3.connect(repo / db) as conn:
                ok = conn.execute("PRAGMA integrity_check").fetchone()[0]
            if ok != "ok":
                problems.append(f"{db}: {ok}")
    journals = repo / ".mlflow-journal"
    for path in sorted(journals.glob("*.jsonl")) if journals.is_dir() else []:
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            try:
                json.loads(line)
            except json.JSONDecodeError:
                if i != len(lines) - 1:  # only a kill's last, cut-short line is allowed
                    problems.append(f"{path.relative_to(repo)}: torn line {i + 1}")
    skip = {".git", ".dvc", "data", ".venv", "mlruns", "mlartifacts"}
    for path in repo.rglob("*.tmp"):
        if not skip & set(path.relative_to(repo).parts):
            problems.append(f"{path.relative_to(repo)}: stray temporary file")
    return problems


def compare(ref: dict, got: dict) -> list[str]:
    diffs = []
    for what in ("results", "runs"):
        a, b = ref[what], got[what]
        missing = sorted(set(a) - set(b))
        extra = [x for x in b if b.count(x) > a.count(x)]
        for x in missing:
            diffs.append(f"{what}: missing {x[:300]}")
        for x in sorted(set(extra)):
            diffs.append(f"{what}: extra {x[:300]}")
    for name in sorted(set(ref["studies"]) | set(got["studies"])):
        a, b = ref["studies"].get(name), got["studies"].get(name)
        if a != b:
            diffs.append(f"study {name}: reference {a} != drilled {b}")
    return diffs


# -- the drill ------------------------------------------------------------------------------


def drill(
    kills: int | list[Kill] = 10,
    seed: int = 0,
    suite: str = "smoke",
    threads: int = 1,
    workers: int = 1,
    suite_yaml: str | None = None,
    workdir: Path | None = None,
    prepare=None,
    out=print,
    warm: bool = False,
) -> dict:
    """Run the drill; returns {"kills": rows, "differences": [...], ...}. ``prepare(repo)``
    may edit each copy before it runs (e.g. plant a bug)."""
    t_start = time.monotonic()
    work = Path(workdir or tempfile.mkdtemp(prefix="drill-"))
    WARM.update(on=warm, runtime=work / "run")
    if warm:
        (work / "run").mkdir(mode=0o700, exist_ok=True)
    try:
        return _drill(kills, seed, suite, threads, workers, suite_yaml, work, prepare, out, t_start)
    finally:
        stop_warm_server()


def _drill(kills, seed, suite, threads, workers, suite_yaml, work, prepare, out, t_start):
    copies = {}
    for name in ("reference", "drilled"):
        repo = copy_project(work / name)
        configure(repo, suite, threads, workers, suite_yaml)
        if prepare is not None:
            prepare(repo)
        copies[name] = repo
    out(f"drill: {work} (suite {suite}, threads {threads}, workers {workers})")
    ref_inv = repro(copies["reference"])
    if ref_inv.rc != 0:
        raise RuntimeError("uninterrupted dvc repro failed:\n" + "\n".join(ref_inv.output[-40:]))
    out(f"drill: uninterrupted dvc repro {ref_inv.seconds:.0f} s, {len(ref_inv.stages)} stages")
    moments = kills if isinstance(kills, list) else plan(ref_inv, kills, seed)
    timeline = {s: (i, secs) for i, (s, _, secs) in enumerate(durations(ref_inv))}
    ref = snapshot(copies["reference"])

    repo, rows, invs = copies["drilled"], [], []
    for i, kill in enumerate(moments, 1):
        inv = repro(repo, kill, timeline=timeline)
        invs.append(inv)
        rows.append(
            {
                "kill": i,
                "target": f"{kill.stage}+{kill.delay:g}s"
                + (f" after {kill.after!r}" if kill.after else "")
                + (f" after {kill.runs} runs" if kill.runs else ""),
                "killed_in": inv.killed_in if inv.killed else f"(not killed: rc {inv.rc})",
                "at": inv.killed_at,
                "problems": integrity(repo),
                "mlflow_runs": _count_runs(repo / "mlflow.db"),
            }
        )
    final = repro(repo)
    invs.append(final)
    for i, row in enumerate(rows):  # did the next invocation finish the killed stage?
        nxt, stage = invs[i + 1], row["killed_in"]
        stage = (stage or "").split(" ")[0]
        ran = [s for s, _ in nxt.stages]
        if stage not in ran and not nxt.killed:
            row["resumed"] = "yes (nothing left)" if nxt.rc == 0 else f"no (rc {nxt.rc})"
        elif nxt.killed and nxt.killed_in and nxt.killed_in.split(" ")[0] == stage:
            row["resumed"] = f"killed again (kill {i + 2})"
        elif nxt.rc == 0 or (stage in ran and ran.index(stage) < len(ran) - 1):
            row["resumed"] = "yes"
        else:
            row["resumed"] = f"no (rc {nxt.rc})"
    differences = []
    if final.rc != 0:
        differences.append(
            f"final dvc repro failed (rc {final.rc}): " + " | ".join(final.output[-5:])
        )
    got = snapshot(repo) if final.rc == 0 else None
    if got is not None:
        differences += compare(ref, got)
    differences += [f"after the final run: {p}" for p in integrity(repo)]
    summary = {
        "kills": rows,
        "differences": differences,
        "reference_seconds": ref_inv.seconds,
        "drilled_seconds": sum(x.seconds for x in invs),
        "wall_seconds": time.monotonic() - t_start,
        "results_rows": ref["results_rows"],
        "trials": sum(len(v) for v in ref["studies"].values()),
        "studies": len(ref["studies"]),
        "runs": len(ref["runs"]),
        "killed_stage_runs": got["killed_stage_runs"] if got else None,
        "work": str(work),
        "stages": [s for s, _ in ref_inv.stages],
    }
    report(summary, out)
    return summary


def report(s: dict, out=print) -> None:
    out(
        f"{'#':>2}  {'moment (stage+delay)':<34} {'killed in':<30} {'at':>6}  "
        f"{'runs':>4}  {'resumed':<22} problems"
    )
    for r in s["kills"]:
        at = f"{r['at']:.1f}s" if r["at"] is not None else "-"
        out(
            f"{r['kill']:>2}  {r['target']:<34} {r['killed_in']:<30} {at:>6}  "
            f"{r['mlflow_runs']:>4}  {r['resumed']:<22} {'; '.join(r['problems']) or 'none'}"
        )
    out("(at: seconds into that dvc repro; runs: MLflow runs stored right after the kill)")
    killed = sum(1 for r in s["kills"] if not r["killed_in"].startswith("(not"))
    cats = sorted(
        {category(r["killed_in"].split(" ")[0]) for r in s["kills"] if r["at"] is not None}
    )
    out(
        f"drill: {killed}/{len(s['kills'])} kills landed (in {', '.join(cats)}); reference "
        f"{s['results_rows']} result rows, {s['trials']} trials in {s['studies']} studies, "
        f"{s['runs']} MLflow runs; drilled run left {s['killed_stage_runs']} KILLED stage "
        f"runs (kills after a tune or train stage had opened its journal)"
    )
    out(
        f"drill: reference {s['reference_seconds']:.0f} s, drilled {s['drilled_seconds']:.0f} s "
        f"over {len(s['kills']) + 1} invocations, wall {s['wall_seconds']:.0f} s"
    )
    if s["differences"]:
        out(f"drill: FAILED, {len(s['differences'])} differences from the uninterrupted run:")
        for d in s["differences"][:50]:
            out(f"  - {d}")
    else:
        out(
            "drill: OK, results.csv, the Optuna studies and the MLflow run tree equal the "
            "uninterrupted run's; no corrupt file"
        )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kills", type=int, default=10, help="SIGKILLs (default 10)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the moments")
    parser.add_argument("--suite", default="smoke")
    parser.add_argument(
        "--suite-file",
        type=Path,
        default=None,
        help="a suite YAML to drill instead, the copies' only suite (dvc.yaml regenerated)",
    )
    parser.add_argument("--threads", type=int, default=1, help="params threads")
    parser.add_argument("--workers", type=int, default=1, help="params workers")
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temp dir")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument(
        "--warm",
        action="store_true",
        help="stages fork from a warm server of the drill's own (default: BENCHMARK_WARM=0, "
        "so the MLflow flush runs in the results stage, inside the killed process group)",
    )


def main(args: argparse.Namespace) -> int:
    from benchmark.errors import UserError

    if args.kills < 0:
        raise UserError(f"--kills: must be >= 0, got {args.kills}")
    suite, suite_yaml = args.suite, None
    if args.suite_file is not None:
        suite_yaml = args.suite_file.read_text()
        suite = yaml.safe_load(suite_yaml)["name"]
    s = drill(
        args.kills,
        args.seed,
        suite,
        args.threads,
        args.workers,
        suite_yaml=suite_yaml,
        workdir=args.workdir,
        warm=args.warm,
    )
    if args.json:
        args.json.write_text(json.dumps(s, indent=2, default=str) + "\n")
    return 1 if s["differences"] else 0
