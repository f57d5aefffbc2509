"""Class names as people read them: one function for every page, figure and slide."""

from __future__ import annotations

from typing import Sequence


def class_display_name(name: str) -> str:
    """A class name as shown: underscores as spaces, nothing cut
    (``abraham_grampa_simpson`` -> ``abraham grampa simpson``)."""
    return str(name).replace("_", " ").strip() or str(name)


def class_display_names(classes: Sequence[str]) -> list[str]:
    """:func:`class_display_name` of every class, in order; when two classes would read the
    same, each gets its number (``name (3)``) so a reader (and a category axis) keeps them apart."""
    names = [class_display_name(c) for c in classes]
    if len(set(names)) < len(names):
        names = [f"{n} ({i})" for i, n in enumerate(names)]
    return names
