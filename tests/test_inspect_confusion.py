"""Confusion results against hand-computed matrices, most-confused pairs, cell examples, figures."""

from __future__ import annotations

import numpy as np
import pytest

from cnnviz.evaluate import softmax
from cnnviz.figures.confusion import class_metrics_chart, confusion_chart, confusion_heatmap, readable_class_names
from cnnviz.inspect.confusion import (
    ConfusedPair, cell_examples, class_block, confused_block, confusion_from_logits, confusion_from_predictions,
    most_confused_pairs, rate_interval,
)

CLASSES = ["cat", "dog", "frog"]
LABELS = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
PREDS = np.array([0, 0, 1, 2, 1, 0, 0, 2, 2, 1])
# rows true, columns predicted, counted by hand from LABELS/PREDS above
HAND = np.array([[2, 1, 1],
                 [2, 1, 0],
                 [0, 1, 2]])


def one_hot_logits(preds: np.ndarray, k: int = 3, scale: float = 4.0) -> np.ndarray:
    return np.eye(k, dtype=np.float32)[preds] * scale


def test_confusion_from_logits_equals_the_hand_computed_matrix():
    res = confusion_from_logits(LABELS, one_hot_logits(PREDS), CLASSES)
    np.testing.assert_array_equal(res.counts, HAND)
    np.testing.assert_allclose(res.normalised, HAND / HAND.sum(1, keepdims=True))
    np.testing.assert_array_equal(res.support, [4, 3, 3])
    np.testing.assert_allclose(res.precision, [2 / 4, 1 / 3, 2 / 3], atol=1e-6)
    np.testing.assert_allclose(res.recall, [2 / 4, 1 / 3, 2 / 3], atol=1e-6)
    np.testing.assert_allclose(res.f1, [0.5, 1 / 3, 2 / 3], atol=1e-6)
    assert res.accuracy == pytest.approx(0.5)
    assert res.classes == CLASSES


def test_a_class_without_images_has_a_zero_row_and_bad_labels_are_refused():
    res = confusion_from_predictions(np.array([0, 0]), np.array([0, 1]), ["a", "b", "c"])
    np.testing.assert_array_equal(res.normalised[2], 0)
    with pytest.raises(ValueError, match="unlabelled"):
        confusion_from_predictions(np.array([-1, 0]), np.array([0, 0]), ["a", "b"])
    with pytest.raises(ValueError, match="class names"):
        confusion_from_logits(LABELS, one_hot_logits(PREDS), ["a", "b"])


def test_most_confused_pairs_order():
    res = confusion_from_predictions(LABELS, PREDS, CLASSES)
    pairs = most_confused_pairs(res, 10)
    # off-diagonal cells: (1,0)=2 rate 2/3; (0,1)=1 rate 1/4; (0,2)=1 rate 1/4; (2,1)=1 rate 1/3
    assert pairs == [ConfusedPair(1, 0, 2, pytest.approx(2 / 3)), ConfusedPair(2, 1, 1, pytest.approx(1 / 3)),
                     ConfusedPair(0, 1, 1, 0.25), ConfusedPair(0, 2, 1, 0.25)]
    assert most_confused_pairs(res, 1) == pairs[:1]
    by_rate = most_confused_pairs(res, 2, by="rate")
    assert [(p.true, p.pred) for p in by_rate] == [(1, 0), (2, 1)]
    true, pred, count, rate = pairs[0]  # plain tuples too
    assert (true, pred, count) == (1, 0, 2)


def test_cell_examples_sorted_by_confidence_with_top_k():
    labels = np.array([1, 1, 1, 0, 1])
    logits = np.array([[3.0, 0.0, 0.0],   # dog predicted cat, p(cat) high
                       [1.0, 0.5, 0.0],   # dog predicted cat, p(cat) low
                       [0.0, 5.0, 0.0],   # correct
                       [4.0, 0.0, 0.0],   # a cat: not in the (dog, cat) cell
                       [2.0, 0.0, 1.0]])  # dog predicted cat, middle
    ex = cell_examples(labels, logits, true_class=1, pred_class=0, ids=list("abcde"), top_k=2)
    assert [e.id for e in ex] == ["a", "e", "b"]
    assert [e.index for e in ex] == [0, 4, 1]
    conf = softmax(logits)[[0, 4, 1], 0]
    np.testing.assert_allclose([e.confidence for e in ex], conf, rtol=1e-6)
    assert [c for c, _ in ex[1].top] == [0, 2] and len(ex[0].top) == 2
    assert ex[1].top[0][1] == pytest.approx(ex[1].confidence)
    assert all(e.true == 1 and e.pred == 0 for e in ex)
    assert cell_examples(labels, logits, 1, 0, limit=1)[0].id == "0"
    assert cell_examples(labels, logits, 0, 2) == []


def test_confusion_figures_build():
    res = confusion_from_predictions(LABELS, PREDS, CLASSES)
    for normalised in (False, True):
        fig = confusion_heatmap(res, normalised=normalised)
        assert len(fig.data) == 1 and fig.data[0].type == "heatmap"
        assert "true: dog<br>predicted: cat" in fig.data[0].hovertext[1][0]
    for normalised in (False, True):
        chart = confusion_chart(res, normalised=normalised)
        cells = chart.data  # shared by both layers
        row = cells[(cells["true"] == 1) & (cells["pred"] == 0)].iloc[0]
        assert (row["true class"], row["predicted class"]) == ("dog", "cat")
        assert row["images"] == res.counts[1, 0] and row["rate"] == pytest.approx(res.normalised[1, 0])
        assert row["value"] == pytest.approx(res.normalised[1, 0] if normalised else res.counts[1, 0])
        assert row["text"] == (f"{res.normalised[1, 0]:.0%}" if normalised else str(res.counts[1, 0]))
        assert len(chart.layer) == 2  # cells and their values
    bars = class_metrics_chart(res).data
    assert list(dict.fromkeys(bars["metric"])) == ["precision", "recall", "F1"]
    recall = bars[bars["metric"] == "recall"].set_index("class")["value"]  # sorted by F1, lowest first
    np.testing.assert_allclose(recall[CLASSES].to_numpy(), np.nan_to_num(res.recall))


