"""The `gpu` suite on a machine without a GPU: its validation, and its pipeline end to end
in miniature.

Validation (fast): `python -m benchmark prepare` on suites/gpu.yaml refuses every
configuration error with one line naming the block and key (a missing data directory,
a bad name, an encoder that cannot read the data's shape, a batch larger than the
split) and writes nothing; with valid data it checks and writes nothing (validate_only).

The miniature (slow): the stages `dvc repro` runs (prepare -> tune@pair -> train@pair ->
results -> report; the pairs from the dvc.yaml stages ``benchmark.pipeline`` generates),
in-process in a temporary directory, on a suite derived from suites/gpu.yaml itself by
:func:`miniature`. Every block is kept, so a block added to the real suite runs here too;
each gets 1 epoch, seed 0, one Optuna
trial of one epoch per tunable pair, and each list of sizes one tiny value (batch size 8,
6 negatives, queue 32, bank negatives 8): each sweep is one point, since two points per
sweep took 190 s here against about 120 s for one. The data are tiny CIFAR-10 (20 train,
4 test), STL-10 (12 train, 4 test, 96x96 as in the real files) and Cora files in their
real on-disk formats (tests/real_files.py); the encoder is the suite's resnet18 with the
CIFAR stem. The `mi` and `check` stages are left out: mi does not depend on the suite
(it runs on gaussian_mi whatever the suite) and check needs a committed baseline.
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
import shlex
import shutil
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from real_files import write_cifar, write_cora, write_stl10  # tests/ is on sys.path

ROOT = Path(__file__).resolve().parents[1]
GPU = yaml.safe_load((ROOT / "suites" / "gpu.yaml").read_text())

# a list of sizes in the suite -> its one tiny value; a list the miniature does not know
# fails the test, naming it
TINY = {
    "batch_sizes": 8,
    "negatives": 6,  # of the 2B - 2 = 14 SimCLR has at B = 8
    "queue_size": 32,
    "bank_negatives": 8,
}


def _shrunk(key: str, values: list) -> list:
    assert key in TINY, f"suites/gpu.yaml: the miniature has no tiny value for {key!r}"
    return [TINY[key]]


def miniature(suite: dict, data_root: str, *, validate_only: bool = False) -> dict:
    """suites/gpu.yaml's document shrunk to a CPU run of seconds per cell (same blocks)."""
    mini = copy.deepcopy(suite)
    mini.update(validate_only=validate_only, epochs=1, seeds=[0])
    mini["tuning"] = {**suite.get("tuning", {}), "epochs": 1, "batch_size": 8, "trials": 1}
    for block in mini["blocks"]:
        for key in ("batch_sizes", "negatives"):
            if key in block:
                block[key] = _shrunk(key, block[key])
        block["options"] = {k: _shrunk(k, v) for k, v in block.get("options", {}).items()}
        if not block["options"]:
            del block["options"]
        for key in ("epochs", "tuning_epochs"):
            if key in block:
                block[key] = 1
        if "seeds" in block:
            block["seeds"] = [0]
        assert "data_root" in block, "every gpu block reads real files from its data_root"
        block["data_root"] = data_root
    return mini


def _untrained_default_batch(block: dict) -> bool:
    """A block of a method that does not train (`random`), so it names no batch size."""
    from benchmark.methods import METHODS

    return not METHODS.get(block["method"]).trains and block.get("dataset") != "cora"


def write_tiny_data(raw: Path) -> None:
    """The files every gpu block reads, under ``raw`` (the blocks' data_root)."""
    write_cifar(raw / "cifar-10-batches-py", per_batch=4, n_test=4)
    write_stl10(raw / "stl10_binary", n_train=12, n_test=4)
    write_cora(raw / "Cora" / "raw")


def _project(path: Path, suite: dict, **params) -> None:
    (path / "suites").mkdir(parents=True, exist_ok=True)
    (path / "suites" / "gpu.yaml").write_text(yaml.safe_dump(suite, sort_keys=False))
    doc = {"suite": "gpu", "device": "cpu", "threads": 1, "workers": 1, "progress": False}
    (path / "params.yaml").write_text(yaml.safe_dump({**doc, **params}))


