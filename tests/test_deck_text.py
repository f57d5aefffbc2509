"""The deck and the loose figures at slide quality: every text drawn at its final size, at least
20 px high, inside its slide and overlapping no other; full class names (long ones wrapped, never
cut); loose figures at least 1,200 px wide. A tiny untrained checkpoint over three long names."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from cnnviz.checkpoints import CheckpointMeta, checkpoint_data, load_checkpoint, save_checkpoint
from cnnviz.data import Preprocess
from cnnviz.inputs import Normalization
from cnnviz.inspect.units import cached_unit_examples
from cnnviz.lecture import build_lecture_deck, default_feature_layer, write_lecture_figures
from cnnviz.models import get_model
from conftest import write_jpeg

LONG = {"abraham_grampa_simpson": (220, 40, 40), "apu_nahasapeemapetilon": (40, 190, 70),
        "charles_montgomery_burns": (30, 60, 220)}
KW = dict(width=0.125, fc6=16, fc7=32)


@pytest.fixture
def long_names(tmp_path):
    for split, n in (("train", 9), ("test", 4)):
        for cls, colour in LONG.items():
            for i in range(n):
                shade = tuple(min(255, c + 6 * i) for c in colour)
                write_jpeg(tmp_path / "data" / split / cls / f"{i:03d}.jpg", shade, (24, 24))
    torch.manual_seed(0)
    model = get_model("alexnet_style", 3, 32, **KW)
    w = model.first_conv.weight.detach()
    meta = CheckpointMeta("alexnet_style", sorted(LONG), Preprocess(32), Normalization((0.5,) * 3, (0.25,) * 3),
                          arch_kwargs=KW)
    path = save_checkpoint(tmp_path / "ck" / "long", model, meta, {0: {"features.0.weight": torch.randn_like(w)}})
    return load_checkpoint(path), tmp_path / "data"


def test_every_text_on_every_slide_is_at_least_20_px_and_names_are_whole(long_names):
    ckpt, data = long_names
    deck = build_lecture_deck(ckpt, data, k=6)
    assert [s.step.name for s in deck.slides] == ["kernels", "kernels_over_epochs", "feature_maps", "receptive_field",
                                                  "convolution", "neighbours", "mistakes", "unit"]
    for slide in deck.slides:
        assert slide.image.size == (1600, 900) and slide.texts, slide.step.name
        grey = np.asarray(slide.image.convert("L"))
        for t in slide.texts:
            left, top, right, bottom = t.box
            assert t.size >= 20 and bottom - top >= 20, (slide.step.name, t)
            assert 0 <= left < right <= 1600 and 0 <= top < bottom <= 900, (slide.step.name, t)
            assert (grey[top:bottom, left:right] < 200).any(), (slide.step.name, t)  # drawn where it says
        boxes = [t.box for t in slide.texts]
        for i, p in enumerate(boxes):  # no line overlaps another
            for q in boxes[i + 1:]:
                assert p[2] <= q[0] or q[2] <= p[0] or p[3] <= q[1] or q[3] <= p[1], (slide.step.name, p, q)
        for block in {t.block for t in slide.texts}:  # the lines of a wrapped text hold all of it
            joined = "".join(t.text for t in slide.texts if t.block == block).replace(" ", "")
            whole = block.replace(" ", "")  # (a text drawn several times: each time whole)
            assert joined and joined == whole * (len(joined) // len(whole)), (slide.step.name, block)
    by_name = {s.step.name: s for s in deck.slides}
    for name in ("neighbours", "mistakes"):
        blocks = " | ".join(t.block for t in by_name[name].texts)
        for cls in LONG:
            assert cls.replace("_", " ") in blocks, (name, cls)
    # captions say what this model's pictures show, from measurements
    first = by_name["kernels"].texts
    assert any("kernels of 5x5" in t.block for t in first) and not any("edges, stripes" in t.block for t in first)
    assert any("share the query's class" in t.block for t in by_name["neighbours"].texts)
    assert any(t.block.startswith("Accuracy ") and " on 12 test images of the full dataset, one view each (" in t.block
               for t in by_name["mistakes"].texts)  # its basis: which images, how seen
    # the unit slide names the channel the Units page would pick, and how many of its top 9 share a class
    layer = default_feature_layer(ckpt)
    train = checkpoint_data(ckpt.meta, data, "train")
    ex = cached_unit_examples(ckpt, train, "train", layer)
    channel, cls, count = ex.purest(train.labels, 9)
    said = (f"{layer}, channel {channel} of {ex.channels}: {count} of the 9 training images it fires on most are "
            f"{sorted(LONG)[cls].replace('_', ' ')}.")
    assert any(t.block.startswith(said) for t in by_name["unit"].texts), said


def test_loose_figures_are_at_least_1200_px_wide(long_names, tmp_path):
    ckpt, data = long_names
    res = write_lecture_figures(ckpt, tmp_path / "figs", data, k=6)
    assert set(res.png) == {"kernels", "kernels_over_epochs", "feature_maps", "neighbours", "confusion"}
    for name, path in res.png.items():
        assert Image.open(path).width >= 1200, name