def test_twenty_long_class_names_stay_readable_and_distinct():
    names = [f"abraham_grampa_simpson_{i}" for i in range(20)]
    short = readable_class_names(names)
    assert len(set(short)) == 20 and all("_" not in s for s in short)
    rng = np.random.default_rng(0)
    res = confusion_from_predictions(rng.integers(0, 20, 200), rng.integers(0, 20, 200), names)
    fig = confusion_heatmap(res)
    assert len(fig.data[0].x) == 20 and fig.data[0].texttemplate == "%{text}"
    chart = confusion_chart(res)
    assert len(chart.layer) == 2 and chart.data["true class"].nunique() == 20  # values written in


def _result(counts: np.ndarray, names: list[str] | None = None):
    """A ConfusionResult with exactly these (true, predicted) counts."""
    t, p = np.nonzero(counts)
    reps = counts[t, p]
    labels, preds = np.repeat(t, reps), np.repeat(p, reps)
    return confusion_from_predictions(labels, preds, names or [f"class_{i}" for i in range(len(counts))])


def test_blocks_of_a_large_matrix():
    counts = np.diag(np.full(6, 10))
    counts[1, 4] = 5  # 1 taken for 4 five times
    counts[4, 1] = 1
    counts[2, 4] = 3
    counts[5, 0] = 2
    res = _result(counts)
    # involved: 0: 2, 1: 6, 2: 3, 3: 0, 4: 9, 5: 2 -> the top four in class order
    assert confused_block(res, 4) == [0, 1, 2, 4]  # 0 and 5 tie at 2: the lower class, 0
    assert confused_block(res, 5) == [0, 1, 2, 4, 5]
    assert class_block(res, 4, 20) == [4, 1, 2]  # 1: 5 + 1 images either way, 2: 3
    assert class_block(res, 4, 2) == [4, 1]
    assert class_block(res, 3, 20) == [3]  # confused with nothing
    with pytest.raises(ValueError, match="class 6 out of range 0..5"):
        class_block(res, 6)


def test_the_wilson_interval_of_a_thin_rate():
    lo, hi = rate_interval(2, 15)  # 13%: anywhere from 4% to 38%
    assert (round(lo, 4), round(hi, 4)) == (0.0374, 0.3788)
    assert rate_interval(0, 10) == (0.0, pytest.approx(0.2775, abs=1e-4))
    assert rate_interval(3, 0) == (0.0, 1.0)


def test_a_block_keeps_every_row_whole_in_its_other_column():
    counts = np.diag(np.full(5, 4))
    counts[0, 3] = 2
    counts[0, 4] = 1
    res = _result(counts)
    chart = confusion_chart(res, classes=[0, 1, 3])
    df = chart.data
    assert list(dict.fromkeys(df["true class"])) == ["class 0", "class 1", "class 3"]
    assert list(dict.fromkeys(df["predicted class"])) == ["class 0", "class 1", "class 3", "all other classes"]
    row0 = df[df["true"] == 0].set_index("predicted class")["images"].to_dict()
    assert row0 == {"class 0": 4, "class 1": 0, "class 3": 2, "all other classes": 1}  # 7 images of class 0
    assert df[df["pred"] == -1]["images"].tolist() == [1, 0, 0]
    with pytest.raises(ValueError, match="distinct class numbers in 0..4"):
        confusion_chart(res, classes=[0, 0])


def test_chart_text_is_never_under_12_px_and_names_are_whole():
    names = ["abraham_grampa_simpson", "apu_nahasapeemapetilon", "charles_montgomery_burns"]
    res = _result(np.array([[5, 1, 0], [0, 4, 2], [1, 0, 6]]), names)
    spec = confusion_chart(res).to_dict()
    for layer in spec["layer"]:
        for ch in ("x", "y"):
            axis = layer["encoding"][ch]["axis"]
            assert axis["labelLimit"] == 0 and axis["labelFontSize"] >= 12, (ch, axis)
    assert spec["layer"][1]["mark"]["fontSize"] >= 12
    assert set(confusion_chart(res).data["true class"]) == {"abraham grampa simpson", "apu nahasapeemapetilon",
                                                            "charles montgomery burns"}
    bars = class_metrics_chart(res)
    # lowest F1 first: apu (recall 4/6, precision 4/5) < abraham (5/6, 5/6) < charles (6/7, 6/8)
    f1 = {n: 2 * p * r / (p + r) for n, p, r in [("apu nahasapeemapetilon", 4 / 5, 4 / 6),
                                                  ("abraham grampa simpson", 5 / 6, 5 / 6),
                                                  ("charles montgomery burns", 6 / 8, 6 / 7)]}
    order = sorted(f1, key=f1.get)
    b = bars.to_dict()
    assert b["encoding"]["y"]["sort"] == order and b["encoding"]["y"]["axis"]["labelLimit"] == 0
    assert b["encoding"]["y"]["axis"]["labelFontSize"] >= 12
    assert list(dict.fromkeys(bars.data["class"])) == order
