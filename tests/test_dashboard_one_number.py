"""One number per fact (issue 26): the same image prints the same single-view probabilities on
the Neighbours, Mistakes and Attributions pages, every accuracy says what it was measured on, and
the validation split is called so. AppTests on the shipped checkpoints and their demo galleries."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from cnnviz.basis import views_text
from cnnviz.checkpoints import checkpoint_data, load_checkpoint
from cnnviz.class_names import class_display_names
from cnnviz.inspect.features import cached_features
from cnnviz.inspect.mistakes import rank_mistakes
from cnnviz.predict import predict_images
from cnnviz.single_view import single_view_predictions

from dashboard_fixtures import errors, markdown_table, open_page

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "checkpoints"
CIFAR, CIFAR_GALLERY = "cifar10_cnn", SHIPPED / "cifar10.gallery.zip"
SIMPSONS, SIMPSONS_GALLERY = "simpsons_cnn", SHIPPED / "simpsons.gallery.zip"
TIMEOUT = 300  # the first page computes the gallery's features (and cleanlab's checks) once


@pytest.fixture
def shipped(monkeypatch, tmp_path):
    """The dashboard sees the shipped checkpoints and no dataset but the galleries given in the URL."""
    import dashboard.state as state

    (tmp_path / "no-data").mkdir()
    monkeypatch.setenv("CNNVIZ_CHECKPOINTS", str(SHIPPED))
    monkeypatch.setenv("CNNVIZ_DATA", str(tmp_path / "no-data"))
    monkeypatch.setattr(state, "CHECKPOINT_DIR", SHIPPED)


def _page(page: str, model: str, gallery: Path, **query: str):
    at = open_page(page, {"model": model, "data": str(gallery), **query}, timeout=TIMEOUT)
    assert not at.exception, errors(at)
    return at


def _card_top(at) -> str:
    """The mistake card's caption under its image: "<class> <p> · <class> <p> · <class> <p>"."""
    under = [c for im in at.image for c in im.captions]  # the caption of the card's image
    (line,) = [c for c in under if re.fullmatch(r"(.+ \d+\.\d%)( · .+ \d+\.\d%){2}", c)]
    return line


def test_neighbours_mistakes_and_attributions_print_one_probability(shipped):
    ckpt = load_checkpoint(SHIPPED / f"{CIFAR}.json")
    ds = checkpoint_data(ckpt.meta, CIFAR_GALLERY, "test")
    names = class_display_names(ckpt.meta.classes)
    fs = cached_features(ckpt, ds, "test")
    worst = rank_mistakes(fs.labels, fs.logits, "confidence", ids=fs.ids)[0].index  # first thumbnail
    k = len(names)
    for i in (0, worst):
        # computed afresh for the one image, not read from the cache the pages use
        probs = single_view_predictions(ckpt, ds.images[[i]], [ds.ids[i]]).probs[0]
        top = np.argsort(-probs)[:5]
        expected = [{"class": names[c], "probability": f"{probs[c]:.1%}"} for c in top]
        if i == 0:  # the image: airplane, 82.1% on one view, 81.1% with the checkpoint's TTA
            assert names[top[0]] == "airplane" and int(ds.labels[0]) == top[0]
            tta = predict_images(ckpt, ds.images[[0]], ["0"]).probs[0]
            assert f"{tta[top[0]]:.1%}" != expected[0]["probability"]

        nn = _page("neighbours", CIFAR, CIFAR_GALLERY, img=str(i))
        assert [{"class": r["top predictions"], "probability": r["probability"]}
                for r in markdown_table(nn, "top predictions")] == expected
        assert any(c.value.startswith("Top-5 probabilities of a single view (no test-time augmentation), as on "
                                      "the Mistakes and Attributions pages.") for c in nn.caption)

        attr = _page("attributions", CIFAR, CIFAR_GALLERY, img=str(i))
        assert markdown_table(attr, "class") == expected
        assert ("Probabilities of a single view (no test-time augmentation), as on the Neighbours and Mistakes "
                "pages.") in [c.value for c in attr.caption]

        mistakes = _page("mistakes", CIFAR, CIFAR_GALLERY, true=str(k), pred=str(k), card=str(i))
        assert _card_top(mistakes) == " · ".join(f"{e['class']} {e['probability']}" for e in expected[:3])
        if i == worst:  # the thumbnails print whole percents
            first = [c.value.split("  \n")[0] for c in mistakes.caption]  # cleanlab's flags follow a line break
            assert " · ".join(f"{names[c]} {probs[c]:.0%}" for c in top[:3]) in first
            assert f"#{i} · {probs[top[0]]:.0%}" in [c for im in mistakes.image for c in im.captions]


