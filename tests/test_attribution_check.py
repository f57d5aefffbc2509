"""`cnnviz attribution-check`: both tables printed and saved on a tiny checkpoint and class tree,
the sample reproducible, and refusals in one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from cnnviz.checkpoints import checkpoint_data, load_checkpoint
from cnnviz.cli import main
from cnnviz.inspect.features import extract_features
from cnnviz.inspect.sanity import randomisation_layers
from cnnviz.inspect.trust import attribution_check, check_sample

from dashboard_fixtures import tiny_dashboard  # noqa: F401 (fixture)


def test_the_command_prints_both_tables_and_saves_every_number(tiny_dashboard, tmp_path, capsys):
    ckpt_path = tiny_dashboard.checkpoints / "tiny.json"
    out = tmp_path / "check.json"
    rc = main(["attribution-check", str(ckpt_path), "--data", str(tiny_dashboard.tree), "--n", "3",
               "--methods", "saliency,grad_cam,guided_backprop", "--steps", "4", "--json", str(out)])
    printed = capsys.readouterr().out
    assert rc == 0
    assert "tiny: 3 test images, explaining the predicted class" in printed
    assert "Faithfulness (4 steps" in printed and "sobel (baseline)" in printed
    assert "Sanity check: Spearman correlation" in printed
    saved = json.loads(out.read_text())
    assert saved["n"] == 3 and saved["split"] == "test"
    assert [m["method"] for m in saved["faithfulness"]["methods"]] == ["saliency", "grad_cam", "guided_backprop",
                                                                      "random", "sobel"]
    ckpt = load_checkpoint(ckpt_path)
    assert saved["sanity"]["layers"] == randomisation_layers(ckpt.model)
    assert all(row[0] == 1.0 for row in saved["sanity"]["mean"])  # step 0: the trained map against itself
    assert len(saved["faithfulness"]["fractions"]) == 5


def test_the_sample_is_seeded_and_explains_the_predicted_class(tiny_dashboard):
    ckpt = load_checkpoint(tiny_dashboard.checkpoints / "tiny.json")
    ds = checkpoint_data(ckpt.meta, tiny_dashboard.tree, "test")
    idx, targets = check_sample(ckpt, ds, 4, seed=1)
    again, _ = check_sample(ckpt, ds, 4, seed=1)
    assert np.array_equal(idx, again) and len(idx) == 4 and np.all(np.diff(idx) > 0)
    with torch.no_grad():
        logits = ckpt.model.head(torch.from_numpy(extract_features(ckpt, ds.images[idx])))
    assert targets.tolist() == logits.argmax(1).tolist()
    assert len(check_sample(ckpt, ds, 100)[0]) == len(ds)  # all of them when there are fewer
    check = attribution_check(ckpt, ds, "test", 2, ("saliency",), steps=2, sanity=False)
    assert check.sanity is None and [r["method"] for r in check.faithfulness.rows()] == ["saliency", "random", "sobel"]


@pytest.mark.parametrize("args, message", [
    (["--methods", "saliency,lime"], "--methods: unknown lime; choose from saliency, integrated_gradients, "
                                     "grad_cam, occlusion, guided_backprop"),
    (["--n", "0"], "--n must be at least 1 (got 0)"),
    (["--steps", "0"], "--steps must be at least 1 (got 0)"),
])
def test_refusals_are_one_line(tiny_dashboard, capsys, args, message):
    rc = main(["attribution-check", str(tiny_dashboard.checkpoints / "tiny.json"), "--data",
               str(tiny_dashboard.tree), *args])
    captured = capsys.readouterr()
    assert rc == 2 and captured.out == ""
    assert captured.err.strip().splitlines() == [f"cnnviz attribution-check: error: {message}"]