def _cli(path: Path, argv: list[str]) -> tuple[int, str, float]:
    """``python -m benchmark <argv>`` in-process with ``path`` as the working directory:
    (exit code, stderr's lines starting with error:, seconds)."""
    from benchmark import cli

    old_cwd, old_argv = os.getcwd(), sys.argv
    os.chdir(path)
    t0 = time.perf_counter()
    try:
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            try:
                code = cli.main(argv)
            except SystemExit as exc:
                code = exc.code
    finally:
        os.chdir(old_cwd)
        sys.argv = old_argv
    errors = [line for line in err.getvalue().splitlines() if line.startswith("error:")]
    return code, "\n".join(errors), time.perf_counter() - t0


# --- validation: one line per configuration error, nothing written ----------------------


def _refused(path: Path, expected: str) -> str:
    """`prepare` exits 2 with one error line holding ``expected`` and writes nothing."""
    code, errors, _ = _cli(path, ["prepare"])
    assert code == 2, errors
    assert len(errors.splitlines()) == 1 and expected in errors, errors
    assert {p.name for p in path.iterdir()} <= {"data", "params.yaml", "suites"}
    assert not (path / "data").exists() or [p.name for p in (path / "data").iterdir()] == ["raw"]
    return errors


def _first_block(suite: dict, dataset: str) -> int:
    return next(i for i, b in enumerate(suite["blocks"]) if b["dataset"] == dataset)


def test_the_real_gpu_suite_without_its_data_names_the_missing_directory(tmp_path):
    _project(tmp_path, GPU)
    i = _first_block(GPU, "cifar10")
    _refused(
        tmp_path,
        f"error: suites/gpu.yaml: blocks.{i}.data_root: cifar10: looked in "
        f"{GPU['blocks'][i]['data_root']}/cifar-10-batches-py (does not exist); put "
        "data_batch_1",
    )


@pytest.mark.parametrize("missing", ["stl10", "cora"])
def test_each_missing_dataset_is_named_with_its_block(tmp_path, missing):
    raw = tmp_path / "data" / "raw"
    write_tiny_data(raw)
    folder = {"stl10": "stl10_binary", "cora": "Cora/raw"}[missing]
    shutil.rmtree(raw / folder.split("/")[0])
    mini = miniature(GPU, "data/raw", validate_only=True)
    _project(tmp_path, mini)
    i = _first_block(mini, missing)
    _refused(
        tmp_path,
        f"blocks.{i}.data_root: {missing}: looked in data/raw/{folder} (does not exist)",
    )


def _first_of(suite: dict, method: str) -> int:
    return next(i for i, b in enumerate(suite["blocks"]) if b["method"] == method)


@pytest.mark.parametrize(
    ("where", "key", "value", "expected"),
    [
        ("simclr", "method", "simclrr", "method: unknown 'simclrr'; allowed: byol"),
        ("simclr", "dataset", "cifar100", "dataset: unknown 'cifar100'; allowed:"),
        ("simclr", "encoder", "resnet81", "encoder: unknown 'resnet81'; allowed:"),
        ("simclr", "objectives", ["ntxnet"], "unknown objective 'ntxnet'"),
        ("moco", "options", {"queue_sizes": [4096]}, "method 'moco' has no option 'queue_sizes'"),
        ("moco", "options", {"queue_size": [0]}, "queue_size"),
        ("dgi", "objectives", ["triplet"], "method 'dgi' cannot use objective 'triplet'"),
        ("simclr", "batch_sizes", [1], "batch_sizes.0: Input should be greater than or equal"),
        ("simclr", "sweep", "batches", "sweep: Input should be"),
    ],
    ids=[
        "method",
        "dataset",
        "encoder",
        "objective",
        "option-name",
        "option-value",
        "incompatible",
        "batch-range",
        "sweep",
    ],  # fmt: skip
)
def test_a_bad_name_or_value_in_the_gpu_suite_is_one_line(tmp_path, where, key, value, expected):
    """Checked from the YAML and the registries, before any data is looked for."""
    suite = copy.deepcopy(GPU)
    i = _first_of(suite, where)
    suite["blocks"][i][key] = value
    _project(tmp_path, suite)
    assert f"error: suites/gpu.yaml: blocks.{i}." in _refused(tmp_path, expected)


