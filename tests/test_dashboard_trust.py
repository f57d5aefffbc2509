"""AppTests of the Attributions page's "Can I trust this?" panel on the tiny checkpoint of
``dashboard_fixtures``: faithfulness for the image, the randomisation sanity check on a button,
and both checks over held-out images; the shared model unchanged after all of it."""

from __future__ import annotations

import base64

import numpy as np
import torch

from cnnviz.inspect.attribution import METHODS, default_grad_cam_layer
from cnnviz.inspect.sanity import randomisation_layers

from dashboard_fixtures import charts, dashboard_env, errors, figures, open_page, tiny_dashboard  # noqa: F401 (fixtures)


def values(v) -> np.ndarray:
    """A Plotly JSON array: a plain list, or numpy's typed form ``{dtype, bdata}``."""
    if isinstance(v, dict):
        return np.frombuffer(base64.b64decode(v["bdata"]), np.dtype(v["dtype"]))
    return np.asarray(v, dtype=float)


def test_trust_panel_faithfulness_sanity_and_held_out_average(dashboard_env):
    import dashboard.state as state

    at = open_page("attributions", {"img": "1"})
    assert not at.exception and not at.error, errors(at)
    ckpt = state.load_model(dashboard_env.checkpoints / "tiny.json")
    before = {k: v.clone() for k, v in ckpt.model.state_dict().items()}
    assert at.selectbox(key="attr_layer").value == default_grad_cam_layer(ckpt.model)

    faith = charts(at)["#0"]
    deletion, insertion = faith.frame(0), faith.frame(1)  # the two panels
    for panel in (deletion, insertion):  # a curve per method and baseline
        names = list(dict.fromkeys(m.split(":")[0] for m in panel["map"]))
        assert len(names) == len(METHODS) + 2 and names[-2:] == ["random map (baseline)", "Sobel edges (baseline)"]
        assert panel[panel["baseline"]]["map"].str.contains("baseline").all()  # baselines dashed
        assert panel["probability"].between(0, 1).all()
    assert any("beat both baseline maps" in m.value for m in at.markdown)
    assert "attr_sanity_curve" not in figures(at)  # the sanity check waits for its button

    at.button(key="attr_sanity_run").click().run()
    assert not at.exception, errors(at)
    figs = figures(at)
    steps = len(randomisation_layers(ckpt.model)) + 1
    assert len(figs["attr_sanity_curve"]["data"]) == len(METHODS)
    y = values(figs["attr_sanity_curve"]["data"][0]["y"])
    assert len(y) == steps and y[0] == 1.0  # the trained map against itself
    assert sum(t["type"] == "image" for t in figs["attr_sanity_grid"]["data"]) == 1 + len(METHODS) * steps
    assert any("decorrelates" in m.value or "barely changes" in m.value for m in at.markdown)

    at.number_input(key="attr_avg_n").set_value(3).run()
    at.button(key="attr_avg_run").click().run()
    assert not at.exception, errors(at)
    table = at.dataframe[-1].value
    assert list(table["method"]) == list(METHODS) + ["random", "sobel"]
    assert "attr_avg_sanity" in figures(at) and len(charts(at)) == 2  # this image's curves, then the mean ones
    assert any("3 test images" in c.value for c in at.caption)

    after = ckpt.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # the shared model was never changed
