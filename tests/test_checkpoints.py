"""Self-describing checkpoints: bit-exact weights, metadata, snapshots, user .pt files, refusals."""

from __future__ import annotations

import json
import pickle

import pytest
import torch

from cnnviz.checkpoints import (
    CheckpointError,
    CheckpointMeta,
    file_sha256,
    load_checkpoint,
    load_snapshots,
    load_weights,
    read_state_dict,
    save_checkpoint,
)
from cnnviz.data import Preprocess, SplitSpec
from cnnviz.inputs import Normalization
from cnnviz.models import get_model
from conftest import Evil

CLASSES = ["bart_simpson", "homer_simpson", "lisa_simpson"]
ARCH_KWARGS = {"widths": (8, 8, 8)}


def make_meta(**kw) -> CheckpointMeta:
    base = dict(
        arch="cifar_fast", classes=list(CLASSES), preprocess=Preprocess(16, "pad", (12, 34, 56)),
        normalization=Normalization((0.4914, 0.4822, 0.4465), (0.247, 0.2435, 0.2616)),
        arch_kwargs=dict(ARCH_KWARGS), dataset="simpsons", tta="flip",
        split=SplitSpec(seed=5, val_fraction=0.25, n_total=12, fingerprint="abcdef0123456789",
                        val_indices=(1, 4, 9)),
        train_config={"epochs": 2, "lr": 0.1, "snapshot_epochs": [1, 2]},
        history=[{"epoch": 1, "train_loss": 1.0986, "train_acc": 0.25, "val_loss": None, "val_acc": None},
                 {"epoch": 2, "train_loss": 0.75, "train_acc": 0.5, "val_loss": 0.9, "val_acc": 0.3333}],
        metrics={"val": {"accuracy": 0.3333, "n": 3}},
        info={"train_seconds": 1.5},
    )
    base.update(kw)
    return CheckpointMeta(**base)


def make_model(seed: int = 0) -> torch.nn.Module:
    """A tiny model whose every tensor (parameters and buffers) holds non-default values."""
    torch.manual_seed(seed)
    model = get_model("cifar_fast", len(CLASSES), 16, **ARCH_KWARGS)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.is_floating_point():
                t.copy_(torch.randn_like(t))
            else:
                t.fill_(seed + 7)
    return model


def assert_same_state(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for k in a:
        assert a[k].dtype == b[k].dtype, k
        assert torch.equal(a[k].cpu(), b[k].cpu()), k


@pytest.mark.parametrize("given", ["stem", ".json", ".safetensors"])
def test_roundtrip_is_bit_exact(tmp_path, given):
    model = make_model()
    weights = save_checkpoint(tmp_path / "ck" / "tiny", model, make_meta())
    assert weights == tmp_path / "ck" / "tiny.safetensors"
    assert (tmp_path / "ck" / "tiny.json").is_file()
    arg = {"stem": tmp_path / "ck" / "tiny", ".json": tmp_path / "ck" / "tiny.json",
           ".safetensors": weights}[given]
    ck = load_checkpoint(arg)
    assert_same_state(model.state_dict(), ck.model.state_dict())
    assert not ck.model.training
    assert ck.path == weights and ck.name == "tiny"
    assert ck.sha256 == file_sha256(weights) and len(ck.sha256) == 64


def test_metadata_roundtrip(tmp_path):
    meta = make_meta()
    save_checkpoint(tmp_path / "tiny", make_model(), meta)
    got = load_checkpoint(tmp_path / "tiny").meta
    assert got.arch == "cifar_fast"
    assert got.arch_kwargs == {"widths": (8, 8, 8)}  # tuples come back as tuples
    assert got.classes == CLASSES
    assert got.preprocess == Preprocess(16, "pad", (12, 34, 56))
    assert got.input_size == 16
    assert got.normalization == meta.normalization
    assert got.split == meta.split
    assert got.history == meta.history
    assert got.metrics == meta.metrics
    assert got.train_config == meta.train_config
    assert (got.dataset, got.tta) == ("simpsons", "flip")
    assert got.info == {"train_seconds": 1.5}
    assert got.versions["torch"] == torch.__version__ and "cnnviz" in got.versions
    assert got.created  # a timestamp was recorded
    raw = json.loads((tmp_path / "tiny.json").read_text())
    assert raw["format"] == "cnnviz-checkpoint/1" and raw["input_size"] == 16


def test_snapshots_roundtrip(tmp_path):
    model = make_model(0)
    snaps = {3: make_model(3).state_dict(), 1: make_model(1).state_dict()}
    weights = save_checkpoint(tmp_path / "tiny", model, make_meta(), snapshots=snaps)
    assert (tmp_path / "tiny.snapshots.safetensors").is_file()
    ck = load_checkpoint(weights)
    assert ck.meta.snapshot_epochs == [1, 3]
    got = load_snapshots(ck)
    assert list(got) == [1, 3]
    for epoch in (1, 3):
        assert_same_state(snaps[epoch], got[epoch])
    assert not torch.equal(got[1]["fc.weight"], got[3]["fc.weight"])


def test_no_snapshots_gives_empty(tmp_path):
    ck = load_checkpoint(save_checkpoint(tmp_path / "tiny", make_model(), make_meta()))
    assert load_snapshots(ck) == {}
    assert ck.meta.snapshot_epochs == []


def test_resaving_without_snapshots_drops_the_old_ones(tmp_path):
    """Training again to the same --out without snapshots must not leave the previous run's
    snapshots to be shown as this model's."""
    save_checkpoint(tmp_path / "run", make_model(1), make_meta(), snapshots={1: make_model(2).state_dict()})
    ck = load_checkpoint(save_checkpoint(tmp_path / "run", make_model(3), make_meta()))
    assert ck.meta.snapshot_epochs == []
    assert load_snapshots(ck) == {}


def test_dotted_checkpoint_name_keeps_its_whole_name(tmp_path):
    """`--out runs/alexnet_lr0.05` must not become runs/alexnet_lr0.* (and collide with lr0.01)."""
    a = save_checkpoint(tmp_path / "alexnet_lr0.05", make_model(1), make_meta(),
                        snapshots={1: make_model(11).state_dict()})
    b = save_checkpoint(tmp_path / "alexnet_lr0.01", make_model(2), make_meta(),
                        snapshots={1: make_model(12).state_dict()})
    assert a.name == "alexnet_lr0.05.safetensors"
    assert (tmp_path / "alexnet_lr0.05.json").is_file()
    assert (tmp_path / "alexnet_lr0.05.snapshots.safetensors").is_file()
    assert a != b
    ck = load_checkpoint(tmp_path / "alexnet_lr0.05")
    assert_same_state(ck.model.state_dict(), make_model(1).state_dict())
    assert_same_state(load_snapshots(ck)[1], make_model(11).state_dict())


# --------------------------------------------------------------------------------------------
# Users' .pt files


def test_plain_pt_state_dict(tmp_path):
    model = make_model()
    path = tmp_path / "weights.pt"
    torch.save(model.state_dict(), path)
    state = read_state_dict(path)
    assert_same_state(model.state_dict(), state)
    fresh = get_model("cifar_fast", len(CLASSES), 16, **ARCH_KWARGS)
    load_weights(fresh, state)
    assert_same_state(model.state_dict(), fresh.state_dict())
    # a bare .pt loads as a checkpoint when its description is given
    ck = load_checkpoint(path, meta=make_meta())
    assert_same_state(model.state_dict(), ck.model.state_dict())
    assert ck.path == path


def test_wrapped_and_dataparallel_pt(tmp_path):
    model = make_model()
    path = tmp_path / "trainer.pth"
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, path)
    assert_same_state(model.state_dict(), read_state_dict(path))


