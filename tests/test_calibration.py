"""Temperature scaling against known answers."""

from __future__ import annotations

import numpy as np
import pytest

from cnnviz.calibration import fit_temperature


def test_the_temperature_that_made_the_labels_is_found():
    # labels drawn from softmax(base / 2): the best T for the base logits is 2
    rng = np.random.default_rng(0)
    base = rng.normal(0, 4, (20000, 5))
    p = np.exp(base / 2 - (base / 2).max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    labels = np.array([rng.choice(5, p=row) for row in p])
    t = fit_temperature(base, labels)
    assert t.value == pytest.approx(2.0, rel=0.05)
    assert t.nll_after < t.nll_before and t.n == 20000
    probs = t.probs(base)
    np.testing.assert_allclose(probs.sum(1), 1.0)
    assert (probs.argmax(1) == base.argmax(1)).all()  # the order of the classes never changes


def test_underconfident_logits_get_sharpened_and_unlabelled_images_are_left_out():
    logits = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0], [5.0, 0.0]])
    labels = np.array([0, 1, 0, 1, -1])  # always right: the NLL falls as T falls
    t = fit_temperature(logits, labels, lo=0.1, hi=10)
    assert t.value == pytest.approx(0.1, rel=1e-3) and t.n == 4
    with pytest.raises(ValueError, match="at least 2 labelled images"):
        fit_temperature(logits[:1], labels[:1])
