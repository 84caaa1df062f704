"""Fuzzing the input boundary: malformed suites and params.yaml are valid or refused cleanly.

Each example starts from the shipped suites/smoke.yaml and params.yaml (as dicts; the
smoke datasets shrunk so that preparing them is fast) and applies one to three random
mutations: wrong types, unknown keys, out-of-range numbers, empty lists, repeated entries,
deleted keys, incompatible method/objective/dataset/encoder names, absurd sizes (a batch
larger than the data, K=0, 2**40), bad method and dataset options. It then runs the real
`python -m benchmark prepare` in-process (``benchmark.cli.main``) in a fresh directory
holding ``params.yaml`` and ``suites/fuzz.yaml``, and checks that the outcome is either
success (exit 0, nothing on stderr) or a refusal: exit 2, exactly one ``error:`` line on
stderr, no traceback, and nothing written.

Seeded (``derandomize``) and bounded: ``FUZZ_EXAMPLES`` examples, 200 by default (about
20 s on one core). A longer run::

    FUZZ_EXAMPLES=5000 .venv/bin/python -m pytest -q -s tests/test_fuzz_config.py

The distinct refusal messages reached (values normalised out) are written to
``fuzz_messages.txt`` in pytest's temporary directory; with ``-s`` a summary line prints
their count.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

# hypothesis keeps a cache (.hypothesis/) in the working directory: not in the repository
os.environ.setdefault(
    "HYPOTHESIS_STORAGE_DIRECTORY", os.path.join(tempfile.gettempdir(), "benchmark-hypothesis")
)

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from benchmark import cli  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "200"))

# values any key may be set to: wrong types, out of range, absurd, empty, repeated
WEIRD = [
    None,
    True,
    False,
    0,
    1,
    -1,
    2,
    3,
    2**40,
    0.5,
    -0.5,
    1.5,
    math.nan,
    math.inf,
    "",
    "abc",
    "1e-3",
    [],
    [0, 0],
    [None],
    {},
    {"x": 1},
    "x" * 200,
]


def _base_suite() -> dict:
    """suites/smoke.yaml with smaller generated datasets (same kinds and keys)."""
    suite = yaml.safe_load((ROOT / "suites" / "smoke.yaml").read_text())
    suite["name"] = "fuzz"
    for block in suite["blocks"]:
        options = block.get("dataset_options")
        if options and "num_train" in options:
            options.update(num_train=400, num_val=200, num_test=200)
        if block.get("dataset") == "csbm":
            block["dataset_options"] = {"num_nodes": 300}
    return suite


def _base_params() -> dict:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["suite"] = "fuzz"
    return params


BASE_SUITE = _base_suite()
BASE_PARAMS = _base_params()


def _registries() -> dict[str, list]:
    from benchmark.datasets import DATASETS, dataset_options
    from benchmark.encoders import ENCODERS
    from benchmark.methods import METHODS
    from benchmark.objectives import OBJECTIVES

    return {
        "method": METHODS.names() + ["simclrr"],
        "objective": OBJECTIVES.names() + ["none", "ntxnet"],
        "dataset": DATASETS.names() + ["imagenet"],
        "encoder": ENCODERS.names() + ["vit"],
        "options": {m: dict(METHODS.get(m).option_defaults) for m in METHODS.names()},
        "dataset_options": {d: sorted(dataset_options(d)) for d in DATASETS.names()},
    }


REG = _registries()
# values for method and dataset options: the shapes their checks must tell apart (no size
# that passes the checks is large enough to make a build slow)
OPTION_VALUES = [0, -1, 1, 2, 3, 7, 64, 2**40, 0.0, 0.5, 0.99, 1.0, 1.5, -0.5, True, False]
OPTION_VALUES += ["abc", "auto", "batch", None, [1], {"a": 1}]


def _paths(doc, prefix=()):
    """(container, key, path) of every entry of a nested dict/list document."""
    items = doc.items() if isinstance(doc, dict) else enumerate(doc)
    for key, value in items:
        yield doc, key, (*prefix, key)
        if isinstance(value, dict | list):
            yield from _paths(value, (*prefix, key))


def _blocks(suite) -> list[dict]:
    blocks = suite.get("blocks") if isinstance(suite, dict) else None
    if not isinstance(blocks, list):
        return []
    return [b for b in blocks if isinstance(b, dict)]


def _pick(draw, values: list):
    """A copy of one of ``values``: later mutations edit the document in place, and must
    not edit the candidate lists (hypothesis replays draws and needs them unchanged)."""
    return copy.deepcopy(draw(st.sampled_from(values)))


def _name(value) -> str | None:
    """A registry key from a (possibly already mutated) document value."""
    return value if isinstance(value, str) else None


def _semantic(draw, suite: dict, params: dict) -> str:
    """A mutation that is well-typed but wrong in meaning (or right: some stay valid)."""
    blocks = _blocks(suite)
    kind = _pick(
        draw,
        (
            [
                "method",
                "objectives",
                "dataset",
                "encoder",
                "batch_sizes",
                "negatives",
                "options",
                "dataset_options",
                "epochs",
                "seeds",
                "tuning_epochs",
                "search_space",
                "duplicate_block",
                "params",
            ]
        ),
    )
    if kind == "params":
        key, value = _pick(
            draw,
            (
                [
                    ("threads", 0),
                    ("workers", 0),
                    ("threads", 2),
                    ("epochs_scale", 0),
                    ("epochs_scale", 1e9),
                    ("seeds", []),
                    ("seeds", [0, 0]),
                    ("seeds", [-1]),
                    ("seeds", [3]),
                    ("suite", "nope"),
                    ("suite", "../suites/fuzz"),
                    ("device", "gpu"),
                    ("progress", "yes"),
                    ("tune", {"trials": -1}),
                    ("tune", {"trials": 0, "sampler_seed": -3}),
                    ("mlflow_uri", ""),
                ]
            ),
        )
        params[key] = value
        return f"params.{key}={value!r}"
    if kind == "search_space":
        ranges = [
            {"low": 2.0, "high": 1.0},
            {"low": 0, "high": 1},
            {"low": 0.1, "high": 0.1},
            {"low": -1, "high": 1, "log": True},
            {"low": 0.1, "high": 2, "log": "yes"},
        ]
        name = _pick(draw, ["temperature", "margin", "bogus"])
        suite["search_space"] = {name: _pick(draw, ranges)}
        return f"search_space.{name}"
    if not blocks:
        return "no blocks"
    block = draw(st.sampled_from(blocks))  # the block itself: edited in place
    if kind == "duplicate_block":
        suite["blocks"].append(copy.deepcopy(block))
        return "duplicate block"
    if kind in ("method", "dataset", "encoder"):
        block[kind] = _pick(draw, REG[kind])
    elif kind == "objectives":
        block[kind] = draw(
            st.one_of(
                st.sampled_from(["all", "none", "some"]),
                st.lists(st.sampled_from(REG["objective"]), max_size=3),
            )
        )
    elif kind == "batch_sizes":
        block[kind] = _pick(draw, [[1], [2], [10**6], [64, 64], [], [2**40], [128, 3]])
    elif kind == "negatives":
        block[kind] = _pick(draw, [[0], [16], [None, None], [], [1, None], [-2]])
    elif kind == "options":
        defaults = REG["options"].get(_name(block.get("method")), {})
        key = _pick(draw, [*sorted(defaults), "bogus"])
        # the option's own default among the candidates: some mutations stay valid
        candidates = [defaults.get(key, 1), *OPTION_VALUES]
        values = copy.deepcopy(draw(st.lists(st.sampled_from(candidates), max_size=2)))
        block[kind] = {key: values}
    elif kind == "dataset_options":
        names = REG["dataset_options"].get(_name(block.get("dataset")), []) + ["bogus"]
        key = _pick(draw, names)
        given = block.get(kind)
        block[kind] = {
            **(given if isinstance(given, dict) else {}),
            key: _pick(draw, OPTION_VALUES),
        }
    elif kind == "epochs":
        block[kind] = _pick(draw, [-1, 0, 1, 2**40, 1.5])
    elif kind == "seeds":
        block[kind] = _pick(draw, [[], [0, 0], [-1], [1, 2], [2**33]])
    elif kind == "tuning_epochs":
        block[kind] = _pick(draw, [0, 1, 2])
    return f"block.{kind}={block.get(kind)!r}"


@st.composite
def mutated(draw) -> tuple[dict, dict, list[str]]:
    suite, params = copy.deepcopy(BASE_SUITE), copy.deepcopy(BASE_PARAMS)
    done = []
    for _ in range(draw(st.integers(1, 3))):
        op = _pick(draw, ["semantic", "semantic", "set", "delete", "unknown", "list"])
        if op == "semantic":
            done.append(_semantic(draw, suite, params))
            continue
        target = _pick(draw, ["suite", "suite", "suite", "params"])
        doc = suite if target == "suite" else params
        entries = list(_paths(doc))
        if op == "unknown":
            dicts = [doc] + [c[k] for c, k, _ in entries if isinstance(c[k], dict)]
            draw(st.sampled_from(dicts))["bogus_key"] = _pick(draw, WEIRD)
            done.append(f"{target}: unknown key")
            continue
        if op == "list":
            lists = [(c, k, p) for c, k, p in entries if isinstance(c[k], list)]
            if not lists:
                continue
            c, k, p = draw(st.sampled_from(lists))
            how = _pick(draw, ["empty", "repeat"])
            if how == "empty" or not c[k]:
                c[k] = []
            else:
                c[k].append(_pick(draw, c[k]))
            done.append(f"{target}: {how} {p}")
            continue
        if not entries:
            continue
        c, k, p = draw(st.sampled_from(entries))
        if op == "delete":
            del c[k]
        else:
            c[k] = _pick(draw, WEIRD)
        done.append(f"{target}: {op} {p}")
    return suite, params, done


# -- running the CLI in-process --------------------------------------------------------


def _memoised_prepare(real):
    """prepare_dataset, memoised in memory: the builders are deterministic, and the fuzzer
    builds the same few datasets thousands of times."""
    memo: dict[str, object] = {}

    def prepare(name, *, root=None, cache_dir="data/prepared", seed=0, rebuild=False, **options):
        key = json.dumps([name, root, seed, options], sort_keys=True, default=repr)
        if key not in memo:
            memo[key] = real(name, root=root, cache_dir=None, seed=seed, **options)
        data = memo[key]
        if cache_dir is not None:
            from benchmark.datasets import cache_path

            data.save(cache_path(name, seed=seed, cache_dir=cache_dir, **options))
        return data

    return prepare


@pytest.fixture(scope="module")
def fast_prepare():
    import benchmark.datasets as datasets

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(datasets, "prepare_dataset", _memoised_prepare(datasets.prepare_dataset))
        yield


MESSAGES: dict[str, str] = {}  # normalised message -> one example
STATS = {"examples": 0, "valid": 0, "refused": 0, "seconds": 0.0}


def normalise(line: str) -> str:
    """The message with its values taken out: the shape of the refusal."""
    line = re.sub(r"\(got .*?\)(;|$)", r"(got V)\1", line)
    line = re.sub(r"'[^']*'", "'S'", line)
    line = re.sub(r"\[[^\]]*\]", "[L]", line)
    return re.sub(r"-?\b\d+(\.\d+)?(e[-+]?\d+)?\b", "N", line)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    yield
    if not STATS["examples"]:
        return
    path = tmp_path_factory.mktemp("fuzz") / "fuzz_messages.txt"
    path.write_text("".join(f"{m}\n    e.g. {MESSAGES[m]}\n" for m in sorted(MESSAGES)))
    print(
        f"\nfuzz: {STATS['examples']} examples ({STATS['valid']} valid, {STATS['refused']} "
        f"refused) in {STATS['seconds']:.1f} s; {len(MESSAGES)} distinct messages -> {path}"
    )


def run_cli(argv: list[str], cwd: Path) -> tuple[int, str, str]:
    """``python -m benchmark <argv>`` in-process in ``cwd``: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    saved_argv = sys.argv[:]
    try:
        with (
            contextlib.chdir(cwd),
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
        ):
            try:
                code = cli.main(argv)
            except SystemExit as exc:  # argparse
                code = exc.code if isinstance(exc.code, int) else 2
    finally:
        sys.argv = saved_argv
    return code, out.getvalue(), err.getvalue()


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def _write_inputs(root: Path, suite: dict, params: dict) -> None:
    (root / "suites").mkdir()
    (root / "suites" / "fuzz.yaml").write_text(yaml.dump(suite, Dumper=DUMPER, sort_keys=False))
    (root / "params.yaml").write_text(yaml.dump(params, Dumper=DUMPER, sort_keys=False))


