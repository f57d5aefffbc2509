"""Mistakes ranked, cleanlab's data issues, the near-duplicate threshold and the mistake card,
on hand-made numbers and toy models."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from cnnviz.inputs import Normalization
from cnnviz.inspect.mistakes import (
    DataIssues, calibrate_near_duplicates, channel_contributions, find_data_issues, is_out_of_sample,
    mistake_card, rank_mistakes,
)
from cnnviz.inspect.neighbours import NeighbourIndex
from cnnviz.models import CNN

IDENTITY = Normalization((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))


def logits_of(probs: list[list[float]]) -> np.ndarray:
    return np.log(np.asarray(probs, np.float64))


# rows: true labels 0,0,1,1,2 ; predictions 1 (0.7), 0 (ok), 0 (0.5), 2 (0.9), 0 (0.6)
LABELS = np.array([0, 0, 1, 1, 2])
LOGITS = logits_of([[0.2, 0.7, 0.1], [0.8, 0.1, 0.1], [0.5, 0.3, 0.2], [0.05, 0.05, 0.9], [0.6, 0.1, 0.3]])


def test_rank_by_confidence_and_by_margin():
    by_conf = rank_mistakes(LABELS, LOGITS, "confidence")
    assert [m.index for m in by_conf] == [3, 0, 4, 2]
    assert by_conf[0].confidence == pytest.approx(0.9) and by_conf[0].true_prob == pytest.approx(0.05)
    by_margin = rank_mistakes(LABELS, LOGITS, "margin")
    # margins: 0 -> 0.5, 2 -> 0.2, 3 -> 0.85, 4 -> 0.3
    assert [m.index for m in by_margin] == [3, 0, 4, 2]
    assert [round(m.margin, 6) for m in by_margin] == [0.85, 0.5, 0.3, 0.2]
    cell = rank_mistakes(LABELS, LOGITS, "confidence", true_class=1, pred_class=0)
    assert [(m.index, m.true, m.pred) for m in cell] == [(2, 1, 0)]
    assert [m.index for m in rank_mistakes(LABELS, LOGITS, pred_class=0)] == [4, 2]
    assert rank_mistakes(LABELS[:2], LOGITS[:2], true_class=1) == []


def test_rank_errors_are_exact():
    with pytest.raises(ValueError, match=r"^order must be one of confidence, margin, label_issue, got 'loss'$"):
        rank_mistakes(LABELS, LOGITS, "loss")
    with pytest.raises(ValueError, match=r"^order='label_issue' needs issues= from find_data_issues$"):
        rank_mistakes(LABELS, LOGITS, "label_issue")


def planted(n_per_class: int = 100, flips: int = 10, seed: int = 0):
    """Three separated Gaussian clusters; probabilities from distances to the centres (as a
    model that never saw these points would give); ``flips`` labels changed to another class."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0]])
    truth = np.repeat(np.arange(3), n_per_class)
    feats = centres[truth] + rng.normal(size=(len(truth), 2))
    d2 = ((feats[:, None, :] - centres[None]) ** 2).sum(-1)
    probs = np.exp(-d2 / 2)
    probs /= probs.sum(1, keepdims=True)
    flipped = np.sort(rng.choice(len(truth), flips, replace=False))
    labels = truth.copy()
    labels[flipped] = (truth[flipped] + rng.integers(1, 3, flips)) % 3
    return feats.astype(np.float32), probs, labels, flipped


