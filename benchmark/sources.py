"""Which source files a grid cell's result depends on: the one list behind dvc.yaml's
deps, each row's ``code_digest`` and the prepared-data cache key. Imports no torch.

A cell runs its objective's file, its method's file and the shared core (the objective
core, the method base, encoders, datasets and augmentation, the training loop and the
probe). An edit to one objective's file changes only the digests of the cells that use
that objective; an edit to the shared core changes every cell's.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
ROOT = PACKAGE.parent
NO_OBJECTIVE = "none"

# the shared core every cell runs, as paths relative to the repository root: files, or
# directories meaning every *.py file in them
SHARED_CORE = (
    "benchmark/objectives/_core",
    "benchmark/objectives/__init__.py",
    "benchmark/registry.py",
    "benchmark/methods/base.py",
    "benchmark/encoders",
    "benchmark/datasets",
    "benchmark/train.py",
    "benchmark/config/cell.py",  # CellConfig: the objective's hyperparameters
    "benchmark/distributed.py",
    "benchmark/probe.py",
)
# what a dataset's prepared (cached) arrays depend on
DATASET_CORE = ("benchmark/datasets/base.py", "benchmark/datasets/_common.py")


def objective_file(objective: str) -> str:
    return f"benchmark/objectives/{objective}.py"


def method_file(method: str) -> str:
    return f"benchmark/methods/{method}.py"


def dataset_file(dataset: str) -> str:
    return f"benchmark/datasets/{dataset}.py"


def cell_deps(method: str, objective: str) -> list[str]:
    """The dvc.yaml deps (files and directories) of a (method, objective) pair's cells."""
    own = [method_file(method)]
    if objective != NO_OBJECTIVE:
        own.insert(0, objective_file(objective))
    return [*own, *SHARED_CORE]


def expand(paths: list[str] | tuple[str, ...]) -> list[str]:
    """Paths (files or directories) -> the sorted *.py files they name."""
    files: set[str] = set()
    for p in paths:
        full = ROOT / p
        if full.is_dir():
            files.update(str(f.relative_to(ROOT)) for f in full.glob("*.py"))
        else:
            files.add(p)
    return sorted(files)


@functools.cache
def file_digest(path: str) -> str:
    """sha256 (12 hex digits) of one file's bytes, relative to the repository root."""
    return hashlib.sha256((ROOT / path).read_bytes()).hexdigest()[:12]


def file_digests(paths: list[str] | tuple[str, ...]) -> dict[str, str]:
    return {f: file_digest(f) for f in expand(paths)}


def digest_of(paths: list[str] | tuple[str, ...]) -> str:
    h = hashlib.sha256()
    for name, digest in file_digests(paths).items():
        h.update(f"{name}={digest}\n".encode())
    return h.hexdigest()[:12]


def code_digest(method: str, objective: str) -> str:
    """The source a (method, objective) cell ran: a finished cell is reused only when its
    row's ``code_digest`` equals this."""
    return digest_of(cell_deps(method, objective))


def cell_files(method: str, objective: str) -> dict[str, str]:
    """file -> digest of every source file a cell depends on (the baseline keeps them, so
    ``check`` can say which file changed)."""
    return file_digests(cell_deps(method, objective))


def dataset_digest(dataset: str) -> str:
    """The source of a dataset's generator or loader (its module and the shared dataset
    helpers): part of the prepared-data cache key, so an edited generator rebuilds."""
    own = dataset_file(dataset)
    paths = [*DATASET_CORE, *([own] if (ROOT / own).is_file() else [])]
    return digest_of(paths)