def check_outcome(root: Path, code, out: str, err: str, before: set[str]) -> str | None:
    """Assert the outcome is a success or a clean refusal; the refusal line (or None)."""
    assert "Traceback" not in err, err
    if code == 0:
        assert not err.strip(), err
        return None
    assert code == 2, (code, err)
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert _files(root) == before, sorted(_files(root) - before)  # nothing written
    return lines[0]


@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(example=mutated())
def test_malformed_suites_and_params_are_valid_or_refused_in_one_line(
    fast_prepare, report, example
):
    suite, params, mutations = example
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _write_inputs(root, suite, params)
        before = _files(root)
        try:
            code, out, err = run_cli(["prepare", "--params", "params.yaml"], root)
        except Exception as exc:  # a traceback: report the input that caused it
            pytest.fail(f"{type(exc).__name__}: {exc}\nmutations: {mutations}")
        line = check_outcome(root, code, out, err, before)
    STATS["examples"] += 1
    STATS["seconds"] += time.perf_counter() - t0
    if line is None:
        STATS["valid"] += 1
    else:
        STATS["refused"] += 1
        MESSAGES.setdefault(normalise(line), line)


# -- `python -m benchmark run`: flags, method options, objective hyperparameters ----------

RUN_EXAMPLES = max(50, EXAMPLES // 2)
RUN_DATA = [
    ["--dataset", "digits"],
    ["--dataset", "mnist1d", "--dataset-option", "num_train=400"],
    ["--dataset", "mnist1d", "--dataset-option", "num_train=400"]
    + ["--dataset-option", "paired_image=true", "--dataset-option", "image_size=16"],
    ["--dataset", "csbm", "--dataset-option", "num_nodes=300"],
]
FLAG_VALUES = {
    "--temperature": ["-1", "0", "0.5", "nan", "inf", "abc"],
    "--margin": ["-0.1", "0", "0.2", "nan"],
    "--batch-size": ["1", "2", "64", "5000", "x"],
    "--negatives": ["0", "4", "-3"],
    "--seed": ["-1", "0", str(2**40)],
    "--lr": ["0", "-1", "1e-3", "inf"],
    "--threads": ["0", "1"],
}


@st.composite
def run_flags(draw) -> list[str]:
    method = _pick(draw, REG["method"])
    flags = ["--method", method, *_pick(draw, RUN_DATA)]
    if draw(st.booleans()):
        flags += ["--objective", _pick(draw, REG["objective"])]
    if draw(st.booleans()):
        flags += ["--encoder", _pick(draw, REG["encoder"])]
    defaults = REG["options"].get(method, {})
    for _ in range(draw(st.integers(0, 2))):
        key = _pick(draw, [*sorted(defaults), "bogus"])
        value = _pick(draw, [defaults.get(key, 1), *OPTION_VALUES])
        flags += ["--option", f"{key}={json.dumps(value)}"]
    for flag in draw(st.lists(st.sampled_from(sorted(FLAG_VALUES)), max_size=3, unique=True)):
        flags += [flag, _pick(draw, FLAG_VALUES[flag])]
    return [*flags, "--epochs", "0", "--no-progress"]


@pytest.fixture(scope="module")
def fast_run(fast_prepare):
    """run_cell stubbed out: the run command's checks and the method build are real, the
    training and probes (seconds per cell) are not what is under test here."""
    import benchmark.train as train

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(train, "run_cell", lambda cfg, **kwargs: {"method": cfg.method})
        yield


@settings(
    max_examples=RUN_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(flags=run_flags())
def test_run_flags_are_valid_or_refused_in_one_line(fast_run, report, flags):
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        try:
            code, out, err = run_cli(["run", *flags], root)
        except Exception as exc:  # a traceback: report the flags that caused it
            pytest.fail(f"{type(exc).__name__}: {exc}\nflags: {' '.join(flags)}")
        line = check_outcome(root, code, out, err, set())
    STATS["examples"] += 1
    STATS["seconds"] += time.perf_counter() - t0
    if line is None:
        STATS["valid"] += 1
    else:
        STATS["refused"] += 1
        MESSAGES.setdefault(normalise(line), line)


def test_the_base_documents_are_valid(fast_prepare, tmp_path):
    """The fuzzer's starting point prepares: every refusal above is due to a mutation."""
    _write_inputs(tmp_path, BASE_SUITE, BASE_PARAMS)
    code, out, err = run_cli(["prepare", "--params", "params.yaml"], tmp_path)
    assert code == 0, err
    assert out.count("prepare: ") == 5 and out.count(" -> ") == 4  # 4 datasets
    assert "prepare: the grid of" in out  # and the suite's grid, one file per pair


# a few refusals through a real process: what a user sees, exit code included
SUBPROCESS_CASES = [
    ({"blocks": [{**BASE_SUITE["blocks"][4], "options": {"queue_size": [0]}}]}, {}),
    ({}, {"threads": 0, "tune": {"trials": -1}}),
    # refused after the data are built and the graph encoder probed (no warning noise)
    (
        {
            "blocks": [
                *BASE_SUITE["blocks"][:14],
                {**BASE_SUITE["blocks"][13], "batch_sizes": [5000]},
            ]
        },
        {},
    ),
]


@pytest.mark.parametrize(
    ("suite_patch", "params_patch"), SUBPROCESS_CASES, ids=["K=0", "params", "batch"]
)
def test_a_real_process_refuses_in_one_line(tmp_path, suite_patch, params_patch):
    import subprocess

    _write_inputs(tmp_path, {**BASE_SUITE, **suite_patch}, {**BASE_PARAMS, **params_patch})
    before = _files(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "benchmark", "prepare"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=300,
    )
    lines = proc.stderr.splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    assert _files(tmp_path) == before