def test_label_issue_ranking_finds_the_planted_flips_first(monkeypatch):
    import cleanlab.filter

    def no_pool(*a, **k):
        raise AssertionError("cleanlab must not start a process pool (it hung inside the Streamlit server)")

    monkeypatch.setattr(cleanlab.filter.multiprocessing, "Pool", no_pool)
    feats, probs, labels, flipped = planted()
    issues = find_data_issues(labels, probs, feats, out_of_sample=True)
    ranked = rank_mistakes(labels, np.log(probs), "label_issue", issues=issues)
    assert sorted(m.index for m in ranked[:10]) == flipped.tolist()
    # cleanlab's own cut-off flags most of them (9 of 10 here); the ranking put all 10 first
    assert len(set(np.flatnonzero(issues.is_label_issue)) & set(flipped.tolist())) >= 8
    assert sum("suspected label error" in m.flags for m in ranked[:10]) >= 8
    assert issues.out_of_sample and len(issues.near_duplicate_sets) == len(labels)


def test_data_issues_find_a_planted_near_duplicate_and_round_trip():
    feats, probs, labels, _ = planted(flips=0)
    feats[7] = feats[3] + 1e-4  # a near-copy
    issues = find_data_issues(labels, probs, feats, out_of_sample=False)
    assert issues.is_near_duplicate[3] and issues.is_near_duplicate[7]
    assert 7 in issues.near_duplicate_sets[3] and 3 in issues.near_duplicate_sets[7]
    again = DataIssues.from_arrays(issues.to_arrays())
    assert again.near_duplicate_sets == issues.near_duplicate_sets and again.out_of_sample is False
    np.testing.assert_array_equal(again.label_score, issues.label_score)
    assert "near-duplicate" in again.flags(3)


def test_data_issue_errors_are_exact():
    feats, probs, labels, _ = planted(n_per_class=3, flips=0)
    assert len(find_data_issues(labels, probs, feats, True).label_score) == 9  # k shrinks to 8
    with pytest.raises(ValueError, match=r"^need at least 3 images to look for data issues, got 2$"):
        find_data_issues(labels[:2], probs[:2], feats[:2], True)
    labels[0] = -1
    with pytest.raises(ValueError, match=r"^every image needs a label \(found -1\): label issues need the given "
                                         r"labels$"):
        find_data_issues(labels, probs, feats, True, k=2)


def test_out_of_sample_is_every_split_but_train():
    assert is_out_of_sample("test") and is_out_of_sample("val") and not is_out_of_sample("train")


