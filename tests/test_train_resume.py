"""A long run in parts: a run stopped after an epoch and resumed takes exactly the steps of an
unbroken run; the saved state is refused when it belongs to another run, and the command line
says how to go on."""

from __future__ import annotations

import json

import pytest
import torch

from cnnviz.checkpoints import CheckpointError, load_checkpoint, load_snapshots
from cnnviz.cli import main
from cnnviz.data import Preprocess
from cnnviz.inputs import Normalization
from cnnviz.train import ResumeError, TrainPart, fit, train_checkpoint
from cnnviz.train.resume import load_state, state_paths

from test_train_eval import config, separable, tiny_model

# every part of the state in play: momentum, the weight average, random order, flips, shifts
# and colour draws, the best weights and snapshots
RECIPE = dict(epochs=4, batch_size=16, flip="random", translate=1, saturation=0.3, lookahead_every=2,
              lookahead_decay=0.9, keep_best=True, snapshot_epochs=(0, 1, 3), momentum=0.9)
ID = {"run": "test"}


def test_a_run_resumed_after_each_epoch_equals_an_unbroken_run(tmp_path):
    ds, val = separable(), separable(n_per_class=4, seed=1)
    norm = Normalization.fit(ds.images)
    cfg = config(**RECIPE)
    whole_model = tiny_model(0)
    whole = fit(whole_model, ds, val, cfg, norm, progress=False)

    out = tmp_path / "run"
    model = tiny_model(0)
    part = fit(model, ds, val, cfg, norm, progress=False, state_at=out, identity=ID, stop_after_minutes=1e-9)
    assert not part.finished and len(part.history) == 1 and part.steps == 3 and part.total_steps == 12
    parts = 1
    while True:
        state = load_state(out, ID)
        assert state is not None and state.epoch == parts
        model = tiny_model(5)  # a fresh process: other initial weights, all replaced by the state
        result = fit(model, ds, val, cfg, norm, progress=False, state_at=out, resume=state, identity=ID,
                     stop_after_minutes=1e-9)
        parts += 1
        if result.finished:
            break
    assert parts == 4
    assert [r.train_loss for r in result.history] == [r.train_loss for r in whole.history]
    assert [r.val_acc for r in result.history] == [r.val_acc for r in whole.history]
    assert result.best_epoch == whole.best_epoch
    assert sorted(result.snapshots) == [0, 1, 3]
    for e in (0, 1, 3):
        for k, v in whole.snapshots[e].items():
            assert torch.equal(result.snapshots[e][k], v), (e, k)
    for k, v in whole_model.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k


def test_the_state_is_safetensors_and_json_and_names_its_run(tmp_path):
    ds = separable()
    out = tmp_path / "run"
    fit(tiny_model(), ds, None, config(epochs=2), Normalization.fit(ds.images), progress=False, state_at=out,
        identity=ID, stop_after_minutes=1e-9)
    tensors, info = state_paths(out)
    assert tensors.name == "run.resume.safetensors" and info.name == "run.resume.json"
    d = json.loads(info.read_text())
    assert d["format"] == "cnnviz-train-state/1" and d["epoch"] == 1 and d["identity"] == ID
    with pytest.raises(ResumeError, match=r"^the saved training state beside .*run is for another run than this "
                                          r"run; run with the same options to continue it, or delete "
                                          r"run\.resume\.json and run\.resume\.safetensors to start again$"):
        load_state(out, {"run": "another"})
    info.write_text("{not json")
    with pytest.raises(ResumeError, match=r"^the saved training state beside .*run cannot be read"):
        load_state(out, ID)
    assert load_state(tmp_path / "elsewhere", ID) is None


def _train(tree, out, **kw):
    return train_checkpoint(
        tree.root, out, dataset="folder", model="cifar_fast", model_kwargs={"widths": (8, 8, 8)},
        preprocess=Preprocess(16), val_fraction=0.25, progress=False, cache_dir=out.parent / "cache",
        overrides={"epochs": 3, "precision": "fp32", "device": "cpu", "snapshot_epochs": (1, 3)}, **kw)


def test_train_checkpoint_in_parts_saves_the_unbroken_runs_checkpoint(class_tree_session, tmp_path):
    whole = _train(class_tree_session, tmp_path / "whole")
    out = tmp_path / "parts"
    part = _train(class_tree_session, out, stop_after_minutes=1e-9)
    assert isinstance(part, TrainPart) and part.epoch == 1 and part.state == state_paths(out)[1]
    assert not out.with_suffix(".json").exists()
    with pytest.raises(CheckpointError, match=r"holds the state of an unfinished run for this output; continue it "
                                              r"\(resume=True, --resume on the command line\) or start again"):
        _train(class_tree_session, out)
    with pytest.raises(ResumeError, match="is for another recipe than this run"):
        train_checkpoint(class_tree_session.root, out, dataset="folder", model="cifar_fast",
                         model_kwargs={"widths": (8, 8, 8)}, preprocess=Preprocess(16), val_fraction=0.25,
                         progress=False, cache_dir=tmp_path / "cache", resume=True,
                         overrides={"epochs": 5, "precision": "fp32", "device": "cpu", "snapshot_epochs": (1, 3)})
    done = _train(class_tree_session, out, resume=True)
    assert not any(p.exists() for p in state_paths(out))
    assert [h["train_loss"] for h in done.meta.history] == [h["train_loss"] for h in whole.meta.history]
    assert done.meta.metrics["val"]["accuracy"] == whole.meta.metrics["val"]["accuracy"]
    for k, v in whole.model.state_dict().items():
        assert torch.equal(done.model.state_dict()[k], v), k
    assert sorted(load_snapshots(done)) == [1, 3]


def test_force_starts_again_over_a_saved_state(class_tree_session, tmp_path):
    out = tmp_path / "again"
    _train(class_tree_session, out, stop_after_minutes=1e-9)
    done = _train(class_tree_session, out, overwrite=True)
    assert [h["epoch"] for h in done.meta.history] == [1, 2, 3]
    assert not any(p.exists() for p in state_paths(out))


def test_cli_stops_after_minutes_and_resumes(class_tree, tmp_path, capsys):
    out = tmp_path / "cli_parts"
    args = ["train", "--data", str(class_tree.root), "--out", str(out), "--dataset", "folder", "--model",
            "cifar_fast", "--model-arg", "widths=[8,8,8]", "--size", "8", "--epochs", "2", "--val-fraction",
            "0.25", "--device", "cpu", "--precision", "fp32", "--no-test"]
    assert main(args + ["--stop-after-minutes", "0.000001"]) == 0
    text = capsys.readouterr().out
    assert f"its state is saved in {out}.resume.json.\nRun the same command with --resume to go on." in text
    assert "\nstopped after epoch 1 (1 of 2 steps, " in text
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"cnnviz train: error: {out}.resume.json holds the state of an unfinished run")
    assert main(args + ["--resume"]) == 0
    assert f"saved {out}.safetensors" in capsys.readouterr().out
    assert [h["epoch"] for h in load_checkpoint(out).meta.history] == [1, 2]
    assert main(args + ["--stop-after-minutes", "0", "--force"]) == 2
    assert "--stop-after-minutes must be a number above 0 (got 0)" in capsys.readouterr().err
