"""AppTests of the Neighbours, Mistakes and Predict pages on a tiny checkpoint and class tree
(built once per session by ``dashboard_fixtures``)."""

from __future__ import annotations


import pytest

from cnnviz.checkpoints import checkpoint_data, load_checkpoint
from cnnviz.inspect.confusion import confusion_from_logits, most_confused_pairs
from cnnviz.inspect.features import cached_features

from conftest import COLORS
from dashboard_fixtures import (  # noqa: F401 (fixtures)
    chart_titled, charts, csv_rows, dashboard_env, dashboard_env_no_data, downloads, encoded, errors, figures,
    markdown_table, open_page, tiny_dashboard, title,
)


def pictures(at) -> int:
    """How many pictures the page shows (an ``st.image`` of a list counts each)."""
    return sum(len(im.proto.imgs) for im in at.image)


@pytest.mark.parametrize("page", ["neighbours", "mistakes"])
def test_page_without_data_says_how_to_get_it(dashboard_env_no_data, page):
    at = open_page(page)
    assert not at.exception, errors(at)
    assert any("needs the dataset" in i.value for i in at.info)
    assert not figures(at)


def test_neighbours_k_metric_projection_and_purity(dashboard_env):
    at = open_page("neighbours")
    assert not at.exception, errors(at)
    assert not figures(at)  # pictures and Vega-Lite charts: no Plotly to load
    k = at.slider(key="nn_k").value
    assert pictures(at) == 1 + 2 * k + 1  # query + k feature + k pixel neighbours, the five queries
    assert markdown_table(at, "top predictions")[0]["probability"].endswith("%")
    assert chart_titled(at, "PCA of ").frame()["row"].tolist() == list(range(2 * len(dashboard_env.classes)))
    assert at.query_params["img"].isdigit()

    at.slider(key="nn_k").set_value(2).run()
    assert not at.exception, errors(at)
    assert pictures(at) == 6
    assert at.query_params["k"] == "2"

    purity = chart_titled(at, "-nearest-neighbour purity by class")  # features beside raw pixels, by default
    spaces = list(dict.fromkeys(purity.frame(0)["space"]))
    assert [s.split(" (")[0] for s in spaces] == ["penultimate features", "raw pixels"]
    at.toggle(key="nn_pix").set_value(False).run()
    assert not at.exception, errors(at)
    assert chart_titled(at, "-nearest-neighbour purity by class").frame(0)["space"].str.startswith("penultimate").all()

    at.selectbox(key="nn_metric").set_value("cosine").run()
    assert not at.exception, errors(at)
    assert "cosine" in chart_titled(at, "-nearest-neighbour purity by class").title

    at.radio(key="nn_proj").set_value("tsne").run()
    assert not at.exception, errors(at)
    chart_titled(at, "t-SNE of ")
    at.radio(key="nn_proj").set_value("umap").run()
    assert not at.exception, errors(at)
    assert any(c.title.split(" of ")[0] in ("UMAP", "Spectral embedding") for c in charts(at).values())


def test_neighbours_shows_five_queries_as_in_the_paper(dashboard_env):
    at = open_page("neighbours", {"q5": "3"})
    assert not at.exception, errors(at)
    (caption,) = [c.value for c in at.caption if "nearest training images in the network's features" in c.value]
    same = int(caption.split("features: ")[1].split(" of ")[0])
    assert f" of {5 * 6} share the query's class" in caption and 0 <= same <= 30
    assert at.query_params["q5"] == "3"
    shown = caption.split("Test images ")[1].split(" (left)")[0]
    at.button(key="nn_q5_new").click().run()
    assert not at.exception, errors(at)
    assert at.query_params["q5"] != "3"
    again = open_page("neighbours", {"q5": "3"})  # the same link, the same rows
    assert any(f"Test images {shown} (left)" in c.value for c in again.caption)


def test_neighbours_random_image_and_upload(dashboard_env):
    at = open_page("neighbours", {"img": "0"})
    assert not at.exception, errors(at)
    n_test = 2 * len(dashboard_env.classes)
    for _ in range(3):
        at.button(key="nn_random").click().run()
        assert not at.exception, errors(at)
        img = at.query_params["img"]
        assert img.isdigit() and int(img) < n_test
        # the picker follows the URL: its class is the image's class
        assert at.selectbox(key="nn_cls").value == int(img) // 2  # 2 test images per class, sorted by class

    at.radio(key="nn_src").set_value("upload").run()
    at.file_uploader(key="nn_upload").set_value(("mine.png", encoded(COLORS["green"]), "image/png")).run()
    assert not at.exception, errors(at)
    assert pictures(at) == 1 + 2 * at.slider(key="nn_k").value + 1  # and the five queries
    assert any(c.startswith("mine.png") for im in at.image for c in im.captions)


