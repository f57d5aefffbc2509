"""Small on-disk caches of numpy arrays: one ``.npz`` per entry holding the arrays and the JSON
description they were computed for. A read returns them only when the stored description equals
the one asked for; a write goes to a temporary name beside the entry and is renamed into place,
so a crash never leaves a half entry. Nothing is unpickled."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

__all__ = ["load_arrays", "save_arrays"]


def load_arrays(path: Path, meta: dict) -> dict[str, np.ndarray] | None:
    """The arrays stored at ``path`` for exactly ``meta``; None when absent, damaged or made
    for another description."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if json.loads(str(z["__meta__"])) != meta:
                return None
            return {k: z[k] for k in z.files if k != "__meta__"}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None


def save_arrays(path: Path, meta: dict, **arrays: np.ndarray) -> None:
    """Store ``arrays`` with ``meta`` at ``path`` (temporary name, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, __meta__=np.asarray(json.dumps(meta, sort_keys=True)), **arrays)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