def test_pt_that_is_not_a_state_dict(tmp_path):
    path = tmp_path / "list.pt"
    torch.save([torch.zeros(2)], path)
    with pytest.raises(CheckpointError) as e:
        read_state_dict(path)
    assert "does not hold a state dict" in str(e.value)


def test_wrong_keys_are_named(tmp_path):
    model = make_model()
    state = dict(model.state_dict())
    state["head.weight"] = state.pop("fc.weight")
    fresh = get_model("cifar_fast", len(CLASSES), 16, **ARCH_KWARGS)
    with pytest.raises(CheckpointError) as e:
        load_weights(fresh, state, source="user.pt")
    msg = str(e.value)
    assert "user.pt" in msg
    assert "missing keys: fc.weight" in msg
    assert "unexpected keys: head.weight" in msg
    assert "--arch" in msg


def test_missing_key_is_named():
    state = dict(make_model().state_dict())
    del state["block2.conv1.weight"]
    with pytest.raises(CheckpointError) as e:
        load_weights(get_model("cifar_fast", len(CLASSES), 16, **ARCH_KWARGS), state)
    assert "missing keys: block2.conv1.weight" in str(e.value)
    assert "unexpected" not in str(e.value)


def test_wrong_shape_is_named():
    state = make_model().state_dict()  # 3 classes
    ten_classes = get_model("cifar_fast", 10, 16, **ARCH_KWARGS)
    before = {k: v.clone() for k, v in ten_classes.state_dict().items()}
    with pytest.raises(CheckpointError) as e:
        load_weights(ten_classes, state)
    msg = str(e.value)
    assert "shape mismatch: fc.weight (3, 8) vs (10, 8)" in msg
    assert_same_state(before, ten_classes.state_dict())  # nothing was half-loaded


@pytest.mark.parametrize("how", ["torch.save", "pickle.dump"])
def test_malicious_pt_is_refused_unrun(tmp_path, how):
    marker = tmp_path / "pwned"
    path = tmp_path / "model.pt"
    payload = {"fc.weight": torch.zeros(3, 8), "evil": Evil(marker)}
    if how == "torch.save":
        torch.save(payload, path)
    else:
        with open(path, "wb") as f:
            pickle.dump(payload, f, protocol=2)
    with pytest.raises(CheckpointError) as e:
        read_state_dict(path)
    assert "refused to load" in str(e.value)
    assert "torch.save(model.state_dict()" in str(e.value)
    assert not marker.exists()


def test_missing_sidecar(tmp_path):
    weights = save_checkpoint(tmp_path / "tiny", make_model(), make_meta())
    (tmp_path / "tiny.json").unlink()
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(weights)
    msg = str(e.value)
    assert "no description tiny.json" in msg
    assert "--arch" in msg and "--classes" in msg


def test_missing_weights(tmp_path):
    save_checkpoint(tmp_path / "tiny", make_model(), make_meta())
    (tmp_path / "tiny.safetensors").unlink()
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(tmp_path / "tiny.json")
    assert "no weights file" in str(e.value) and "tiny.safetensors" in str(e.value)


def test_sidecar_that_is_not_a_checkpoint(tmp_path):
    save_checkpoint(tmp_path / "tiny", make_model(), make_meta())
    (tmp_path / "tiny.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(tmp_path / "tiny")
    assert "not a cnnviz checkpoint" in str(e.value)
    (tmp_path / "tiny.json").write_text("{not json")
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(tmp_path / "tiny")
    assert "not valid JSON" in str(e.value)


def test_corrupt_safetensors(tmp_path):
    weights = save_checkpoint(tmp_path / "tiny", make_model(), make_meta())
    weights.write_bytes(b"\x00" * 16)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(weights)
    assert "not a readable safetensors file" in str(e.value)
