"""AppTests of the Mistakes page's ranking, cleanlab flags, split choice and mistake card, on the
tiny checkpoint and class tree of ``dashboard_fixtures``."""

from __future__ import annotations

from urllib.parse import parse_qs

import numpy as np

from cnnviz.checkpoints import checkpoint_data, load_checkpoint
from cnnviz.inspect.features import cached_features
from cnnviz.inspect.mistakes import rank_mistakes

from dashboard_fixtures import dashboard_env, errors, open_page, tiny_dashboard  # noqa: F401 (fixtures)


def shown(at) -> list[int]:
    """Row indices of the thumbnails, in page order (captions "#<index> · <confidence>")."""
    return [int(c.split(" ")[0].lstrip("#")) for im in at.image for c in im.captions if c.startswith("#")]


def test_all_mistakes_ranked_three_ways_with_cleanlab_flags(dashboard_env):
    ckpt = load_checkpoint(dashboard_env.checkpoints / "tiny.json")
    ds = checkpoint_data(ckpt.meta, dashboard_env.tree, "test")
    fs = cached_features(ckpt, ds, "test")
    k = len(dashboard_env.classes)
    at = open_page("mistakes", {"true": str(k), "pred": str(k)})  # any class -> any class
    assert not at.exception, errors(at)
    assert any("cleanlab flags" in c.value and "out-of-sample" in c.value for c in at.caption)
    orders = at.selectbox(key="m_order").options
    assert len(orders) == 3  # confidence, margin and cleanlab's label issue
    for order in ("confidence", "margin", "label_issue"):
        at.selectbox(key="m_order").set_value(order).run()
        assert not at.exception, errors(at)
        expected = [m.index for m in rank_mistakes(fs.labels, fs.logits, order, issues=_issues(ckpt, ds, fs))]
        assert shown(at) == expected, order
        assert at.query_params["order"] == order
        assert len(at.get("button")) >= len(expected)  # a "Mistake card" button per mistake


def _issues(ckpt, ds, fs):
    from cnnviz.inspect.mistakes import cached_data_issues

    return cached_data_issues(ckpt, ds, "test", fs.features, fs.logits)


def test_mistake_card_opens_with_heatmaps_neighbours_and_units(dashboard_env):
    ckpt = load_checkpoint(dashboard_env.checkpoints / "tiny.json")
    ds = checkpoint_data(ckpt.meta, dashboard_env.tree, "test")
    fs = cached_features(ckpt, ds, "test")
    wrong = np.flatnonzero(fs.logits.argmax(1) != fs.labels)
    assert len(wrong), "the tiny model should make a mistake on its test images"
    k = len(dashboard_env.classes)
    at = open_page("mistakes", {"true": str(k), "pred": str(k)})
    first = shown(at)[0]
    at.button(key=f"m_card_{first}").click().run()
    assert not at.exception, errors(at)
    assert at.query_params["card"] == str(first)
    md = " ".join(m.value for m in at.markdown)
    assert f"Mistake card: test #{first}" in md and "Nearest training images" in md
    captions = [c for im in at.image for c in im.captions]
    assert any(c.startswith("Grad-CAM: evidence for") and c.endswith("(predicted)") for c in captions)
    assert any(c.startswith("Grad-CAM: evidence for") and c.endswith("(true)") for c in captions)
    assert any(c.startswith("Contrastive: why ") for c in captions)
    # the verdict: one line per measured fact (its wording is tested on a known answer in test_contrast)
    verdict = next(m.value for m in at.markdown if m.value.startswith("- ")).split("\n")
    assert verdict[0].startswith(("- Unsure: ", "- Confident and wrong: ")) or "well ahead of" in verdict[0]
    assert " nearest training images are " in verdict[1]
    assert any(v.startswith("- Deleting the ") and v.endswith(" explains the choice best.")
               or v.endswith("no map explains the choice better than the others.")
               or v.startswith("- Deleting pixels in any order never takes the lead") for v in verdict)
    assert verdict[-1] == "- No evidence of a wrong label (no cleanlab flag, no near-duplicate with another label)." \
        or verdict[-1].startswith("- The label is worth a second look: ")
    links = [el.proto for el in at.get("page_link")]
    units = [link for link in links if "units" in link.page]
    assert len(units) == 5 and all("ch=" in link.query_string for link in units)
    assert all(link.label == f"Unit {parse_qs(link.query_string)['ch'][0]}" for link in units)
    unit_captions = [c.value for c in at.caption if c.value.startswith("unit ")]
    assert len(unit_captions) == 5 and all(" · push " in c for c in unit_captions)
    at.button(key="m_card_close").click().run()
    assert not at.exception, errors(at)
    assert "card" not in at.query_params
    assert "Mistake card:" not in " ".join(m.value for m in at.markdown)


def test_training_images_are_marked_in_sample(dashboard_env):
    at = open_page("mistakes", {"split": "train"})
    assert not at.exception, errors(at)
    assert at.radio(key="m_split").value == "train"
    assert any("in-sample" in c.value for c in at.caption)
