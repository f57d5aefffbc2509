"""Where a server may read data: its data roots, and the one check every user-given path passes.

Served on loopback (the default), the dashboard is the user's own program and reads any path
they type. Served beyond loopback (a lecturer sharing it with a class), a path from a URL or a
text field is read only when it lies under one of the server's data roots; any other path gets
one message that says nothing about it (whether it exists, holds images or can be read), and
uploads are the way to bring other images.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Iterable

__all__ = ["OUTSIDE_ROOTS", "PathRefused", "check_under_roots", "env_data_root", "is_loopback"]

OUTSIDE_ROOTS = ("This server reads images only from its own data folders. Pick a dataset it offers, "
                 "or upload your images instead.")


class PathRefused(ValueError):
    """A path outside the server's data roots; the message never depends on the path."""

    def __init__(self) -> None:
        super().__init__(OUTSIDE_ROOTS)


def is_loopback(address: str | None) -> bool:
    """True when a server bound to ``address`` is reachable from this machine only.

    An empty or missing address means every interface (Streamlit's own default), so False."""
    if not address:
        return False
    if address.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip().strip("[]")).is_loopback
    except ValueError:
        return False


def env_data_root() -> Path | None:
    """``$CNNVIZ_DATA`` as a path, or None when unset or empty."""
    value = os.environ.get("CNNVIZ_DATA", "").strip()
    return Path(value).expanduser() if value else None


def check_under_roots(path: str | os.PathLike, roots: Iterable[str | os.PathLike]) -> Path:
    """``path`` resolved (``~``, ``..`` and symbolic links followed) when it lies under one of
    ``roots`` (also resolved); else :class:`PathRefused`. A link inside a root that points
    outside it is refused like the place it points to."""
    try:
        target = Path(path).expanduser().resolve()
    except (OSError, RuntimeError, ValueError):  # a link loop, a NUL byte
        raise PathRefused() from None
    for root in roots:
        try:
            base = Path(root).expanduser().resolve()
        except (OSError, RuntimeError, ValueError):
            continue
        if target == base or base in target.parents:
            return target
    raise PathRefused()
