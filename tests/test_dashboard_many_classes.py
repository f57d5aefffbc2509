"""The Mistakes page at 100 classes (a CIFAR-100-like class tree made here, an untrained model):
readable by choosing a block of at most 20 classes, never by shrinking text."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cnnviz.checkpoints import CheckpointMeta, checkpoint_data, load_checkpoint, save_checkpoint
from cnnviz.data import Preprocess
from cnnviz.inputs import Normalization
from cnnviz.inspect.confusion import class_block, confused_block, confusion_from_logits
from cnnviz.inspect.features import cached_features
from cnnviz.models import get_model

from dashboard_fixtures import _point_dashboard, charts, errors, open_page, write_textured_jpeg

K = 100


@pytest.fixture(scope="module")
def hundred(tmp_path_factory):
    """100 classes ("species 000" ... with long names), 2 training and 3 test images each, and an
    untrained alexnet_style checkpoint for them."""
    base = tmp_path_factory.mktemp("hundred")
    classes = [f"species_{i:03d}_of_a_rather_long_name" for i in range(K)]
    rng = np.random.default_rng(0)
    for split, n in (("train", 2), ("test", 3)):
        for i, cls in enumerate(classes):
            colour = tuple(int(v) for v in rng.integers(0, 256, 3))
            for j in range(n):
                write_textured_jpeg(base / "data" / "folder" / split / cls / f"{j}.jpg", colour, rng)
    torch.manual_seed(0)
    kw = dict(width=0.125, fc6=16, fc7=32)
    model = get_model("alexnet_style", K, 32, **kw)
    meta = CheckpointMeta("alexnet_style", classes, Preprocess(32), Normalization((0.5,) * 3, (0.25,) * 3),
                          arch_kwargs=kw)
    save_checkpoint(base / "checkpoints" / "hundred", model, meta)
    return base


@pytest.fixture
def hundred_env(hundred, monkeypatch):
    _point_dashboard(monkeypatch, hundred / "checkpoints", hundred / "data")
    ckpt = load_checkpoint(hundred / "checkpoints" / "hundred.json")
    test = checkpoint_data(ckpt.meta, hundred / "data" / "folder", "test")
    fs = cached_features(ckpt, test, "test")
    return confusion_from_logits(fs.labels, fs.logits, ckpt.meta.classes)


def _heat(at):
    chart = charts(at)["m_heat"]
    return chart, chart.frame()


def test_a_hundred_classes_open_on_the_twenty_most_confused(hundred_env):
    res = hundred_env
    at = open_page("mistakes")
    assert not at.exception, errors(at)
    assert at.radio(key="m_view").value == "confused" and at.query_params["classes"] == "confused"
    chart, df = _heat(at)
    block = confused_block(res, 20)
    names = [res.classes[i].replace("_", " ") for i in block]
    assert list(dict.fromkeys(df["true class"])) == names  # every name whole
    assert list(dict.fromkeys(df["predicted class"])) == names + ["all other classes"]
    rows = df.groupby("true")["images"].sum()
    assert rows.to_dict() == {i: int(res.support[i]) for i in block}  # each row still adds up
    layers = chart.spec["layer"]
    assert len(layers) == 2 and layers[1]["mark"]["fontSize"] >= 12  # values written in, 13 px
    assert all(layer["encoding"][c]["axis"]["labelFontSize"] >= 12 for layer in layers for c in "xy")
    assert any("The 20 classes most involved in mistakes" in c.value and "of 100" in c.value for c in at.caption)
    bars = next(c for c in charts(at).values() if "precision, recall and F1" in c.title)
    assert set(bars.frame()["class"]) == set(names)


def test_one_class_and_its_confusions_and_all_as_colour_only(hundred_env):
    res = hundred_env
    at = open_page("mistakes", {"classes": "class", "cls": "7"})
    assert not at.exception, errors(at)
    assert at.selectbox(key="m_block_cls").value == 7
    _, df = _heat(at)
    assert list(dict.fromkeys(df["true"])) == class_block(res, 7, 20)
    assert df["true"].iloc[0] == 7
    at.radio(key="m_view").set_value("all").run()
    assert not at.exception, errors(at)
    chart, df = _heat(at)
    assert df["true"].nunique() == K and "all other classes" not in set(df["predicted class"])
    assert len(chart.spec["layer"]) == 1  # colour only: no values drawn smaller
    bars = next(c for c in charts(at).values() if "precision, recall and F1" in c.title)
    assert bars.frame()["class"].nunique() == 20  # the 20 lowest F1
    assert any("of the 20 classes with the lowest F1, of 100" in c.value for c in at.caption)
