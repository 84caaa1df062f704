"""`python -m benchmark tune --pair METHOD-OBJECTIVE`: the stage. It reads params.yaml and
the pair's cells, opens one study per testbed the pair's tuned cells use
(``benchmark.tune.study``: the budget, sampler, pruner, storages and workers are
described there), and writes the best values to ``reports/tuned/<pair>.json`` (which the
pair's train stage reads) and the trials to ``reports/trials/<pair>.csv``. A pair with
nothing to tune is answered from the YAML alone, without importing torch."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchmark import atomic
from benchmark.config import ConfigError, SuiteCell, testbed_key, testbed_label
from benchmark.errors import UserError
from benchmark.layout import TRIAL_COLUMNS, TRIALS_DIR, TUNED_DIR
from benchmark.stages.common import apply_device, load_for_pair, write_header_only
from benchmark.tune import _tunable, study, study_key, trial_budget


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pair", required=True, help="METHOD-OBJECTIVE, e.g. simclr-triplet")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="shared-study workers in this invocation (default: params tune.workers; unset: "
        "one process running batches of `workers` trials). Start one invocation per "
        "machine against one PostgreSQL tune.storage to spread a study over machines",
    )


def run(args: argparse.Namespace) -> int:
    out = TUNED_DIR / f"{args.pair}.json"
    trials_out = TRIALS_DIR / f"{args.pair}.csv"

    def nothing(suite_name: str, reason: str) -> int:
        _write_json(out, {"pair": args.pair, "suite": suite_name, "params": {}, "note": reason})
        write_header_only(trials_out, TRIAL_COLUMNS)
        print(f"tune@{args.pair}: nothing to tune ({reason})")
        return 0

    try:
        light = _untunable_answer(args.pair, args.params)
        if light is not None:  # answered from the YAML alone, without importing torch
            return nothing(*light)
        params, suite, cells = load_for_pair(args.pair, args.params)
    except ConfigError as err:
        raise UserError(str(err)) from None
    if getattr(args, "workers", None) is not None:
        if args.workers < 1:
            raise UserError(f"--workers: must be >= 1, got {args.workers}")
        params = params.model_copy(
            update={"tune": params.tune.model_copy(update={"workers": args.workers})}
        )
    tunable = _tunable(cells, suite.search_space)
    budget = trial_budget(params, suite)
    in_suite = bool(cells)
    cells = [c for c in cells if c.tuned]  # the study serves the tuned cells only
    if not cells or not tunable or budget == 0:
        reason = (
            "not in suite"
            if not in_suite
            else "no tuned cell: every block of the pair sets tuned: false"
            if not cells
            else "no tunable hyperparameter"
            if not tunable
            else "tune.trials = 0"
        )
        return nothing(suite.name, reason)
    apply_device(params)
    # one study per testbed the pair's tuned cells use, each with the same budget, set at
    # the first cell of that testbed
    firsts: dict[str, SuiteCell] = {}
    for cell in cells:
        firsts.setdefault(testbed_key(cell), cell)
    templates = list(firsts.values())
    keys = [study_key(args.pair, t, tunable, suite, params) for t in templates]
    key = keys[0] if len(keys) == 1 else "+".join(keys)
    if out.is_file() and trials_out.is_file():
        previous = json.loads(out.read_text())
        if previous.get("key") == key and previous.get("n_trials", 0) >= budget * len(keys):
            print(
                f"tune@{args.pair}: already tuned ({previous['n_trials']} trials, same "
                f"search space and code): {previous['params']}"
            )
            return 0
    answers, rows = [], []
    for template, k in zip(templates, keys, strict=True):
        best, trial_rows = study(args.pair, template, tunable, suite, params, k)
        best["testbed"] = testbed_label(template)
        answers.append((testbed_key(template), best))
        rows += [{**r, "dataset": template.dataset, "encoder": template.encoder}
                 for r in trial_rows]  # fmt: skip
        print(
            f"tune@{args.pair} on {best['testbed']}: best {best['params']} "
            f"val_acc={best['best_val_acc']:.4f} ({best['n_trials']} trials)"
        )
    answer = dict(answers[0][1])
    if len(answers) > 1:  # the cells of each testbed take their own study's values
        answer.update(
            key=key,
            n_trials=sum(b["n_trials"] for _, b in answers),
            testbeds={tb: b for tb, b in answers},
        )
    _write_json(out, answer)
    _write_trials(rows, trials_out)
    return 0


def _untunable_answer(pair: str, params_path: str) -> tuple[str, str] | None:
    """(suite, reason) when the pair's objective has nothing to tune, else None."""
    from benchmark.compat import TUNABLE
    from benchmark.config import all_pairs, load_params, load_suite, suite_pairs

    params = load_params(params_path)
    item = all_pairs().get(pair)
    if item is None or TUNABLE.get(item[1]):
        return None  # unknown pairs get load_for_pair's error; tunable ones are searched
    suite = load_suite(params.suite, check_names=False)  # it may search other ones
    if suite.search_space.searched(item[1]):
        return None
    in_suite = pair in suite_pairs(suite)
    return suite.name, "no tunable hyperparameter" if in_suite else "not in suite"


def _write_json(path: Path, obj: dict) -> None:
    atomic.write_json(path, obj, sort_keys=True)


def _write_trials(rows: list[dict], path: Path) -> None:
    import pandas as pd

    from benchmark.atomic import write_csv as write_csv_atomic

    # a hyperparameter a search space adds (semihard, l2_reg) gets a column after margin
    extra = list(dict.fromkeys(k for r in rows for k in r if k not in TRIAL_COLUMNS))
    at = TRIAL_COLUMNS.index("margin") + 1
    columns = [*TRIAL_COLUMNS[:at], *extra, *TRIAL_COLUMNS[at:]]
    write_csv_atomic(pd.DataFrame(rows, columns=columns), path)