class ConvLinear(CNN):
    """A 1x1 convolution to 3 channels, then a linear head on the flattened (3, 4, 4) map."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.num_classes, self.embed_dim = 2, 48
        self.conv = nn.Conv2d(3, 3, 1, bias=False)
        self.fc = nn.Linear(48, 2)
        with torch.no_grad():
            self.conv.weight.copy_(torch.randn(3, 3, 1, 1, generator=g))
            self.fc.weight.copy_(torch.randn(2, 48, generator=g))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x).flatten(1)

    def head(self, z: torch.Tensor) -> torch.Tensor:
        return self.fc(z)


def test_channel_contributions_equal_activation_times_weight_for_a_linear_head():
    model = ConvLinear().requires_grad_(False)  # as a loaded checkpoint's frozen weights
    img = np.random.default_rng(1).integers(0, 256, (4, 4, 3), dtype=np.uint8)
    got = channel_contributions(model, img, IDENTITY, 1, "conv")
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        a = model.conv(x)[0]  # (3, 4, 4)
    w = model.fc.weight[1].detach().view(3, 4, 4)
    expected = (a * w).sum((1, 2)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    # the channels add up to the logit minus the bias
    with torch.no_grad():
        logit = model(x)[0, 1] - model.fc.bias[1]
    assert got.sum() == pytest.approx(float(logit), rel=1e-5)


class QuadrantColours(CNN):
    """Features: the mean colour of each quadrant (12-d, shifted so 0.5 grey is the origin)."""

    def __init__(self):
        super().__init__()
        self.num_classes, self.embed_dim = 2, 12
        self.conv = nn.Identity()

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.adaptive_avg_pool2d(x - 0.5, 2).flatten(1)

    def head(self, z: torch.Tensor) -> torch.Tensor:
        return z[:, :2]


def test_near_duplicate_threshold_separates_copies_from_other_images():
    model = QuadrantColours()
    rng = np.random.default_rng(0)
    blocks = rng.integers(0, 256, (60, 4, 4, 3), dtype=np.uint8)
    images = blocks.repeat(4, 1).repeat(4, 2)  # 16x16, flat 4x4 blocks of random colours
    t = calibrate_near_duplicates(model, images, IDENTITY, n=40)
    assert t.n == 40 and t.percentile == 50.0
    assert t.copy_distances[0] <= t.copy_distances[1] <= t.copy_distances[2]
    assert 0 < t.threshold < t.nearest_other  # copies sit closer than the nearest other image
    with pytest.raises(ValueError, match=r"^need at least 2 images to calibrate the near-duplicate threshold$"):
        calibrate_near_duplicates(model, images[:1], IDENTITY)


class TwoBlobNet(CNN):
    """Features = mean red and mean green; logit 0 = red, logit 1 = green (a conv to name a layer)."""

    def __init__(self):
        super().__init__()
        self.num_classes, self.embed_dim = 2, 2
        self.conv = nn.Conv2d(3, 2, 1, bias=False)
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.weight[0, 0] = 1.0
            self.conv.weight[1, 1] = 1.0

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x).mean((2, 3))

    def head(self, z: torch.Tensor) -> torch.Tensor:
        return z * 10


def test_mistake_card_marks_near_duplicates_and_label_doubts_only_on_evidence():
    model = TwoBlobNet()
    img = np.zeros((8, 8, 3), np.uint8)
    img[..., 0] = 200  # red: predicted class 0
    img[2:4, 2:4, 1] = 100
    train_feats = np.array([[0.78, 0.02], [0.8, 0.0], [0.7, 0.1], [0.75, 0.05], [0.0, 0.8], [0.1, 0.9]], np.float32)
    train_labels = np.array([0, 0, 0, 0, 1, 1])
    query = np.array([200 / 255, 100 / 255 * 4 / 64], np.float32)
    logits = model(torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255)[0].detach().numpy()
    card = mistake_card(model, img, IDENTITY, true=1, logits=logits, query_features=query,
                        train_index=NeighbourIndex(train_feats), train_labels=train_labels, threshold=1e-6,
                        index=5, k=5)
    assert card.pred == 0 and card.true == 1 and card.top[0][0] == 0 and len(card.top) == 2
    assert card.neighbours.tolist()[:4] == sorted(card.neighbours.tolist()[:4], key=lambda r: card.neighbour_distances[
        card.neighbours.tolist().index(r)])
    # four neighbours of the predicted class are why the model erred, no evidence of a wrong label
    assert (card.neighbour_labels == 0).sum() == 4 and not card.near_duplicate.any() and not card.likely_label_error
    assert card.cam_pred.shape == card.cam_true.shape == (8, 8)
    assert card.channels.tolist()[0] == 0  # the red channel pushed "class 0" most
    assert card.near_duplicate.dtype == bool
    # with a loose threshold every neighbour is a near-duplicate; one of class 0 suffices
    loose = mistake_card(model, img, IDENTITY, true=1, logits=logits, query_features=query,
                         train_index=NeighbourIndex(train_feats), train_labels=train_labels, threshold=2.0,
                         k=2)
    assert loose.near_duplicate.all() and loose.likely_label_error
    strict = mistake_card(model, img, IDENTITY, true=1, logits=logits, query_features=query,
                          train_index=NeighbourIndex(train_feats), train_labels=train_labels, threshold=0.0,
                          k=2)
    assert not strict.near_duplicate.any() and not strict.likely_label_error
    flagged = mistake_card(model, img, IDENTITY, true=1, logits=logits, query_features=query,
                           train_index=NeighbourIndex(train_feats), train_labels=train_labels, threshold=0.0,
                           k=2, flags=("suspected label error",))
    assert flagged.likely_label_error and flagged.flags == ("suspected label error",)
