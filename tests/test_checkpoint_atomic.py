"""Checkpoints are saved as one unit: an interrupted save leaves the old checkpoint loadable and
no temporary files, Ctrl-C cannot split the pair, and a mixed pair is refused on load."""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading

import pytest
import torch

import cnnviz.atomic as atomic
import cnnviz.checkpoints as checkpoints
from cnnviz.checkpoints import (
    CheckpointError, CheckpointMeta, file_sha256, load_checkpoint, load_snapshots, save_checkpoint,
)
from cnnviz.data import Preprocess
from cnnviz.inputs import Normalization
from cnnviz.models import get_model

CLASSES = ["bart", "homer", "lisa"]


def make_model(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = get_model("cifar_fast", 3, 16, widths=(8, 8, 8))
    with torch.no_grad():
        for t in model.state_dict().values():
            if t.is_floating_point():
                t.copy_(torch.randn_like(t))
    return model


def make_meta(**kw) -> CheckpointMeta:
    return CheckpointMeta("cifar_fast", list(CLASSES), Preprocess(16), Normalization((0.5,) * 3, (0.25,) * 3),
                          arch_kwargs={"widths": (8, 8, 8)}, **kw)


def same_state(a: dict, b: dict) -> bool:
    return sorted(a) == sorted(b) and all(torch.equal(a[k].cpu(), b[k].cpu()) for k in a)


def files(folder) -> list[str]:
    """Every name in ``folder``, hidden ones included."""
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture
def old(tmp_path):
    """A saved checkpoint ``x`` with snapshots at epochs 1 and 2; returns (folder, model, snapshots)."""
    model, snaps = make_model(1), {1: make_model(11).state_dict(), 2: make_model(12).state_dict()}
    save_checkpoint(tmp_path / "x", model, make_meta(info={"run": "old"}), snapshots=snaps)
    return tmp_path, model, snaps


def assert_old_is_intact(folder, model, snaps) -> None:
    ck = load_checkpoint(folder / "x")
    assert ck.meta.info == {"run": "old"}
    assert same_state(ck.model.state_dict(), model.state_dict())
    got = load_snapshots(ck)
    assert sorted(got) == [1, 2] and all(same_state(got[e], snaps[e]) for e in (1, 2))
    assert files(folder) == ["x.json", "x.safetensors", "x.snapshots.safetensors"]


def test_the_description_records_the_weights_sha256(tmp_path):
    weights = save_checkpoint(tmp_path / "x", make_model(1), make_meta())
    assert json.loads((tmp_path / "x.json").read_text())["weights_sha256"] == file_sha256(weights)
    assert load_checkpoint(weights).sha256 == file_sha256(weights)
    assert files(tmp_path) == ["x.json", "x.safetensors"]


@pytest.mark.parametrize("with_snapshots", [True, False])
@pytest.mark.parametrize("stage", ["staged", "moved:x.safetensors", "moved:x.snapshots.safetensors", "moved:x.json"])
def test_an_interrupted_save_leaves_the_old_checkpoint(old, monkeypatch, stage, with_snapshots):
    folder, model, snaps = old

    def interrupt(at: str) -> None:
        if at == stage:
            raise KeyboardInterrupt

    monkeypatch.setattr(atomic, "fault_hook", interrupt)
    new_snaps = {3: make_model(13).state_dict()} if with_snapshots else None
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(folder / "x", make_model(2), make_meta(info={"run": "new"}), snapshots=new_snaps)
    assert_old_is_intact(folder, model, snaps)


def test_a_failed_move_is_rolled_back_without_hard_links(old, monkeypatch):
    """Where the file system has no hard links, the backups are copies; the result is the same."""
    folder, model, snaps = old

    def no_links(*a):
        raise OSError("hard links not supported")

    def fail(at: str) -> None:
        if at == "moved:x.snapshots.safetensors":
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "link", no_links)
    monkeypatch.setattr(atomic, "fault_hook", fail)
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint(folder / "x", make_model(2), make_meta(info={"run": "new"}), snapshots={3: make_model(3).state_dict()})
    assert_old_is_intact(folder, model, snaps)


def test_a_failure_while_writing_the_temporaries_leaves_the_old_checkpoint(old, monkeypatch):
    folder, model, snaps = old
    real_save = checkpoints.save_file
    calls = []

    def disk_full_on_second(tensors, path, metadata=None):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real_save(tensors, path, metadata=metadata)

    monkeypatch.setattr(checkpoints, "save_file", disk_full_on_second)
    with pytest.raises(OSError):
        save_checkpoint(folder / "x", make_model(2), make_meta(info={"run": "new"}), snapshots={3: make_model(3).state_dict()})
    assert_old_is_intact(folder, model, snaps)


