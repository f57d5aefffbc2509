"""Mixup and CutMix (``cnnviz.inputs.mix_batch``) and their training options."""

import pytest
import torch

from cnnviz.inputs import mix_batch
from cnnviz.train.config import ConfigError, TrainConfig


def _batch() -> torch.Tensor:
    # image i is the constant i, so every pixel says which image it came from
    return torch.arange(4, dtype=torch.float32).view(4, 1, 1, 1).expand(4, 3, 10, 10).clone()


def test_mixup_blends_each_image_with_its_partner() -> None:
    x = _batch()
    out, partner, lam = mix_batch(x, "mixup", 1.0, torch.Generator().manual_seed(3))
    assert 0 < lam < 1
    assert sorted(partner.tolist()) == [0, 1, 2, 3]
    expected = lam * torch.arange(4.0) + (1 - lam) * partner.float()
    assert torch.allclose(out[:, :, 0, 0][:, 0], expected)
    assert torch.allclose(out, expected.view(4, 1, 1, 1).expand_as(x))


def test_cutmix_lam_is_the_exact_share_of_own_pixels() -> None:
    x = _batch()
    for seed in range(20):
        out, partner, lam = mix_batch(x, "cutmix", 1.0, torch.Generator().manual_seed(seed))
        for i in range(4):
            if partner[i] == i:
                continue
            own = (out[i, 0] == i).float().mean().item()
            assert own == pytest.approx(lam)
            assert torch.all((out[i] == i) | (out[i] == partner[i]))
        assert torch.equal(x, _batch())  # the input is not changed


def test_same_generator_same_mix_and_global_rng_untouched() -> None:
    torch.manual_seed(0)
    state = torch.get_rng_state()
    a = mix_batch(_batch(), "cutmix", 0.5, torch.Generator().manual_seed(7))
    b = mix_batch(_batch(), "cutmix", 0.5, torch.Generator().manual_seed(7))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and a[2] == b[2]
    assert torch.equal(torch.get_rng_state(), state)


def test_unknown_kind_and_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match="kind must be mixup or cutmix"):
        mix_batch(_batch(), "blend", 1.0, torch.Generator())
    with pytest.raises(ConfigError, match="mix must be one of none, mixup, cutmix"):
        TrainConfig(mix="blend")
    with pytest.raises(ConfigError, match=r"mix_alpha must be a number above 0 \(got 0\)"):
        TrainConfig(mix_alpha=0.0)


def test_split_seed_keeps_the_split_and_changes_the_rest() -> None:
    assert TrainConfig(seed=3).data_seed == 3
    assert TrainConfig(seed=3, split_seed=0).data_seed == 0
    assert TrainConfig.from_dict(TrainConfig(seed=1, split_seed=0).to_dict()).split_seed == 0


@pytest.mark.parametrize("kind", ["mixup", "cutmix"])
def test_fit_with_mixing_learns_and_is_reproducible(kind: str) -> None:
    from cnnviz.inputs import Normalization
    from cnnviz.train import fit
    from test_train_eval import config, separable, tiny_model

    ds = separable()
    norm = Normalization.fit(ds.images)
    cfg = config(epochs=8, mix=kind, mix_alpha=1.0)
    a = fit(tiny_model(0), ds, None, cfg, norm, progress=False)
    b = fit(tiny_model(0), ds, None, cfg, norm, progress=False)
    plain = fit(tiny_model(0), ds, None, config(epochs=8), norm, progress=False)
    assert [r.train_loss for r in a.history] == [r.train_loss for r in b.history]
    assert [r.train_loss for r in a.history] != [r.train_loss for r in plain.history]
    assert a.history[0].train_loss > a.history[-1].train_loss
