"""Suites and params: the shipped ones validate; bad input gives one line, exit 2, no writes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from benchmark.compat import COMPATIBLE, NO_OBJECTIVE, TUNABLE
from benchmark.config import (
    ConfigError,
    all_pairs,
    load_params,
    load_suite,
    suite_cells,
    suite_pairs,
)

ROOT = Path(__file__).resolve().parents[1]


def test_every_suite_pair_has_a_train_stage_and_tunable_ones_a_tune_stage():
    doc = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    pairs: set[str] = set()
    for name in ("core", "smoke", "gpu"):
        pairs |= set(suite_pairs(load_suite(ROOT / "suites" / f"{name}.yaml", check_data=False)))
    assert set(all_pairs(ROOT / "suites")) == pairs
    assert set(doc["stages"]["train"]["foreach"]) == pairs
    # tune@ stages: exactly the pairs whose objective has a temperature or margin
    assert set(doc["stages"]["tune"]["foreach"]) == {
        k for k, (_, objective) in all_pairs(ROOT / "suites").items() if TUNABLE.get(objective)
    }
    for item in doc["stages"]["train"]["foreach"].values():
        assert (ROOT / item["objective_src"]).is_file() and (ROOT / item["method_src"]).is_file()


def test_params_yaml_holds_no_pair_lists(tmp_path):
    """The stage lists live in the generated dvc.yaml, not in params.yaml."""
    path = tmp_path / "params.yaml"
    path.write_text((ROOT / "params.yaml").read_text() + "pairs: {}\n")
    with pytest.raises(ConfigError, match="pairs"):
        load_params(path)


def test_compat_table_matches_the_method_registry():
    from benchmark.methods import METHODS
    from benchmark.objectives import OBJECTIVES

    assert set(COMPATIBLE) == set(METHODS.names())
    for name in METHODS.names():
        assert METHODS.get(name).objectives == COMPATIBLE[name]
        assert set(COMPATIBLE[name]) <= set(OBJECTIVES.names())
    for name in OBJECTIVES.names():
        assert OBJECTIVES.get(name).tunable == TUNABLE.get(name, ())


def test_smoke_covers_every_method_and_objective():
    from benchmark.methods import METHODS
    from benchmark.objectives import OBJECTIVES

    cells = suite_cells(load_suite(ROOT / "suites" / "smoke.yaml", check_data=False))
    assert {c.method for c in cells} == set(METHODS.names())
    assert {c.objective for c in cells} - {NO_OBJECTIVE} == set(OBJECTIVES.names())


def test_core_has_five_headline_seeds_and_every_sweep():
    suite = load_suite(ROOT / "suites" / "core.yaml", check_data=False)
    cells = suite_cells(suite)
    assert suite.seeds == [0, 1, 2, 3, 4]
    assert all(c.dataset != "digits" for c in cells)  # digits has no headroom
    batch = [c for c in cells if c.sweep == "batch"]
    assert {c.batch_size for c in batch} == {64, 128, 256, 512}
    # lr follows sqrt(B / 128): the rule the batch sweep states
    for c in batch:
        assert c.lr == pytest.approx(suite.lr * (c.batch_size / 128) ** 0.5)
    assert {c.sweep for c in cells} == {"batch", "negatives", "queue", "temperature", "method"}
    temps = {c.temperature for c in cells if c.sweep == "temperature"}
    assert len(temps) >= 4 and all(not c.tuned for c in cells if c.sweep == "temperature")
    assert any(not c.tuned for c in cells if c.sweep == "method")


def test_temperatures_need_an_objective_with_a_temperature(tmp_path):
    suite = {
        "name": "bad",
        "blocks": [
            {"sweep": "temperature", "method": "simclr", "objectives": ["triplet"],
             "temperatures": [0.1, 0.5]}
        ],
    }  # fmt: skip
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(suite))
    with pytest.raises(ConfigError, match="objective 'triplet' has no temperature"):
        load_suite(path, check_data=False)


def _suite_file(tmp_path, block: dict) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump({"name": "t", "blocks": [block]}))
    return path


def test_objective_options_reach_the_objective_and_only_where_declared(tmp_path):
    block = {"method": "simclr", "objectives": ["triplet"], "objective_options": {"semihard": 1}}
    cells = suite_cells(load_suite(_suite_file(tmp_path, block), check_data=False))
    cfg = cells[0].config({"margin": 0.3})
    assert cfg.objective_kwargs() == {"margin": 0.3, "semihard": 1.0}
    plain = {**block, "objective_options": {}}
    plain = suite_cells(load_suite(_suite_file(tmp_path, plain), check_data=False))
    assert "objective_options" not in plain[0].record()  # cells without them keep their names
    assert plain[0].config({"margin": 0.3}).config_hash() != cfg.config_hash()
    for options, message in (
        ({"semihard": 1}, "objective 'ntxent' has no semihard"),
        ({"temperature": 0.1}, "temperature is tuned"),
    ):
        bad = {**block, "objectives": ["triplet", "ntxent"], "objective_options": options}
        with pytest.raises(ConfigError, match=message) as err:
            load_suite(_suite_file(tmp_path, bad), check_data=False)
        assert "blocks.0.objective_options." in str(err.value) and "\n" not in str(err.value)


def test_gpu_suite_validates_without_data():
    suite = load_suite(ROOT / "suites" / "gpu.yaml")
    assert suite.validate_only and {c.encoder for c in suite_cells(suite)} >= {"resnet18"}


def _benchmark(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "benchmark", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def _run_prepare(tmp_path: Path, suite: dict, params: dict | None = None):
    (tmp_path / "suites").mkdir(exist_ok=True)
    (tmp_path / "suites" / "bad.yaml").write_text(yaml.safe_dump(suite))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"suite": "bad", **(params or {})}))
    return _benchmark(tmp_path, "prepare")


BASE = {
    "name": "bad",
    "blocks": [
        {"method": "simclr", "objectives": ["ntxent"], "dataset": "digits", "encoder": "mlp"}
    ],
}


def _with(block=None, **top):
    return {**BASE, **top, "blocks": [{**BASE["blocks"][0], **(block or {})}]}


@pytest.mark.parametrize(
    ("suite", "params", "expected"),
    [
        (_with({"method": "simclrr"}), None, "blocks.0.method: unknown 'simclrr'; allowed: byol"),
        (_with({"objectives": ["ntxnet"]}), None, "unknown objective 'ntxnet'; valid: contrastive"),
        (
            _with({"method": "dgi", "objectives": ["triplet"], "dataset": "csbm"}),
            None,
            "method 'dgi' cannot use objective 'triplet'; compatible:",
        ),
        (_with({"batch_sizes": "big"}), None, "blocks.0.batch_sizes"),
        (_with({"epochs": "ten"}), None, "blocks.0.epochs"),
        (
            _with(search_space={"temperature": {"low": 0, "high": 1}}),
            None,
            "search_space.temperature.low: Input should be greater than 0",
        ),
        (
            _with(search_space={"warmth": {"low": 0.1, "high": 1.0}}),
            None,
            "search_space: 'warmth' is no objective's hyperparameter; allowed: l2_reg, margin",
        ),
        (
            _with(
                {"objectives": ["triplet"], "objective_options": {"semihard": 0.5}},
                search_space={"semihard": {"low": 0.01, "high": 1.0}},
            ),
            None,
            "objective_options.semihard: the search space searches semihard for tuned blocks",
        ),
        (
            _with({"batch_sizes": [5000]}),
            None,
            "blocks.0.batch_sizes: 5000 is larger than the training split of 'digits' (1257",
        ),
        (
            _with({"dataset": "mnist", "encoder": "cnn2d", "data_root": "nowhere"}),
            None,
            "blocks.0.data_root: mnist: looked in nowhere/MNIST/raw (does not exist)",
        ),
        (
            _with({"dataset": "mnist1d", "method": "rotation", "objectives": "none"}),
            None,
            "method 'rotation' cannot train on sequence data",
        ),
        (BASE, {"epochs_scale": -1}, "params.yaml: epochs_scale: Input should be greater than 0"),
        (BASE, {"seeds": "zero"}, "params.yaml: seeds"),
    ],
    ids=[
        "method",
        "objective",
        "incompatible",
        "type",
        "epochs-type",
        "temperature",
        "search-unknown",
        "search-and-fixed",
        "batch-too-large",
        "missing-data",
        "data-kind",
        "params-range",
        "params-type",
    ],
)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, suite, params, expected):
    proc = _run_prepare(tmp_path, suite, params)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, proc.stderr
    assert expected in lines[0]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "data").exists()
    assert not (tmp_path / "reports").exists()


def test_unknown_suite_names_the_allowed_ones(tmp_path):
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "core.yaml").write_text(yaml.safe_dump(BASE))
    (tmp_path / "params.yaml").write_text("suite: coer\n")
    proc = _benchmark(tmp_path, "prepare")
    assert proc.returncode == 2
    assert "suite: 'coer' not found; allowed: core" in proc.stderr


def test_run_command_bad_input(tmp_path):
    proc = _benchmark(tmp_path, "run", "--method", "byol", "--objective", "ntxent", "--epochs", "0")
    assert proc.returncode == 2
    assert "method 'byol' cannot use objective 'ntxent'; compatible: none" in proc.stderr


def test_lock_has_no_entries_of_stages_that_no_longer_exist():
    """DVC keeps a removed stage's dvc.lock entry; every entry costs time on every stage
    (DVC rewrites the whole lock after each one)."""
    from dvc.repo import Repo

    live = {s.addressing for s in Repo(str(ROOT)).index.stages}
    locked = set(yaml.safe_load((ROOT / "dvc.lock").read_text())["stages"])
    assert locked <= live, sorted(locked - live)


# -- every input validated at the boundary (in-process: the same CLI, without the start-up) --

MOCO = {"method": "moco", "objectives": ["infonce"], "dataset": "digits", "encoder": "mlp"}
NPID = {"method": "npid", "objectives": ["nce"], "dataset": "digits", "encoder": "mlp"}


def _prepare_here(tmp_path, monkeypatch, capsys, suite: dict | str, params: dict | None = None):
    """`python -m benchmark prepare` in-process in ``tmp_path``: (exit code, stderr lines)."""
    from benchmark import cli

    (tmp_path / "suites").mkdir(exist_ok=True)
    text = suite if isinstance(suite, str) else yaml.safe_dump(suite)
    (tmp_path / "suites" / "bad.yaml").write_text(text)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"suite": "bad", **(params or {})}))
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    code = cli.main(["prepare"])
    return code, capsys.readouterr().err.splitlines()


@pytest.mark.parametrize(
    ("suite", "params", "expected"),
    [
        (
            _with(search_space={"temperature": {"low": 2.0, "high": 1.0}}),
            None,
            "search_space.temperature: low 2 is above high 1; allowed: low <= high",
        ),
        (_with({"batch_sizes": []}), None, "blocks.0.batch_sizes: must not be empty"),
        (_with({"seeds": []}), None, "blocks.0.seeds: must not be empty"),
        (_with(seeds=[]), None, "bad.yaml: seeds: must not be empty"),
        (_with({"objectives": []}), None, "blocks.0.objectives: must not be empty"),
        (_with(seeds=[0, 0]), None, "seeds: 0 appears twice; allowed: distinct seeds"),
        (
            _with({"seeds": [-1]}),
            None,
            "blocks.0.seeds.0: Input should be greater than or equal to 0",
        ),
        (
            _with({"objectives": ["ntxent", "ntxent"]}),
            None,
            "blocks.0.objectives: 'ntxent' appears twice",
        ),
        ({**BASE, "blocks": BASE["blocks"] * 2}, None, "block 1 repeats block 0"),
        (
            {**BASE, "blocks": [BASE["blocks"][0], {**BASE["blocks"][0], "lr": 0.002}]},
            None,
            "blocks.1: repeats the cell simclr-ntxent batch 256",
        ),
        (
            _with({**MOCO, "options": {"queue_size": [0]}}),
            None,
            "blocks.0.options: method 'moco': option queue_size=0 is not allowed; allowed: an "
            "integer >= 1",
        ),
        (
            _with({**NPID, "options": {"bank_negatives": [64, 0]}}),
            None,
            "blocks.0.options: method 'npid': option bank_negatives=0 is not allowed",
        ),
        (
            _with({**MOCO, "options": {"queue_size": [2**40]}}),
            None,
            "queue_size: 1099511627776 is not allowed; allowed: an integer in [1, 1048576]",
        ),
        (
            _with({**MOCO, "options": {"momentum": ["high"]}}),
            None,
            "blocks.0.options: method 'moco': option momentum='high' is not allowed; allowed: a "
            "number in [0, 1)",
        ),
        (
            _with({**MOCO, "options": {"queue": [64]}}),
            None,
            "method 'moco' has no option 'queue'; allowed: batch_negatives, momentum",
        ),
        (_with({**MOCO, "options": {"queue_size": []}}), None, "queue_size: must not be empty"),
        (
            _with({"epochs": -1}),
            None,
            "blocks.0.epochs: Input should be greater than or equal to 0",
        ),
        (
            _with({"epochs": "10"}),
            None,
            "blocks.0.epochs: Input should be a valid integer (got '10')",
        ),
        (
            _with({"epochs": 2.5}),
            None,
            "blocks.0.epochs: Input should be a valid integer (got 2.5)",
        ),
        (_with({"tuned": 1}), None, "blocks.0.tuned: Input should be a valid boolean (got 1)"),
        (_with({"negatives": [0]}), None, "blocks.0.negatives.0: Input should be greater than"),
        (_with({"negatives": [16, 16]}), None, "blocks.0.negatives: 16 appears twice"),
        (_with({"bogus": 1}), None, "blocks.0.bogus: unknown key; allowed: sweep, method"),
        (
            _with({"method": "byol", "objectives": "none", "negatives": [16]}),
            None,
            "blocks.0.negatives: method 'byol' uses no objective",
        ),
        (
            _with({"method": "random", "objectives": "none", "batch_sizes": [64]}),
            None,
            "blocks.0.batch_sizes: method 'random' does not train",
        ),
        (
            _with({"objectives": ["jsd"], "tuning_epochs": 2}),
            None,
            "blocks.0.tuning_epochs: none of its objectives (jsd) has a hyperparameter to tune",
        ),
        (
            _with(
                {
                    "method": "dgi",
                    "objectives": ["jsd"],
                    "dataset": "csbm",
                    "encoder": "gcn",
                    "batch_sizes": [64],
                }
            ),
            None,
            "blocks.0.batch_sizes: method 'dgi' trains on the whole graph",
        ),
        (
            _with(
                {"dataset": "mnist1d", "encoder": "cnn2d", "dataset_options": {"num_train": 400}}
            ),
            None,
            "blocks.0.encoder: 'cnn2d' cannot encode sequence data of sample shape (1, 40)",
        ),
        (
            _with({"dataset_options": {"val_fraction": 1.5}}),
            None,
            "blocks.0.dataset_options.val_fraction: 1.5 is not allowed; allowed: a fraction in [0, 1)",
        ),
        (
            _with({"dataset": "mnist1d", "dataset_options": {"num_train": 2**40}}),
            None,
            "dataset_options.num_train: 1099511627776 is not allowed; allowed: an integer in [1, 1000000]",
        ),
        (
            _with({"dataset_options": {"size": 3}}),
            None,
            "blocks.0.dataset_options: dataset 'digits': unknown option(s) size; valid:",
        ),
        (
            _with({"dataset_options": {"val_fraction": 0.5, "test_fraction": 0.5}}),
            None,
            "dataset_options: val_fraction 0.5 + test_fraction 0.5 leaves no training data",
        ),
        (
            {
                **BASE,
                "blocks": [
                    BASE["blocks"][0],
                    {**BASE["blocks"][0], "batch_sizes": [128], "tuning_epochs": 3},
                ],
            },
            None,
            "blocks.1.tuning_epochs: simclr-ntxent is tuned once, with the tuning_epochs of "
            "blocks.0 (10), not 3; allowed: 10 or leave it out",
        ),
        (
            _with({"method": "byol", "objectives": "none", "tuning_epochs": 2}),
            None,
            "blocks.0.tuning_epochs: method 'byol' uses no objective, so there is nothing to tune",
        ),
        (
            # a data-level refusal names the file read, whatever the suite calls itself
            _with({"encoder": "cnn1d"}, name="other"),
            None,
            "suites/bad.yaml: blocks.0.encoder: 'cnn1d' cannot encode image data",
        ),
        (
            # what only the method can judge is refused at prepare too, not mid-stage
            _with({"method": "dim", "objectives": ["jsd"]}),
            None,
            "blocks.0: dim-jsd: dim needs a convolutional encoder",
        ),
        (
            _with({"method": "clip", "objectives": ["infonce"]}),
            None,
            "blocks.0: clip-infonce: method 'clip' needs a paired dataset",
        ),
        (_with(epochs=-1), None, "bad.yaml: epochs: Input should be greater than or equal to 0"),
        ({**BASE, "blocks": []}, None, "bad.yaml: blocks: must not be empty"),
        (_with(name=""), None, "bad.yaml: name: String should have at least 1 character"),
        (BASE, {"threads": 0}, "params.yaml: threads: Input should be greater than or equal to 1"),
        (BASE, {"workers": 0}, "params.yaml: workers: Input should be greater than or equal to 1"),
        (BASE, {"threads": "2"}, "params.yaml: threads: Input should be a valid integer (got '2')"),
        (BASE, {"tune": {"trials": -1}}, "params.yaml: tune.trials: Input should be greater than"),
        (BASE, {"seeds": []}, "params.yaml: seeds: must not be empty"),
        (BASE, {"seeds": [1, 1]}, "params.yaml: seeds: 1 appears twice"),
        (BASE, {"pairs": {}}, "params.yaml: pairs: unknown key; allowed: suite, device, threads"),
        (BASE, {"tune": {"trails": 3}}, "params.yaml: tune.trails: unknown key; allowed: trials"),
        (BASE, {"device": "gpu"}, "params.yaml: device: Input should be 'auto', 'cpu' or 'cuda'"),
        (BASE, {"epochs_scale": float("inf")}, "epochs_scale: Input should be a finite number"),
        (BASE, {"suite": "../bad"}, "params.yaml: suite: String should match pattern"),
        (
            "name: bad\nname: again\nblocks: []\n",
            None,
            "bad.yaml: not valid YAML (key 'name' appears twice at line 2)",
        ),
    ],
)
def test_each_bad_value_is_refused_in_one_line_before_anything_is_written(
    tmp_path, monkeypatch, capsys, suite, params, expected
):
    code, lines = _prepare_here(tmp_path, monkeypatch, capsys, suite, params)
    assert code == 2, lines
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert expected in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml", "suites"]


def test_a_bad_prepare_flag_is_one_line(tmp_path, monkeypatch, capsys):
    from benchmark import cli

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        cli.main(["prepare", "--params"])
    lines = capsys.readouterr().err.splitlines()
    assert exit_.value.code == 2 and len(lines) == 1
    assert (
        lines[0] == "error: python -m benchmark prepare: argument --params: expected one argument"
    )
    assert not any(tmp_path.iterdir())


def test_a_missing_params_file_is_one_line(tmp_path, monkeypatch, capsys):
    from benchmark import cli

    monkeypatch.chdir(tmp_path)
    assert cli.main(["prepare", "--params", "nope.yaml"]) == 2
    assert capsys.readouterr().err.strip() == "error: nope.yaml: file not found"


def test_yaml_1_1_exponents_are_numbers(tmp_path):
    """PyYAML reads `lr: 1e-3` as a string; it means the number."""
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(BASE) + "lr: 1e-3\n")
    assert load_suite(path, check_names=False).lr == pytest.approx(1e-3)


def test_a_validate_only_suite_is_checked_against_its_data_and_writes_nothing(
    tmp_path, monkeypatch, capsys
):
    code, lines = _prepare_here(tmp_path, monkeypatch, capsys, _with(validate_only=True))
    assert code == 0 and not lines
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml", "suites"]
    suite = _with({"batch_sizes": [5000]}, validate_only=True)
    code, lines = _prepare_here(tmp_path, monkeypatch, capsys, suite)
    assert code == 2 and "blocks.0.batch_sizes: 5000 is larger" in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml", "suites"]


def _run_here(tmp_path, monkeypatch, capsys, *flags: str) -> tuple[int, list[str]]:
    from benchmark import cli

    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    try:
        code = cli.main(["run", *flags, "--epochs", "0", "--no-progress"])
    except SystemExit as exc:  # argparse
        code = exc.code
    return code, capsys.readouterr().err.splitlines()


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (
            ["--method", "moco", "--option", "queue_size=0"],
            "--option: method 'moco': option queue_size=0 is not allowed; allowed: an integer >= 1",
        ),
        (
            ["--method", "simclr", "--objective", "jsd", "--temperature", "-1"],
            "--temperature -1: objective 'jsd' has no temperature (its hyperparameters: none)",
        ),
        (
            ["--method", "simclr", "--objective", "ntxent", "--margin", "0.2"],
            "--margin 0.2: objective 'ntxent' has no margin (its hyperparameters: temperature)",
        ),
        (
            ["--method", "simclr", "--objective", "ntxent", "--temperature", "0"],
            "--temperature 0: not allowed; allowed: a number > 0",
        ),
        (
            ["--method", "simclr", "--objective", "triplet", "--margin", "-0.1"],
            "--margin -0.1: not allowed; allowed: a number >= 0",
        ),
        (
            ["--method", "byol", "--temperature", "0.5"],
            "--temperature 0.5: method 'byol' uses no objective, so it has no temperature",
        ),
        (
            ["--method", "simclr", "--objective", "ntxent", "--objective-option", "semihard=1"],
            "--objective-option semihard=1: objective 'ntxent' has no semihard; allowed: none",
        ),
        (
            ["--method", "simclr", "--objective", "triplet", "--objective-option", "margin=1"],
            "--objective-option margin=1: margin has its own flag; allowed: --margin",
        ),
        (
            ["--method", "simclr", "--objective", "npair", "--objective-option", "l2_reg=x"],
            "--objective-option l2_reg=x: not a number",
        ),
        (["--method", "simclr", "--batch-size", "1"], "--batch-size 1: not allowed"),
        (["--method", "simclr", "--negatives", "0"], "--negatives 0: not allowed"),
        (["--method", "simclr", "--lr", "nan"], "--lr nan: not allowed; allowed: a number > 0"),
        (["--method", "simclr", "--seed", "-1"], "--seed -1: not allowed"),
        (["--method", "simclr", "--threads", "0"], "--threads 0: not allowed"),
        (
            ["--method", "byol", "--negatives", "8"],
            "--negatives 8: method 'byol' uses no objective",
        ),
        (["--method", "simclrr"], "unknown method 'simclrr'; valid: byol"),
        (["--method", "simclr", "--encoder", "vit"], "unknown encoder 'vit'; valid: cnn1d"),
        (
            ["--method", "simclr", "--option", "queue_size=4"],
            "--option: method 'simclr' has no option 'queue_size'; allowed: proj_dim, proj_hidden",
        ),
        (["--method", "simclr", "--option", "proj_dim"], "--option 'proj_dim': expected KEY=VALUE"),
        (
            ["--method", "simclr", "--dataset-option", "size=3"],
            "--dataset-option: dataset 'digits': unknown option(s) size",
        ),
        (
            [
                "--method",
                "simclr",
                "--dataset",
                "mnist1d",
                "--encoder",
                "cnn2d",
                "--dataset-option",
                "num_train=400",
            ],
            "--encoder: 'cnn2d' cannot encode sequence data",
        ),
        (
            ["--method", "simclr", "--batch-size", "5000"],
            "--batch-size 5000: larger than the training split of 'digits' (1257 samples)",
        ),
        (["--method", "simclr", "--batch-size", "many"], "argument --batch-size: invalid int"),
        (
            [
                "--method",
                "dgi",
                "--dataset",
                "csbm",
                "--dataset-option",
                "num_nodes=300",
                "--batch-size",
                "64",
            ],
            "--batch-size 64: method 'dgi' trains on the whole graph of 'csbm'",
        ),
        (["--objective", "ntxent"], "the following arguments are required: --method"),
    ],
)
def test_run_flags_are_refused_in_one_line(tmp_path, monkeypatch, capsys, flags, expected):
    code, lines = _run_here(tmp_path, monkeypatch, capsys, *flags)
    assert code == 2, lines
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert expected in lines[0]
    assert not any(tmp_path.iterdir())  # no data cache, nothing


def test_the_search_space_adds_declared_hyperparameters_to_the_tunable_ones():
    from benchmark.config import SearchSpace

    default = SearchSpace()
    assert default.searched("triplet") == ("margin",) and default.searched("npair") == ()
    wide = SearchSpace.model_validate(
        {"semihard": {"low": 0.01, "high": 1.0}, "l2_reg": {"low": 1e-4, "high": 0.1, "log": True}}
    )
    assert wide.searched("triplet") == ("margin", "semihard")
    assert wide.searched("npair") == ("l2_reg",) and wide.searched("ntxent") == ("temperature",)
    assert wide.range("l2_reg").log and wide.range("temperature") == default.temperature
