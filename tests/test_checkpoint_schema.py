"""A checkpoint description that cannot be used is refused before any work, with one clear error."""

from __future__ import annotations

import json

import pytest
import torch

from cnnviz.checkpoint_meta import MAX_PARAMETERS, check_architecture
from cnnviz.checkpoints import CheckpointError, CheckpointMeta, load_checkpoint, save_checkpoint
from cnnviz.data import Preprocess
from cnnviz.inputs import Normalization
from cnnviz.models import get_model, list_models

CLASSES = ["bart", "homer", "lisa"]


@pytest.fixture
def saved(tmp_path):
    """A valid tiny checkpoint; returns its sidecar path."""
    torch.manual_seed(0)
    model = get_model("cifar_fast", 3, 16, widths=(8, 8, 8))
    meta = CheckpointMeta("cifar_fast", list(CLASSES), Preprocess(16), Normalization((0.5,) * 3, (0.25,) * 3),
                          arch_kwargs={"widths": (8, 8, 8)}, tta="flip")
    save_checkpoint(tmp_path / "tiny", model, meta)
    return tmp_path / "tiny.json"


def refused(sidecar, change) -> str:
    """Edit the sidecar's JSON with ``change(d)``, load, and return the refusal without the path."""
    d = json.loads(sidecar.read_text())
    change(d)
    sidecar.write_text(json.dumps(d))
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(sidecar)
    msg = str(e.value)
    assert msg.startswith(f"{sidecar}: "), msg
    return msg[len(f"{sidecar}: "):]


def set_(key, value):
    return lambda d: d.__setitem__(key, value)


def set_in(outer, key, value):
    return lambda d: d[outer].__setitem__(key, value)


@pytest.mark.parametrize("change, message", [
    (set_("classes", None), "classes must be a list of non-empty names, one per model output (got null)"),
    (set_("classes", "bart,homer,lisa"),
     'classes must be a list of non-empty names, one per model output (got "bart,homer,lisa")'),
    (set_("classes", ["bart", "", "lisa"]),
     'classes must be a list of non-empty names, one per model output (got ["bart", "", "lisa"])'),
    (set_("classes", ["bart", 7, "lisa"]),
     'classes must be a list of non-empty names, one per model output (got ["bart", 7, "lisa"])'),
    (set_("classes", []), "classes must be a list of non-empty names, one per model output (got [])"),
    (set_("classes", ["bart", "lisa", "bart"]), "class names must be unique; repeated: bart"),
    (set_("input_size", 0), "input_size must be a positive whole number of pixels (got 0)"),
    (set_("input_size", 32), "input_size 32 and preprocess size 16 disagree: they must be equal"),
    (set_in("preprocess", "size", 0), "preprocess size must be a positive whole number of pixels (got 0)"),
    (set_in("preprocess", "size", -16), "preprocess size must be a positive whole number of pixels (got -16)"),
    (set_in("preprocess", "mode", "stretch"), 'unknown preprocess mode "stretch"; valid: squash, center_crop, pad'),
    (set_("format", "cnnviz-checkpoint/99"),
     "format 'cnnviz-checkpoint/99' is not one this cnnviz reads (it reads cnnviz-checkpoint/1): it was saved "
     "by another version; load it with that version or upgrade cnnviz"),
    (set_("tta", "mirror"), 'unknown tta "mirror"; valid: none, flip, flip_translate'),
    (set_in("normalization", "std", [0.25, 0.0, 0.25]),
     "normalization std must be 3 numbers above 0 (got [0.25, 0.0, 0.25]): a zero or negative std makes "
     "every prediction NaN or infinite"),
    (set_in("normalization", "std", [0.25, -0.25, 0.25]),
     "normalization std must be 3 numbers above 0 (got [0.25, -0.25, 0.25]): a zero or negative std makes "
     "every prediction NaN or infinite"),
    (set_in("normalization", "mean", [0.5, 0.5]), "normalization mean must be 3 finite numbers (got [0.5, 0.5])"),
    (set_("arch", "lenet"), f"unknown model 'lenet'; known models: {', '.join(list_models())}"),
    (set_("arch_kwargs", {"widths": [8, 8, 8], "depth": 3}),
     "cannot build cifar_fast with widths=(8, 8, 8), depth=3 at input size 16: CifarFastNet.__init__() got an "
     "unexpected keyword argument 'depth'"),
    (set_("arch_kwargs", {"widths": "wide"}),
     "cannot build cifar_fast with widths='wide' at input size 16: too many values to unpack (expected 3)"),
    (set_("arch_kwargs", [8, 8, 8]), "arch_kwargs must be an object of argument names and values (got [8, 8, 8])"),
    (set_("snapshot_epochs", [1, -2]), "snapshot_epochs must be a list of epoch numbers (got [1, -2])"),
    (set_("weights_sha256", "abc"), "weights_sha256 must be a sha256 in hex (got 'abc')"),
    (lambda d: d.pop("classes"), "checkpoint description lacks the field 'classes'"),
])
def test_unusable_descriptions_are_refused(saved, change, message):
    assert refused(saved, change) == message


def test_a_46_gb_model_is_refused_before_allocating(saved, monkeypatch):
    """Widths asking for ~58 GB of weights: counted on the meta device and refused; no weights
    are read and nothing is built on the CPU."""
    import cnnviz.checkpoints as ck

    def no_reading(*a, **kw):
        raise AssertionError("weights were read before the description was checked")

    monkeypatch.setattr(ck, "read_weights", no_reading)
    msg = refused(saved, set_("arch_kwargs", {"widths": [8, 8, 40000]}))
    assert msg == ("cifar_fast with widths=(8, 8, 40000) at input size 16 would have 14,403,163,832 parameters "
                   f"(57.6 GB as float32), more than the {MAX_PARAMETERS:,} cnnviz builds")


def test_a_description_that_is_not_an_object(saved):
    saved.write_text("[1, 2, 3]")
    with pytest.raises(CheckpointError, match=r"not a cnnviz checkpoint description \(a JSON list, not an object\)"):
        load_checkpoint(saved)


@pytest.mark.parametrize("arch", list_models())
def test_every_registered_model_can_be_counted_without_memory(arch):
    """The meta-device count works for every registered family, and agrees with a real build."""
    meta_model = check_architecture(arch, 3, 64, {})
    assert all(p.device.type == "meta" for p in meta_model.parameters())
    if arch in ("cifar_fast", "cifar_lecture", "resnet18"):  # the small ones: compare with a real build
        real = get_model(arch, 3, 64)
        assert sum(p.numel() for p in meta_model.parameters()) == sum(p.numel() for p in real.parameters())


def test_the_count_leaves_the_random_state_alone():
    torch.manual_seed(0)
    want = torch.rand(3)
    torch.manual_seed(0)
    check_architecture("alexnet_style", 3, 32, {})
    assert torch.equal(torch.rand(3), want)
