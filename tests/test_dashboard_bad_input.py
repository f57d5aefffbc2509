"""The dashboard answers bad input with a message instead of a traceback. (Eight sessions at
once: tests/test_browser.py, against a real server; AppTest sessions cannot run in parallel.)"""

from __future__ import annotations

import shutil

import pytest

from dashboard_fixtures import (  # noqa: F401 (fixtures)
    dashboard_env, errors, open_page, tiny_dashboard,
)

PAGES = ["model", "filters", "feature_maps", "receptive_fields", "convolution", "neighbours", "mistakes",
         "attributions", "predict"]
ODD = {"img": "²", "k": "١٢", "ch": "-1", "pos": "-3", "py": "²", "px": "1e9", "order": "loss", "split": "..",
       "card": "²", "uy": "99999999999999999999999", "ux": "3.5", "filter": "²",
       "true": "²", "pred": "0x1", "target": "²", "layer": "no_such_layer", "metric": "manhattan",
       "proj": "bogus", "norm": "yes", "model": "../../etc/passwd"}


@pytest.mark.parametrize("page", PAGES)
def test_odd_url_values_fall_back_to_defaults(dashboard_env, page):
    at = open_page(page, ODD)
    assert not at.exception, errors(at)
    assert not at.error, errors(at)


def test_a_broken_checkpoint_that_sorts_first_does_not_break_every_page(dashboard_env, tmp_path, monkeypatch):
    import dashboard.state as state

    ckdir = tmp_path / "checkpoints"
    shutil.copytree(dashboard_env.checkpoints, ckdir)
    broken = (ckdir / "tiny.json").read_text().replace('"arch": "alexnet_style"', '"arch": "lenet"')
    (ckdir / "aaa_broken.json").write_text(broken)
    shutil.copy(ckdir / "tiny.safetensors", ckdir / "aaa_broken.safetensors")
    monkeypatch.setattr(state, "CHECKPOINT_DIR", ckdir)

    at = open_page("filters")
    assert not at.exception and not at.error, errors(at)
    assert at.sidebar.selectbox[0].value == "tiny"
    at.sidebar.selectbox[0].select("aaa_broken").run()
    assert not at.exception, errors(at)
    assert [e.value for e in at.error] == [
        f"Cannot load aaa_broken: {ckdir / 'aaa_broken.json'}: unknown model 'lenet'; known models: "
        + ", ".join(__import__("cnnviz.models", fromlist=["list_models"]).list_models())]


def test_a_system_folder_as_the_dataset_gets_a_message(dashboard_env, tmp_path):
    odd = tmp_path / "etc_like"
    odd.mkdir()
    (odd / "passwd").write_text("root:x:0:0\n")
    (odd / "dangling").symlink_to(tmp_path / "nowhere")
    at = open_page("feature_maps", {"data": str(odd)})
    assert not at.exception, errors(at)
    assert at.error and all("Cannot load the" in e.value for e in at.error), errors(at)