def test_ctrl_c_during_the_moves_waits_for_the_pair(old, monkeypatch):
    """A real SIGINT between two moves is held back until all files are in place, then raised."""
    folder, _, _ = old
    new_model = make_model(2)
    seen = []

    def ctrl_c(at: str) -> None:
        seen.append(at)
        if at == "moved:x.safetensors":
            signal.raise_signal(signal.SIGINT)

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        monkeypatch.setattr(atomic, "fault_hook", ctrl_c)
        with pytest.raises(KeyboardInterrupt):
            save_checkpoint(folder / "x", new_model, make_meta(info={"run": "new"}))
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler is put back
    finally:
        signal.signal(signal.SIGINT, previous)
    assert seen == ["staged", "moved:x.safetensors", "moved:x.snapshots.safetensors", "moved:x.json"]
    ck = load_checkpoint(folder / "x")  # the new pair, complete and consistent
    assert ck.meta.info == {"run": "new"} and same_state(ck.model.state_dict(), new_model.state_dict())
    assert load_snapshots(ck) == {}
    assert files(folder) == ["x.json", "x.safetensors"]


def test_ctrl_c_is_not_touched_off_the_main_thread():
    handlers = []

    def work():
        with atomic.sigint_deferred():
            handlers.append(signal.getsignal(signal.SIGINT))

    before = signal.getsignal(signal.SIGINT)
    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert handlers == [before]


def test_a_pair_from_two_saves_is_refused(tmp_path):
    save_checkpoint(tmp_path / "a", make_model(1), make_meta())
    save_checkpoint(tmp_path / "b", make_model(2), make_meta())
    shutil.copy(tmp_path / "b.safetensors", tmp_path / "a.safetensors")
    a_sha = json.loads((tmp_path / "a.json").read_text())["weights_sha256"]
    b_sha = file_sha256(tmp_path / "b.safetensors")
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(tmp_path / "a")
    assert str(e.value) == (
        f"a.safetensors and a.json do not belong together: the weights' sha256 is {b_sha[:12]}..., the "
        f"description records {a_sha[:12]}... They are from two different saves, or a save was interrupted: "
        "save or copy the checkpoint again as a pair")


def test_a_load_during_a_save_reads_the_pair_again(tmp_path, monkeypatch):
    """New weights already in place, the new description not yet: the loader looks once more
    and gets the complete new pair (the pause is when the save finishes, here)."""
    save_checkpoint(tmp_path / "x", make_model(1), make_meta(info={"run": "old"}))
    save_checkpoint(tmp_path / "y", make_model(2), make_meta(info={"run": "new"}))
    shutil.copy(tmp_path / "y.safetensors", tmp_path / "x.safetensors")  # mid-save: weights moved
    monkeypatch.setattr(checkpoints.time, "sleep", lambda s: shutil.copy(tmp_path / "y.json", tmp_path / "x.json"))
    ck = load_checkpoint(tmp_path / "x")
    assert ck.meta.info == {"run": "new"}
    assert same_state(ck.model.state_dict(), make_model(2).state_dict())


def test_snapshots_of_other_weights_are_refused(tmp_path):
    save_checkpoint(tmp_path / "a", make_model(1), make_meta(), snapshots={1: make_model(11).state_dict()})
    save_checkpoint(tmp_path / "b", make_model(2), make_meta(), snapshots={1: make_model(12).state_dict()})
    shutil.copy(tmp_path / "b.snapshots.safetensors", tmp_path / "a.snapshots.safetensors")
    with pytest.raises(CheckpointError) as e:
        load_snapshots(load_checkpoint(tmp_path / "a"))
    assert str(e.value) == ("a.snapshots.safetensors holds snapshots of other weights than a.safetensors "
                            "(from another save): delete it, or save the checkpoint again")


def test_a_checkpoint_saved_before_the_sha256_was_recorded_still_loads(tmp_path):
    save_checkpoint(tmp_path / "x", make_model(1), make_meta(), snapshots={1: make_model(11).state_dict()})
    d = json.loads((tmp_path / "x.json").read_text())
    del d["weights_sha256"]
    (tmp_path / "x.json").write_text(json.dumps(d))
    ck = load_checkpoint(tmp_path / "x")
    assert same_state(ck.model.state_dict(), make_model(1).state_dict())
    assert sorted(load_snapshots(ck)) == [1]
