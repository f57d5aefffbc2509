"""The mistake card's contrastive map and verdict on a hand-made model whose answer is known:
class 0's logit is mean red + 3 x mean green, class 1's is 3 x mean green, so the lead of 0 over
1 is the mean red alone. A red square and a green square: the contrastive map must find the red
square and nothing else, deletion on the logit difference must say it explains the choice, and
the verdict must say so in words, with the margin and where the evidence lies."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from cnnviz.inputs import Normalization
from cnnviz.inspect.contrast import RANDOM, centre_share, contrastive_grad_cam, flip_fraction
from cnnviz.inspect.mistakes import mistake_card
from cnnviz.inspect.neighbours import NeighbourIndex
from cnnviz.inspect.verdict import card_verdict, percent
from cnnviz.models import CNN

PLAIN = Normalization((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))  # inputs are pixel / 255
S = 20


class RedTips(CNN):
    """1x1 conv: channel 0 = red, channel 1 = green; ReLU; global mean; logits (r + 3g, 3g)."""

    def __init__(self):
        super().__init__()
        self.num_classes, self.embed_dim = 2, 2
        self.conv = nn.Conv2d(3, 2, 1, bias=False)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(2, 2, bias=False)
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.weight[0, 0] = 1.0
            self.conv.weight[1, 1] = 1.0
            self.fc.weight.copy_(torch.tensor([[1.0, 3.0], [0.0, 3.0]]))

    def embed(self, x):
        return self.relu(self.conv(x)).mean((2, 3))

    def head(self, z):
        return self.fc(z)


def picture(red_at: tuple[int, int], green_at: tuple[int, int] = (1, 1), side: int = 6) -> np.ndarray:
    img = np.zeros((S, S, 3), np.uint8)
    (ry, rx), (gy, gx) = red_at, green_at
    img[ry:ry + side, rx:rx + side, 0] = 255
    img[gy:gy + side, gx:gx + side, 1] = 255
    return img


def square_mask(at: tuple[int, int], side: int = 6) -> np.ndarray:
    m = np.zeros((S, S), bool)
    m[at[0]:at[0] + side, at[1]:at[1] + side] = True
    return m


def logits_of(model, img):
    return model(torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255)[0].detach().numpy()


def test_the_contrastive_map_is_the_red_square_alone():
    model = RedTips()
    img = picture((7, 7))
    heat = contrastive_grad_cam(model, img, PLAIN, 0, 1, "conv")
    red = square_mask((7, 7))
    assert heat.shape == (S, S) and heat.max() == pytest.approx(1.0)
    assert heat[red].min() == pytest.approx(1.0) and heat[~red].max() == pytest.approx(0.0, abs=1e-6)
    # the other way round nothing favours 1 over 0: an all-zero map
    assert contrastive_grad_cam(model, img, PLAIN, 1, 0, "conv").max() == 0.0
    assert centre_share(heat) == pytest.approx(1.0)  # rows/cols 7-12 lie inside the middle 5-14
    assert centre_share(np.ones((S, S))) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="unknown layer 'nope'"):
        contrastive_grad_cam(model, img, PLAIN, 0, 1, "nope")


def test_deletion_until_the_lead_is_gone_grades_the_maps():
    model = RedTips()
    img = picture((7, 7))
    red, green = square_mask((7, 7)).astype(float), square_mask((1, 1)).astype(float)
    flips = flip_fraction(model, img, PLAIN, 0, 1, {"red first": red, "green first": green}, steps=100)
    # the lead is the mean red: gone once the 36 red pixels of 400 are (4 pixels a step)
    assert flips["red first"] == pytest.approx(0.09)
    # green first leaves the lead whole; the rest, tied at 0, go in reading order: the red
    # square's last pixel (12, 12) is pixel 36 + 217 = 253, deleted by the step to 256 (0.64)
    assert flips["green first"] == pytest.approx(0.635, abs=0.006)
    assert flips[RANDOM] > 0.5 and set(flips) == {"red first", "green first", RANDOM}
    none = flip_fraction(model, img, PLAIN, 1, 0, {"red first": red})  # 1 is not ahead: no lead
    assert all(np.isnan(v) for v in none.values())
    # a lead that outlasts every pixel: a bias favours 0 even on the mean colour
    biased = RedTips()
    biased.fc.bias = nn.Parameter(torch.tensor([1.0, 0.0]))
    assert all(np.isinf(v) for v in flip_fraction(biased, img, PLAIN, 0, 1, {"red first": red}).values())


def card_of(img, flags=(), threshold=1e-3, train_feats=None, train_labels=None):
    model = RedTips()
    logits = logits_of(model, img)
    feats = np.asarray(model.embed(torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255)[0].detach())
    if train_feats is None:
        train_feats = np.array([[0.1, 0.14], [0.09, 0.13], [0.0, 0.1], [0.01, 0.1], [0.0, 0.2]], np.float32)
        train_labels = np.array([0, 0, 1, 1, 1])
    return mistake_card(model, img, PLAIN, true=1, logits=logits, query_features=feats,
                        train_index=NeighbourIndex(train_feats), train_labels=train_labels, threshold=threshold,
                        layer="conv", k=5, flags=flags)


def test_the_card_says_why_from_what_it_measured():
    card = card_of(picture((7, 7)))
    # logits (0.09 + 0.27, 0.27): softmax 52.2% vs 47.8%
    assert card.pred == 0 and card.true == 1
    assert card.contrast is not None and card.contrast.best == "contrast"
    assert card.contrast.lead == pytest.approx(0.09, abs=1e-6)
    flip = card.contrast.flip
    assert flip["contrast"] == pytest.approx(0.09, abs=1 / 64)  # the red square, at 64 steps of 6.25 px
    assert flip["pred"] > flip["contrast"] and flip["true"] > flip["contrast"]  # Grad-CAM of 0 favours green
    assert not card.likely_label_error  # neighbours of class 0 are no evidence of a wrong label
    names = ["bart", "lisa"]
    verdict = card_verdict(card, names)
    p0 = 1 / (1 + np.exp(-0.09))
    assert verdict[0] == f"Unsure: bart {p0:.1%} vs lisa {1 - p0:.1%}."
    assert verdict[1] == "2 of its 5 nearest training images are bart, 3 lisa."
    others = ", ".join(f"{n} {percent(flip[m])}" for m, n in [("pred", "Grad-CAM of bart"), ("true", "Grad-CAM of lisa"),
                                                         (RANDOM, "a random order")])
    assert percent(0.004) == "0.4%" and percent(0.25) == "25%"
    assert verdict[2] == (f"Deleting the {percent(flip['contrast'])} of the pixels that the contrastive map ranks first "
                          f"takes the lead from bart over lisa (other orders: {others}): the contrastive map "
                          "explains the choice best.")
    assert verdict[3] == ("What tipped it to bart lies in the middle of the picture (100% of the contrastive map), "
                          "where the character usually is.")
    assert verdict[4] == "No evidence of a wrong label (no cleanlab flag, no near-duplicate with another label)."


def test_evidence_at_the_border_and_a_doubtful_label():
    card = card_of(picture((0, 14), green_at=(14, 0)), flags=("suspected label error",))
    verdict = card_verdict(card, ["bart", "lisa"])
    # one of the red square's 36 pixels (row 5, column 14) lies in the middle (rows and columns 5-14)
    assert card.contrast.centre == pytest.approx(1 / 36)
    assert verdict[3] == ("What tipped it to bart lies mostly near the edges (97% of the contrastive map outside "
                          "the middle): the background more than the character.")
    assert verdict[4] == "The label is worth a second look: cleanlab suspects its label."
    assert card.likely_label_error
    # a near-duplicate labelled as the prediction is evidence too; its label is named
    img = picture((7, 7))
    dup = card_of(img, threshold=1e-3, train_feats=np.array([[0.09, 0.09], [0.0, 0.2], [0.0, 0.3], [0.0, 0.1],
                                                              [0.01, 0.2]], np.float32),
                  train_labels=np.array([0, 1, 1, 1, 1]))
    assert dup.near_duplicate.tolist() == [True, False, False, False, False]
    assert dup.likely_label_error
    assert card_verdict(dup, ["bart", "lisa"])[-1] == ("The label is worth a second look: a near-duplicate training "
                                                       "image is labelled bart.")


def test_a_thin_lead_that_any_order_takes_is_a_tie():
    from dataclasses import replace  # noqa: PLC0415

    card = card_of(picture((7, 7)))
    tie = replace(card, contrast=replace(card.contrast, flip={"contrast": 0.004, "pred": 0.006, "true": 0.03,
                                                              RANDOM: 0.8}))
    assert card_verdict(tie, ["bart", "lisa"])[2] == (
        "The lead of bart over lisa is thin: deleting less than 1.6% of the pixels takes it, whichever of the "
        "contrastive map, Grad-CAM of bart orders them (a random order: 80%); no map explains the choice better "
        "than the others.")
    never = replace(card, contrast=replace(card.contrast, flip={m: float("inf") for m in card.contrast.flip}))
    assert card_verdict(never, ["bart", "lisa"])[2] == (
        "Deleting pixels in any order never takes the lead from bart: the choice rests on the picture as a whole.")


def test_a_card_on_an_image_classified_right_says_so_and_nothing_more():
    model = RedTips()
    img = picture((7, 7))
    logits = logits_of(model, img)
    feats = np.array([0.09, 0.09], np.float32)
    train = np.array([[0.1, 0.14], [0.09, 0.13], [0.0, 0.1]], np.float32)
    card = mistake_card(model, img, PLAIN, true=0, logits=logits, query_features=feats,
                        train_index=NeighbourIndex(train), train_labels=np.array([0, 0, 1]), threshold=1e-6,
                        layer="conv", k=3)
    assert card.pred == card.true == 0 and card.contrast is None and not card.likely_label_error
    p0 = 1 / (1 + np.exp(-0.09))
    assert card_verdict(card, ["bart", "lisa"]) == [f"Right: bart at {p0:.1%}, lisa next at {1 - p0:.1%}.",
                                                     "2 of its 3 nearest training images are bart."]
