"""Kill drills: `dvc repro` killed with SIGKILL at seeded random moments, then resumed.

``python -m benchmark perf drill [--kills 10] [--seed 0] [--suite smoke]`` copies the
project (its working tree, uncommitted edits included, without its databases, data and
journals) twice into a temporary directory and sets ``params.yaml`` (``--threads``,
``--workers``, progress bars off). Every process of a stage, the ``results`` stage's
MLflow flush included, is in the process group that is killed. The first copy runs ``dvc repro`` uninterrupted: the
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
import tempfile
import time
from pathlib import Path

import yaml

from benchmark.drill.runs import (
    Kill,
    _count_runs,
    category,
    configure,
    copy_project,
    durations,
    plan,
    repro,
)
from benchmark.drill.state import compare, integrity, snapshot

__all__ = ["Kill", "add_arguments", "drill", "main", "report"]


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
) -> dict:
    """Run the drill; returns {"kills": rows, "differences": [...], ...}. ``prepare(repo)``
    may edit each copy before it runs (e.g. plant a bug)."""
    t_start = time.monotonic()
    work = Path(workdir or tempfile.mkdtemp(prefix="drill-"))
    return _drill(kills, seed, suite, threads, workers, suite_yaml, work, prepare, out, t_start)


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
    )
    if args.json:
        args.json.write_text(json.dumps(s, indent=2, default=str) + "\n")
    return 1 if s["differences"] else 0
