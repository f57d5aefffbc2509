"""The dashboard's glossary: one plain line per term, every term a page asks for exists, and every
layer type a shipped model shows on the Model page has a line."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from dashboard.glossary import TERMS, explain, layer_types_help

ROOT = Path(__file__).resolve().parent.parent


def test_each_term_is_one_short_plain_line():
    for term, line in TERMS.items():
        assert "\n" not in line and line.endswith(".") and 20 < len(line) <= 200, (term, line)
        assert line[0].isupper() or line[0].isdigit(), (term, line)


def test_explain_joins_terms_as_bold_paragraphs_and_names_a_missing_one():
    assert explain("stride") == "**stride**: " + TERMS["stride"]
    assert explain("kernel", "bias") == f"**kernel**: {TERMS['kernel']}\n\n**bias**: {TERMS['bias']}"
    with pytest.raises(KeyError, match="no such term"):
        explain("no such term")


def test_layer_types_help_keeps_known_types_once_in_order():
    assert layer_types_help(["GELU", "Conv2d", "GELU", "Mystery"]) == explain("GELU", "Conv2d")


def _terms_asked_for() -> list[tuple[str, str]]:
    """``(file, term)`` for every literal argument of ``explain(...)`` in the dashboard's code."""
    found = []
    for path in sorted((ROOT / "dashboard").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "explain":
                found += [(path.name, a.value) for a in node.args if isinstance(a, ast.Constant)]
    return found


def test_every_term_a_page_asks_for_is_in_the_glossary():
    asked = _terms_asked_for()
    assert len({f for f, _ in asked}) >= 9  # the pages that explain their words
    assert [(f, t) for f, t in asked if t not in TERMS] == []


def test_every_layer_type_of_a_shipped_model_is_explained():
    from cnnviz.inspect.architecture import architecture_summary  # noqa: PLC0415
    from cnnviz.models import get_model  # noqa: PLC0415

    metas = [json.loads(p.read_text()) for p in sorted((ROOT / "checkpoints").glob("*.json"))
             if p.with_suffix(".safetensors").is_file()]
    assert metas
    for arch, size in sorted({(m["arch"], m["preprocess"]["size"]) for m in metas}):
        types = {r.type for r in architecture_summary(get_model(arch, 10, size), size)}
        assert types - set(TERMS) == set(), (arch, types)