def _one_view_accuracy(model: str, gallery, split: str):
    """``(accuracy, images)`` of one view of the gallery's ``split`` under the shipped ``model``."""
    ckpt = load_checkpoint(SHIPPED / f"{model}.json")
    ds = checkpoint_data(ckpt.meta, gallery, split)
    fs = cached_features(ckpt, ds, split)
    return float((fs.logits.argmax(1) == fs.labels).mean()), ds


def test_accuracy_captions_state_their_basis(shipped):
    acc, ds = _one_view_accuracy(CIFAR, CIFAR_GALLERY, "test")
    mistakes = _page("mistakes", CIFAR, CIFAR_GALLERY)
    assert (f"Accuracy {acc:.1%} on 1,000 test images of the demo gallery (of the 10,000), one view each (no "
            "test-time augmentation). Rows are the true class, columns the prediction; click a cell (or a pair) "
            "to see its images below.") in [c.value for c in mistakes.caption]

    metrics = json.loads((SHIPPED / f"{CIFAR}.json").read_text())["metrics"]
    model = _page("model", CIFAR, CIFAR_GALLERY)
    shown = {m.label: m.value for m in model.metric}
    assert shown["Validation accuracy"] == f"{metrics['val']['accuracy']:.2%}" == "91.40%"
    assert shown["Test accuracy"] == f"{metrics['test']['accuracy']:.2%}" == "90.88%"
    tta = "with test-time augmentation (flip_translate: the image, its mirror and two shifted copies)"
    assert views_text("flip_translate") == tta
    assert (f"Scored when training ended: accuracy 91.40% on 2,000 validation images of the full dataset, {tta}; "
            f"accuracy 90.88% on 10,000 test images of the full dataset, {tta}. The Mistakes page counts one view "
            "of each image of the data chosen in the sidebar (with the demo gallery, a sample), so its accuracy "
            "can differ.") in [c.value for c in model.caption]


def test_the_validation_split_is_called_validation(shipped):
    acc, ds = _one_view_accuracy(SIMPSONS, SIMPSONS_GALLERY, "val")
    mistakes = _page("mistakes", SIMPSONS, SIMPSONS_GALLERY)
    assert any(c.value.startswith(f"Accuracy {acc:.1%} on {len(ds):,} validation images of the demo gallery "
                                  "(of the 2,348), one view each (no test-time augmentation).")
               for c in mistakes.caption)
    assert mistakes.radio(key="m_split").options == ["held-out validation images (out-of-sample)",
                                                     "training images (in-sample)"]
    nn = _page("neighbours", SIMPSONS, SIMPSONS_GALLERY, img="0")
    assert nn.button(key="nn_random").proto.label == "Random validation image"
    assert "Map of the validation split" in [h.value for h in nn.subheader]
    texts = [e.value for e in (*nn.caption, *nn.subheader, *nn.markdown)]
    assert not [t for t in texts if "test image" in t.lower()], texts
    first = class_display_names(ds.classes)[int(ds.labels[0])]
    assert "_" not in first
    assert nn.image[0].proto.imgs[0].caption == f"validation #0: {ds.ids[0]} (true class: {first})"