def test_mistakes_cells_show_their_images(dashboard_env):
    ckpt = load_checkpoint(dashboard_env.checkpoints / "tiny.json")
    ds = checkpoint_data(ckpt.meta, dashboard_env.tree, "test")
    fs = cached_features(ckpt, ds, "test")
    classes = ckpt.meta.classes
    counts = confusion_from_logits(fs.labels, fs.logits, classes).counts

    at = open_page("mistakes")
    assert not at.exception, errors(at)
    assert not figures(at)  # Vega-Lite charts: no Plotly to load
    heat = chart_titled(at, "confusion (counts)")
    cells = heat.frame(0)
    assert len(cells) == len(classes) ** 2 and cells["images"].sum() == counts.sum()
    assert all(cells.loc[cells["true"].eq(t) & cells["pred"].eq(p), "images"].item() == counts[t, p]
               for t in range(len(classes)) for p in range(len(classes)))
    assert [p["name"] for p in heat.spec["params"]] == ["cell"]  # a click selects a cell
    assert set(chart_titled(at, "precision, recall and F1").frame(0)["metric"]) == {"precision", "recall", "F1"}

    cells = [(t, p) for t in range(len(classes)) for p in range(len(classes))]
    a = next(c for c in cells if counts[c] > 0)
    b = next(c for c in cells if counts[c] != counts[a])
    for t, p in (a, b):
        at.selectbox(key="m_true").set_value(t)
        at.selectbox(key="m_pred").set_value(p)
        at.run()
        assert not at.exception, errors(at)
        assert (at.query_params["true"], at.query_params["pred"]) == (str(t), str(p))
        shown = [int(c.split(" ")[0].lstrip("#")) for im in at.image for c in im.captions]  # "#<index> · <conf>"
        assert len(shown) == counts[t, p]
        assert all(ds.labels[i] == t and fs.logits[i].argmax() == p for i in shown)
        links = [el.proto for el in at.get("page_link")]
        assert len(links) == 2 * counts[t, p]  # attribution and neighbours per image
        for att, nb, i in zip(links[0::2], links[1::2], shown):
            assert (att.label, nb.label) == ("Attribution", "Neighbours")
            assert f"img={i}" in nb.query_string and "model=tiny" in nb.query_string
            assert f"img={i}&target={p}" in att.query_string
        assert f"**{counts[t, p]}**" in " ".join(m.value for m in at.markdown)

    at.radio(key="m_norm").set_value("row-normalised").run()
    assert not at.exception, errors(at)
    chart_titled(at, "confusion (row-normalised)")


def test_mistakes_pair_buttons_pick_their_cell(dashboard_env):
    ckpt = load_checkpoint(dashboard_env.checkpoints / "tiny.json")
    fs = cached_features(ckpt, checkpoint_data(ckpt.meta, dashboard_env.tree, "test"), "test")
    pairs = most_confused_pairs(confusion_from_logits(fs.labels, fs.logits, ckpt.meta.classes), n=15)
    at = open_page("mistakes")
    pills = at.button_group(key="m_pair")
    assert len(pills.options) == len(pairs) >= 1
    last = pairs[-1]
    at.button_group(key="m_pair").set_value(len(pairs) - 1).run()
    assert not at.exception, errors(at)
    assert (at.selectbox(key="m_true").value, at.selectbox(key="m_pred").value) == (last.true, last.pred)
    assert (at.query_params["true"], at.query_params["pred"]) == (str(last.true), str(last.pred))
    assert at.button_group(key="m_pair").value is None  # let go: the same pair can be clicked again


def test_mistakes_cell_from_url(dashboard_env):
    at = open_page("mistakes", {"true": "1", "pred": "2"})
    assert not at.exception, errors(at)
    assert (at.selectbox(key="m_true").value, at.selectbox(key="m_pred").value) == (1, 2)


def test_predict_opens_on_a_sample_of_held_out_images(dashboard_env, downloads):
    at = open_page("predict")
    assert not at.exception, errors(at)
    assert at.radio(key="p_src").value == "sample"
    table = at.dataframe[0].value
    assert len(table) == min(12, len(list((dashboard_env.tree / "test").rglob("*.jpg"))))
    assert set(table["true class"]) <= set(dashboard_env.classes)
    right = int((table["character"] == table["true class"]).sum())
    assert any(c.value.startswith(f"{right} of {len(table)} right") for c in at.caption), [c.value for c in at.caption]


def test_predict_uploads_give_competition_csv(dashboard_env, downloads):
    at = open_page("predict")
    assert not at.exception, errors(at)
    at.radio(key="p_src").set_value("upload").run()
    at.file_uploader(key="p_upload").set_value([
        ("17.jpg", encoded(COLORS["red"], "JPEG"), "image/jpeg"),
        ("3.png", encoded(COLORS["blue"]), "image/png"),
        ("notes.jpg", b"this is not an image", "image/jpeg"),
    ]).run()
    assert not at.exception, errors(at)
    assert any("notes.jpg" in e.value for e in at.error)
    rows = csv_rows(downloads)
    assert rows[0] == ["id", "character"]
    assert sorted(r[0] for r in rows[1:]) == ["17", "3"]
    assert all(r[1] in dashboard_env.classes for r in rows[1:])


def test_predict_folder_gives_competition_csv(dashboard_env, downloads):
    folder = dashboard_env.tree / "test"
    at = open_page("predict", {"folder": str(folder)})
    assert not at.exception, errors(at)
    rows = csv_rows(downloads)
    assert rows[0] == ["id", "character"]
    assert len(rows) - 1 == len(list(folder.rglob("*.jpg")))
    assert all(r[1] in dashboard_env.classes for r in rows[1:])

    at.text_input(key="p_path").set_value(str(folder / "missing")).run()
    assert not at.exception, errors(at)
    assert any("does not exist" in e.value for e in at.error)


def test_neighbours_page_opens_the_image_of_a_mistakes_link(dashboard_env):
    at = open_page("neighbours", {"img": "4", "model": "tiny"})
    assert not at.exception, errors(at)
    assert at.image[0].proto.imgs[0].caption.startswith("test #4:")  # the query image