def test_shapes_are_checked_against_the_real_files(tmp_path):
    """With the (tiny) data present: an encoder that cannot read CIFAR's (3, 32, 32)
    samples, and the real suite's batch sizes against a split too small for them."""
    write_tiny_data(tmp_path / "data" / "raw")
    mini = miniature(GPU, "data/raw", validate_only=True)
    i = _first_of(mini, "simclr")
    mini["blocks"][i]["encoder"] = "cnn1d"
    _project(tmp_path, mini)
    _refused(
        tmp_path,
        f"blocks.{i}.encoder: 'cnn1d' cannot encode image data of sample shape (3, 32, 32)",
    )
    real_sizes = copy.deepcopy(GPU)
    for block in real_sizes["blocks"]:
        block["data_root"] = "data/raw"
    _project(tmp_path, real_sizes)
    smallest = min(GPU["blocks"][i]["batch_sizes"])
    _refused(tmp_path, f"blocks.{i}.batch_sizes: {smallest} is larger than the training split")


def test_a_valid_gpu_suite_is_checked_and_nothing_runs(tmp_path):
    write_tiny_data(tmp_path / "data" / "raw")
    _project(tmp_path, miniature(GPU, "data/raw", validate_only=True))
    code, errors, seconds = _cli(tmp_path, ["prepare"])
    assert code == 0, errors
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "params.yaml", "suites"]
    assert [p.name for p in (tmp_path / "data").iterdir()] == ["raw"]  # nothing cached
    assert seconds < 60  # builds each method once; trains nothing


def test_a_validate_only_suite_is_never_tuned_or_trained(tmp_path):
    """`dvc repro -S suite=gpu` on a machine with the data: prepare checks the suite, then
    the first tune or train stage stops with one line instead of training on the CPU."""
    _project(tmp_path, copy.deepcopy(GPU))
    for stage in ("tune", "train"):
        code, errors, _ = _cli(tmp_path, [stage, "--pair", "simclr-ntxent"])
        assert code == 2 and len(errors.strip().splitlines()) == 1, (stage, errors)
        assert "is validate_only" in errors and "validate_only: false" in errors
    assert not (tmp_path / "reports").exists()


def test_an_untrained_block_needs_no_batch(tmp_path):
    """`random` draws no batch: its default batch size is not bounded by a tiny split."""
    write_tiny_data(tmp_path / "data" / "raw")
    mini = miniature(GPU, "data/raw", validate_only=True)
    assert any(_untrained_default_batch(b) for b in mini["blocks"])
    _project(tmp_path, mini)
    code, errors, _ = _cli(tmp_path, ["prepare"])
    assert code == 0, errors


# --- the miniature pipeline ---------------------------------------------------------------


@pytest.fixture(scope="module")
def mini_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("gpu-mini")
    write_tiny_data(path / "data" / "raw")
    suite = miniature(GPU, "data/raw")
    _project(path, suite, tune={"trials": 1})
    env = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "CUDA_VISIBLE_DEVICES")}
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    old_cwd = os.getcwd()
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    try:
        os.chdir(path)
        from benchmark import pipeline

        stages = pipeline.stages()["stages"]  # the dvc.yaml `dvc repro` would run here
        os.chdir(old_cwd)
        commands = [stages["prepare"]["cmd"]]
        for name in ("tune", "train"):
            do = stages[name]["do"]["cmd"]
            commands += [do.replace("${key}", key) for key in stages[name]["foreach"]]
        commands += [stages["results"]["cmd"], "python -m benchmark report"]
        for command in commands:
            argv = shlex.split(command)[3:]  # after `python -m benchmark`
            code, errors, seconds = _cli(path, argv)
            assert code == 0, f"{command}: {errors}"
            times[command] = seconds
    finally:
        os.chdir(old_cwd)
        for k, v in env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    wall = time.perf_counter() - t0
    print(f"\nminiature gpu suite: {wall:.1f}s wall for {len(times)} stage commands")
    for command, seconds in sorted(times.items(), key=lambda kv: -kv[1])[:5]:
        print(f"  {seconds:6.1f}s  {command}")
    return path, suite, stages, wall


