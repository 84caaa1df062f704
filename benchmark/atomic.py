"""The one atomic-write helper: a temp file in the target's directory, fsync, os.replace.

A reader (or a process killed mid-write) sees the old file or the new one, never a part.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes(path: Path | str, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def write_text(path: Path | str, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def _json_clean(obj: Any) -> Any:
    """NaN -> null, numpy scalars and pandas' NA -> Python, recursively (json.dumps would
    emit a bare NaN, which is not JSON)."""
    if isinstance(obj, dict):
        return {str(k): _json_clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_clean(v) for v in obj]
    if type(obj).__module__ == "numpy" and hasattr(obj, "item"):
        obj = obj.item()
    if type(obj).__name__ == "NAType":  # pandas.NA, without importing pandas
        return None
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_json(path: Path | str, obj: Any, *, sort_keys: bool = False) -> Path:
    """``obj`` as indented JSON (NaN written as null, other values by ``str``)."""
    text = json.dumps(_json_clean(obj), indent=2, sort_keys=sort_keys, default=str)
    return write_text(path, text + "\n")


def write_csv(df, path: Path | str) -> Path:
    """A pandas DataFrame as CSV (no index)."""
    return write_text(path, df.to_csv(index=False))
