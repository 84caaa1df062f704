"""Disk faults: a failed write leaves the previous file intact; the CLI answers in one line."""

from __future__ import annotations

import errno
import os

import pandas as pd
import pytest

from benchmark import atomic, cli


def _full_disk(monkeypatch):
    """The disk fills while the file is written: the error surfaces when the data is
    flushed to it (os.fsync), as it does with delayed allocation."""

    def fsync(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", fsync)


def test_a_full_disk_leaves_the_previous_file_intact_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "results.csv"
    atomic.write_text(path, "old,rows\n1,2\n")
    _full_disk(monkeypatch)
    with pytest.raises(OSError, match="No space"):
        atomic.write_csv(pd.DataFrame({"a": range(1000)}), path)
    monkeypatch.undo()
    assert path.read_text() == "old,rows\n1,2\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.csv"]


def test_a_stage_that_cannot_write_says_so_in_one_line(tmp_path, monkeypatch, capsys):
    results = tmp_path / "results.csv"
    pd.DataFrame(
        {
            "suite": ["core"],
            "method": ["simclr"],
            "objective": ["ntxent"],
            "dataset": ["d"],
            "encoder": ["e"],
            "sweep": ["method"],
            "tuned": [True],
            "diverged": [False],
            "seed": [0],
            "batch_size": [256],
            "linear_acc": [0.9],
        }
    ).to_csv(results, index=False)

    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(tmp_path / "out"))

    monkeypatch.setattr(atomic.tempfile, "mkstemp", denied)
    monkeypatch.setattr("sys.argv", ["benchmark"])
    from benchmark import summary

    monkeypatch.setattr(summary, "run", lambda args: atomic.write_text(tmp_path / "out", "x"))
    code = cli.main(["summary", "--results", str(results)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith(f"error: {tmp_path / 'out'}: Permission denied")