@pytest.mark.slow
def test_the_miniature_keeps_every_block_of_the_gpu_suite(mini_run):
    from benchmark.config import load_suite, suite_cells

    path, suite, stages, _ = mini_run
    real = load_suite(ROOT / "suites" / "gpu.yaml", check_data=False)
    mini = load_suite(path / "suites" / "gpu.yaml", check_data=False)
    assert len(mini.blocks) == len(real.blocks)
    grid = ("pair", "dataset", "encoder", "sweep", "tuned")
    kept = suite_cells(real)
    assert {tuple(getattr(c, k) for k in grid) for c in suite_cells(mini)} == {
        tuple(getattr(c, k) for k in grid) for c in kept
    }
    assert set(stages["train"]["foreach"]) == {c.pair for c in kept}


@pytest.mark.slow
def test_the_miniature_gpu_pipeline_runs_end_to_end(mini_run):
    from benchmark.compat import TUNABLE
    from benchmark.config import load_params, load_suite, suite_cells
    from benchmark.encoders import build_encoder

    path, _, stages, wall = mini_run
    cells = suite_cells(
        load_suite(path / "suites" / "gpu.yaml", check_names=False),
        load_params(path / "params.yaml"),
    )
    prepared = [p.name for p in (path / "data" / "prepared").iterdir()]
    assert len(prepared) >= 3, prepared  # cifar10, stl10, cora
    # tune: one trial per tunable pair, its best values written for train
    tuned = {k for k in stages["tune"]["foreach"] if TUNABLE.get(k.split("-", 1)[1])}
    assert tuned
    for pair in tuned:  # one study per testbed of the pair's tuned cells, one trial each
        best = yaml.safe_load((path / "reports" / "tuned" / f"{pair}.json").read_text())
        testbeds = {c.dataset for c in cells if c.pair == pair and c.tuned}
        assert best["n_trials"] == len(testbeds), (pair, best)
    # train + results: a row per cell and seed, on resnet18 (CIFAR stem) for the images
    results = pd.read_csv(path / "reports" / "results.csv")
    key = ["config_hash", "sweep"]
    assert len(results) == len(cells)
    assert not results.duplicated(key).any()
    assert set(results["suite"]) == {"gpu"} and set(results["seed"]) == {0}
    images = results[results["dataset"] != "cora"]
    assert set(images["encoder"]) == {"resnet18"}
    assert set(results["dataset"]) == {"cifar10", "stl10", "cora"}
    assert not results["diverged"].any()
    assert results["linear_acc"].between(0, 1).all() and results["knn_acc"].between(0, 1).all()
    trained = results[results["method"] != "random"]
    assert (trained["epochs"] == 1).all() and (trained["train_seconds"] > 0).all()
    stem = build_encoder("resnet18", (3, 32, 32)).net
    assert stem.conv1.kernel_size == (3, 3) and stem.conv1.stride == (1, 1)
    assert isinstance(stem.maxpool, torch.nn.Identity)
    # report
    for name in ("leaderboard.md", "leaderboard.csv", "index.html", "metrics.json"):
        assert (path / "reports" / name).stat().st_size > 0, name
    assert "simclr" in (path / "reports" / "leaderboard.md").read_text()
    assert wall < 300, f"the miniature took {wall:.0f}s"
