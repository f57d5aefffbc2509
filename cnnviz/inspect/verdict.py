"""The mistake card's verdict: a few plain sentences built only from what was measured on the
image (the margin, its nearest training images, the contrastive evidence and where it lies,
the label-issue evidence), so a student reads why, not only what."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .contrast import RANDOM
from .mistakes import MistakeCard

UNSURE = 0.10  # top two probabilities closer than this: the model was unsure
CONFIDENT = 0.80
MIDDLE, EDGES = 0.50, 0.25  # the middle is a quarter of the picture: a map spread evenly puts 25% there

MAP_NAMES = {"contrast": "the contrastive map", "pred": "Grad-CAM of {pred}", "true": "Grad-CAM of {true}",
             RANDOM: "a random order"}  # pixels in each map's order, highest first


def percent(v: float) -> str:
    """A share as the verdict writes it: one decimal under 10% (``"0.4%"``), whole above."""
    return f"{v:.1%}" if v < 0.1 else f"{v:.0%}"


def card_verdict(card: MistakeCard, names: Sequence[str]) -> list[str]:
    """The verdict of a mistake card, one sentence per fact: how sure the model was, what its
    nearest training images are, which map explains the choice (by deletion on the logit
    difference) and where its evidence lies, and whether the label itself is in doubt."""
    pred, true = names[card.pred], names[card.true]
    (c0, p0), (c1, p1) = card.top[0], card.top[1] if len(card.top) > 1 else (card.true, card.true_prob)
    if card.pred == card.true:  # a card opened on an image classified right: nothing to explain away
        k = len(card.neighbour_labels)
        n = int((card.neighbour_labels == card.pred).sum())
        return [f"Right: {pred} at {p0:.1%}" + (f", {names[c1]} next at {p1:.1%}." if len(card.top) > 1 else "."),
                f"{n} of its {k} nearest training images are {pred}."]
    if p0 - p1 < UNSURE:
        out = [f"Unsure: {names[c0]} {p0:.1%} vs {names[c1]} {p1:.1%}."]
    elif p0 >= CONFIDENT:
        out = [f"Confident and wrong: {pred} at {p0:.1%}, {true} only {card.true_prob:.1%}."]
    else:
        out = [f"{pred} {p0:.1%}, well ahead of {true} {card.true_prob:.1%}."]
    k = len(card.neighbour_labels)
    n_pred = int((card.neighbour_labels == card.pred).sum())
    n_true = int((card.neighbour_labels == card.true).sum())
    near = f"{n_pred} of its {k} nearest training images are {pred}" + (f", {n_true} {true}" if n_true else "")
    out.append(near + (": to the model it looks like them." if n_pred > k / 2 else "."))
    ev = card.contrast
    if ev is not None and ev.best is not None:
        label = {m: t.format(pred=pred, true=true) for m, t in MAP_NAMES.items()}
        f = ev.flip
        tied = [m for m in f if m != RANDOM and np.isfinite(f[m]) and f[m] - f[ev.best] < ev.step]
        others = ", ".join(f"{label[m]} {percent(f[m])}" if np.isfinite(f[m]) else f"{label[m]} never"
                           for m in f if m != ev.best)
        if len(tied) > 1:
            amount = f"less than {percent(ev.step)}" if f[ev.best] < ev.step else f"about {percent(f[ev.best])}"
            out.append(f"The lead of {pred} over {true} is thin: deleting {amount} of the pixels "
                       f"takes it, whichever of {', '.join(label[m] for m in tied)} orders them (a random order: "
                       f"{percent(f[RANDOM]) if np.isfinite(f[RANDOM]) else 'never'}); no map explains the choice "
                       "better than the others.")
        else:
            out.append(f"Deleting the {percent(f[ev.best])} of the pixels that {label[ev.best]} ranks first takes the "
                       f"lead from {pred} over {true} (other orders: {others}): {label[ev.best]} explains the "
                       "choice best.")
        if np.isfinite(ev.centre):
            if ev.centre >= MIDDLE:
                out.append(f"What tipped it to {pred} lies in the middle of the picture ({ev.centre:.0%} of the "
                           "contrastive map), where the character usually is.")
            elif ev.centre < EDGES:
                out.append(f"What tipped it to {pred} lies mostly near the edges ({1 - ev.centre:.0%} of the "
                           "contrastive map outside the middle): the background more than the character.")
            else:
                out.append(f"What tipped it to {pred} is spread over the picture ({ev.centre:.0%} of the "
                           "contrastive map in the middle).")
    elif ev is not None and ev.flip and all(np.isinf(v) for v in ev.flip.values()):
        out.append(f"Deleting pixels in any order never takes the lead from {pred}: the choice rests on the "
                   "picture as a whole.")
    dup = [int(lab) for lab, n in zip(card.neighbour_labels, card.near_duplicate) if n and int(lab) != card.true]
    doubts = []
    if "suspected label error" in card.flags:
        doubts.append("cleanlab suspects its label")
    if dup:
        doubts.append(f"a near-duplicate training image is labelled {names[dup[0]]}")
    out.append(("The label is worth a second look: " + " and ".join(doubts) + ".") if doubts else
               "No evidence of a wrong label (no cleanlab flag, no near-duplicate with another label).")
    return out
