"""A new objective is its file: a copy of ``ntxent.py`` under another name, dropped into a
copy of the project, is discovered by the registry, listed by ``list --json``, covered by
the contract and golden tests, and given its tune@/train@ stages by ``python -m benchmark
pipeline``, which rewrites only the files it generates."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NAME = "ntxent_copy"
GENERATED = {"benchmark/registry.json", "tests/objectives/golden.json", "dvc.yaml"}


def _snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and ".pytest_cache" not in p.parts
    }


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("new-objective")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for part in ("benchmark", "suites", "tests/objectives"):
        shutil.copytree(ROOT / part, root / part, ignore=ignore)
    for part in ("params.yaml", "dvc.yaml", "pyproject.toml", "tests/__init__.py"):
        if (ROOT / part).is_file():
            shutil.copy(ROOT / part, root / part)
    source = (ROOT / "benchmark/objectives/ntxent.py").read_text()
    assert source.count('register_objective("ntxent"') == 1
    copy = source.replace('register_objective("ntxent"', f'register_objective("{NAME}"')
    (root / f"benchmark/objectives/{NAME}.py").write_text(copy)
    return root


def _run(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [sys.executable, *args], cwd=root, env=env, capture_output=True, text=True, timeout=600
    )


def test_the_pipeline_command_picks_it_up_touching_only_generated_files(project):
    before = _snapshot(project)
    done = _run(project, "-m", "benchmark", "pipeline")
    assert done.returncode == 0, done.stdout + done.stderr
    after = _snapshot(project)
    changed = {p for p in after if before.get(p) != after[p]}
    assert changed == GENERATED, changed
    registry = json.loads((project / "benchmark/registry.json").read_text())
    (entry,) = [o for o in registry["objectives"] if o["name"] == NAME]
    assert entry["tunable"] == ["temperature"]
    stages = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    pair = f"simclr-{NAME}"  # core's headline block takes every compatible objective
    assert stages["train"]["foreach"][pair]["objective_src"] == f"benchmark/objectives/{NAME}.py"
    assert pair in stages["tune"]["foreach"]
    golden = json.loads((project / "tests/objectives/golden.json").read_text())
    assert golden[NAME]["default"] == golden["ntxent"]["default"]  # the same formula
    check = _run(project, "-m", "benchmark", "pipeline", "--check")
    assert check.returncode == 0, check.stdout + check.stderr


def test_list_json_names_it(project):
    done = _run(project, "-m", "benchmark", "list", "--json")
    assert done.returncode == 0, done.stderr
    assert NAME in [o["name"] for o in json.loads(done.stdout)["objectives"]]


def test_the_contract_and_golden_tests_cover_it(project):
    _run(project, "-m", "benchmark", "pipeline")  # its golden values (the first test's work)
    done = _run(
        project,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "tests/objectives/test_contract.py",
        "tests/objectives/test_golden.py",
        "-k",
        NAME,
    )
    assert done.returncode == 0, done.stdout[-3000:]
    passed = int(done.stdout.strip().splitlines()[-1].split(" passed")[0].split()[-1])
    assert passed >= 5, done.stdout[-500:]
