"""benchmark/sources.py: the one list of a cell's source files, behind dvc.yaml's deps,
each row's code_digest and the prepared-data cache key."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from benchmark import sources
from benchmark.config import all_pairs

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def tree(tmp_path, monkeypatch):
    """A copy of the package whose files a test may edit; sources reads it."""
    shutil.copytree(
        ROOT / "benchmark", tmp_path / "benchmark", ignore=shutil.ignore_patterns("__pycache__")
    )
    monkeypatch.setattr(sources, "ROOT", tmp_path)
    sources.file_digest.cache_clear()
    yield tmp_path
    sources.file_digest.cache_clear()


def _digests() -> dict[str, str]:
    sources.file_digest.cache_clear()
    return {pair: sources.code_digest(m, o) for pair, (m, o) in all_pairs(ROOT / "suites").items()}


def test_a_cell_depends_on_its_objective_its_method_and_the_shared_core():
    files = sources.expand(sources.cell_deps("simclr", "triplet"))
    assert "benchmark/objectives/triplet.py" in files
    assert "benchmark/methods/simclr.py" in files
    for core in ("objectives/_core/registry.py", "methods/base.py", "train.py", "probe.py"):
        assert f"benchmark/{core}" in files
    assert "benchmark/datasets/augment.py" in files and "benchmark/encoders/cnn.py" in files
    assert "benchmark/objectives/ntxent.py" not in files
    assert "benchmark/methods/moco.py" not in files
    assert not any(f.startswith("benchmark/objectives/") and f.endswith("none.py") for f in files)
    assert set(sources.cell_files("byol", "none")) == set(
        sources.expand(sources.cell_deps("byol", "none"))
    )


@pytest.mark.parametrize(
    ("edited", "affected"),
    [
        ("objectives/triplet.py", lambda m, o: o == "triplet"),
        ("methods/moco.py", lambda m, o: m == "moco"),
        ("train.py", lambda m, o: True),
        ("datasets/mnist1d.py", lambda m, o: True),
    ],
)
def test_an_edit_changes_exactly_the_digests_of_the_cells_that_run_it(tree, edited, affected):
    before = _digests()
    path = tree / "benchmark" / edited
    path.write_text(path.read_text() + "\n# edited\n")
    after = _digests()
    pairs = all_pairs(ROOT / "suites")
    changed = {p for p in pairs if before[p] != after[p]}
    assert changed == {p for p, (m, o) in pairs.items() if affected(m, o)}


def test_the_dataset_digest_follows_its_generator_and_the_cache_key_follows_the_digest(
    tree, monkeypatch
):
    import benchmark.datasets as datasets

    before = {name: sources.dataset_digest(name) for name in ("mnist1d", "digits")}
    key_before = datasets.cache_path("mnist1d", num_train=100)
    path = tree / "benchmark" / "datasets" / "mnist1d.py"
    path.write_text(path.read_text() + "\n# edited generator\n")
    sources.file_digest.cache_clear()
    assert sources.dataset_digest("mnist1d") != before["mnist1d"]
    assert sources.dataset_digest("digits") == before["digits"]
    assert datasets.cache_path("mnist1d", num_train=100) != key_before


def test_the_committed_dvc_yaml_is_what_the_pipeline_command_writes():
    from benchmark import pipeline

    assert (ROOT / "dvc.yaml").read_text() == pipeline.render(), (
        "dvc.yaml is stale: run `python -m benchmark pipeline`"
    )


def test_pipeline_check_fails_on_a_stale_file(tmp_path):
    stale = tmp_path / "dvc.yaml"
    stale.write_text((ROOT / "dvc.yaml").read_text().replace("benchmark/probe.py", "x.py", 1))
    cmd = [sys.executable, "-m", "benchmark", "pipeline", "--check", "--out", str(stale)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 1 and "is stale" in proc.stdout
    ok = subprocess.run(cmd[:-1] + ["dvc.yaml"], cwd=ROOT, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr


def test_train_and_tune_stages_depend_on_the_cell_sources():
    doc = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    for kind in ("train", "tune"):
        template, items = doc["stages"][kind]["do"], doc["stages"][kind]["foreach"]
        for pair, item in items.items():
            method, objective = all_pairs(ROOT / "suites")[pair]
            deps = {
                d.replace("${item.objective_src}", item["objective_src"]).replace(
                    "${item.method_src}", item["method_src"]
                )
                for d in template["deps"]
            }
            assert set(sources.cell_deps(method, objective)) <= deps, (kind, pair)
    assert "reports/cells/${key}.json" in template["deps"]  # the pair's part of the suite
    assert "suites/${suite}.yaml" not in template["deps"]  # not the whole suite file


def test_an_edit_to_one_block_changes_only_its_pairs_grid_files(tmp_path):
    """The prepare stage's per-pair grid files are the tune/train stages' key-level dep on
    the suite: an edit to the DGI block changes the DGI pairs' files and no other."""
    from benchmark.config import load_suite, pair_grid

    def grids(path: Path) -> dict[str, dict]:
        suite = load_suite(path, check_data=False)
        return {pair: pair_grid(suite, pair) for pair in all_pairs(ROOT / "suites")}

    text = (ROOT / "suites" / "core.yaml").read_text()
    block = "  - {method: dgi, objectives: [jsd, infonce, nwj], dataset: csbm, epochs: 150,"
    assert text.count(block) == 1
    edited = tmp_path / "core.yaml"
    edited.write_text(text.replace(block, block.replace("epochs: 150,", "epochs: 149,")))
    before, after = grids(ROOT / "suites" / "core.yaml"), grids(edited)
    changed = {pair for pair in before if before[pair] != after[pair]}
    assert changed == {"dgi-jsd", "dgi-infonce", "dgi-nwj"}
    assert before["random-none"]["cells"] and not before["cpc-nwj"]["cells"]  # not in core
