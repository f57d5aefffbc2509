"""Colour augmentation (``cnnviz.inputs.random_colour``) and its training options."""

import numpy as np
import pytest
import torch

from cnnviz.inputs import Normalization, random_colour, to_input
from cnnviz.train.config import ConfigError, TrainConfig

NORM = Normalization((0.5, 0.4, 0.3), (0.2, 0.25, 0.3))


def _pixels(x: torch.Tensor) -> torch.Tensor:
    """Normalised ``(N, 3, H, W)`` back to 0-255 RGB."""
    mean = torch.tensor(NORM.mean).view(1, 3, 1, 1) * 255
    std = torch.tensor(NORM.std).view(1, 3, 1, 1) * 255
    return x * std + mean


def _orange(n: int = 6) -> torch.Tensor:
    img = np.zeros((n, 5, 5, 3), np.uint8)
    img[..., 0], img[..., 1], img[..., 2] = 200, 100, 50
    return to_input(img, NORM)


def test_off_returns_the_same_tensor_and_draws_nothing() -> None:
    x, g = _orange(), torch.Generator().manual_seed(0)
    state = g.get_state()
    assert random_colour(x, NORM, 0.0, 0.0, g) is x
    assert torch.equal(g.get_state(), state)


def test_gray_prob_one_gives_the_luminance_in_every_channel() -> None:
    x = _orange()
    out = _pixels(random_colour(x, NORM, 0.0, 1.0, torch.Generator().manual_seed(1)))
    luma = 0.299 * 200 + 0.587 * 100 + 0.114 * 50  # 124.2
    assert torch.allclose(out, torch.full_like(out, luma), atol=1e-3)
    assert torch.equal(x, _orange())  # the input is not changed


def test_saturation_factor_scales_the_distance_from_grey() -> None:
    x = _orange(200)
    out = _pixels(random_colour(x, NORM, 0.4, 0.0, torch.Generator().manual_seed(2)))
    luma = 124.2
    # red's distance from grey, per image, relative to the original's (75.8); clipped at 255
    factor = (out[:, 0, 0, 0] - luma) / (200 - luma)
    assert float(factor.min()) >= 0.6 - 1e-4 and float(factor.max()) <= 1.4 + 1e-4
    assert float(factor.std()) > 0.1  # a factor per image, not one per batch
    # every channel moved by the same factor: blue 50 -> luma + f * (50 - luma)
    assert torch.allclose(out[:, 2, 0, 0], luma + factor * (50 - luma), atol=1e-2)


def test_clipped_to_the_pixel_range() -> None:
    img = np.zeros((50, 2, 2, 3), np.uint8)
    img[..., 0] = 255
    out = _pixels(random_colour(to_input(img, NORM), NORM, 1.0, 0.0, torch.Generator().manual_seed(3)))
    assert float(out.min()) >= -1e-3 and float(out.max()) <= 255 + 1e-3


def test_gray_prob_makes_about_that_share_grey() -> None:
    out = _pixels(random_colour(_orange(2000), NORM, 0.0, 0.25, torch.Generator().manual_seed(4)))
    grey = (out[:, 0, 0, 0] - out[:, 2, 0, 0]).abs() < 1e-3
    assert 0.21 < float(grey.float().mean()) < 0.29


def test_options_are_checked() -> None:
    with pytest.raises(ConfigError, match=r"gray_prob must be a number from 0 to 1 \(got 1.5\)"):
        TrainConfig(gray_prob=1.5)
    with pytest.raises(ConfigError, match=r"saturation must be a number from 0 to 1 \(got -0.1\)"):
        TrainConfig(saturation=-0.1)
    cfg = TrainConfig(saturation=0.4, gray_prob=0.1)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


def test_fit_with_colour_changes_learns_and_is_reproducible() -> None:
    from cnnviz.train import fit
    from test_train_eval import config, separable, tiny_model

    ds = separable()
    norm = Normalization.fit(ds.images)
    cfg = config(epochs=8, saturation=0.4, gray_prob=0.2)
    a = fit(tiny_model(0), ds, None, cfg, norm, progress=False)
    b = fit(tiny_model(0), ds, None, cfg, norm, progress=False)
    plain = fit(tiny_model(0), ds, None, config(epochs=8), norm, progress=False)
    assert [r.train_loss for r in a.history] == [r.train_loss for r in b.history]
    assert [r.train_loss for r in a.history] != [r.train_loss for r in plain.history]
    assert a.history[0].train_loss > a.history[-1].train_loss
