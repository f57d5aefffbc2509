"""`cnnviz import`: a user's bare state dict becomes a normal checkpoint, bit-exact, or a clear refusal."""

from __future__ import annotations

import json

import pytest
import torch
import torchvision
from safetensors.torch import save_file

from cnnviz.checkpoints import (
    CheckpointError,
    file_sha256,
    import_weights,
    load_checkpoint,
)
from cnnviz.cli import main
from cnnviz.data import Preprocess
from cnnviz.inputs import Normalization
from cnnviz.models import get_model, list_models
from cnnviz.runtime import resolve_runtime
from conftest import Evil

CLASSES = ["cat", "dog", "bird"]
KWARGS = {"width": 0.125, "fc6": 16, "fc7": 32}
SIZE = 32
IMAGENET = Normalization((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
CPU32 = resolve_runtime("cpu", "fp32")  # plain layout and precision: outputs comparable bit for bit


def make_model(seed: int = 0, n_classes: int = len(CLASSES)) -> torch.nn.Module:
    """A tiny alexnet_style whose every tensor holds non-default values (BN statistics included)."""
    torch.manual_seed(seed)
    model = get_model("alexnet_style", n_classes, SIZE, **KWARGS)
    with torch.no_grad():
        for t in model.state_dict().values():
            if t.is_floating_point():
                t.copy_(torch.randn_like(t).abs() + 0.1 if t.ndim == 1 else torch.randn_like(t))
            else:
                t.fill_(seed + 5)
    return model.eval()


def fixed_input() -> torch.Tensor:
    return torch.linspace(-2, 2, 2 * 3 * SIZE * SIZE).reshape(2, 3, SIZE, SIZE)


def assert_same_state(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for k in a:
        assert a[k].dtype == b[k].dtype, k
        assert torch.equal(a[k].cpu(), b[k].cpu()), k


def write_weights(model: torch.nn.Module, path, how: str):
    state = model.state_dict()
    if how == "pt":
        torch.save(state, path)
    elif how == "wrapped":
        torch.save({"epoch": 7, "optimizer": {"lr": 0.1}, "state_dict": state}, path)
    else:
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    return path


@pytest.mark.parametrize("how, name", [("pt", "mine.pt"), ("wrapped", "trainer.pth"),
                                       ("safetensors", "mine.safetensors")])
def test_import_roundtrip_is_bit_exact(tmp_path, how, name):
    model = make_model(1)
    src = write_weights(model, tmp_path / name, how)
    src_sha = file_sha256(src)
    ck = import_weights(src, tmp_path / "out" / "imported", "alexnet_style", CLASSES, SIZE, arch_kwargs=KWARGS,
                        runtime=CPU32)
    assert ck.path == tmp_path / "out" / "imported.safetensors"
    assert (tmp_path / "out" / "imported.json").is_file()
    assert file_sha256(src) == src_sha  # the user's file is left as it was

    again = load_checkpoint(tmp_path / "out" / "imported", runtime=CPU32)
    assert_same_state(model.state_dict(), again.model.state_dict())
    x = fixed_input()
    with torch.no_grad():
        want = model(x)
        assert torch.equal(again.model(x), want)
        assert torch.equal(ck.model(x), want)
    assert want.shape == (2, 3)

    m = again.meta
    assert m.arch == "alexnet_style" and m.arch_kwargs == KWARGS
    assert m.classes == CLASSES and m.dataset == "folder" and m.tta == "none"
    assert m.preprocess == Preprocess(SIZE, "squash")
    assert m.normalization == IMAGENET
    assert m.history == [] and m.metrics == {} and m.split is None and m.snapshot_epochs == []
    assert m.info["imported"] is True
    assert m.info["source_file"] == name
    assert m.info["source_sha256"] == src_sha
    assert "no training history" in m.info["note"]
    assert again.sha256 == file_sha256(tmp_path / "out" / "imported.safetensors")


def test_import_records_settings_and_dataparallel_prefix(tmp_path):
    model = make_model(2)
    src = tmp_path / "dp.pt"
    torch.save({"model": {f"module.{k}": v for k, v in model.state_dict().items()}}, src)
    norm = Normalization((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    import_weights(src, tmp_path / "dp", "alexnet_style", CLASSES, SIZE, arch_kwargs={"width": 0.125, "fc6": 16,
                   "fc7": 32}, resize="pad", normalization=norm, dataset="simpsons")
    ck = load_checkpoint(tmp_path / "dp.json")
    assert_same_state(model.state_dict(), ck.model.state_dict())
    assert ck.meta.preprocess == Preprocess(SIZE, "pad")
    assert ck.meta.normalization == norm
    assert ck.meta.dataset == "simpsons"


def test_tuple_arch_kwargs_roundtrip(tmp_path):
    torch.manual_seed(0)
    model = get_model("cifar_fast", 3, 16, widths=(8, 8, 8))
    src = tmp_path / "c.pt"
    torch.save(model.state_dict(), src)
    ck = import_weights(src, tmp_path / "c", "cifar_fast", CLASSES, 16, arch_kwargs={"widths": [8, 8, 8]})
    assert ck.meta.arch_kwargs == {"widths": (8, 8, 8)}
    assert json.loads((tmp_path / "c.json").read_text())["arch_kwargs"] == {"widths": [8, 8, 8]}
    assert_same_state(model.state_dict(), load_checkpoint(tmp_path / "c").model.state_dict())


def test_sidecar_added_beside_bare_safetensors(tmp_path):
    """`cnnviz import model.safetensors --out model` describes the file in place."""
    model = make_model(3)
    src = write_weights(model, tmp_path / "model.safetensors", "safetensors")
    with pytest.raises(CheckpointError, match="no description model.json"):
        load_checkpoint(src)
    import_weights(src, tmp_path / "model", "alexnet_style", CLASSES, SIZE, arch_kwargs=KWARGS)
    ck = load_checkpoint(src)
    assert_same_state(model.state_dict(), ck.model.state_dict())
    assert ck.meta.classes == CLASSES


# --------------------------------------------------------------------------------------------
# Refusals


def test_class_count_mismatch(tmp_path):
    src = write_weights(make_model(), tmp_path / "w.pt", "pt")
    with pytest.raises(CheckpointError) as e:
        import_weights(src, tmp_path / "out", "alexnet_style", ["a", "b", "c", "d", "e"], SIZE, arch_kwargs=KWARGS)
    msg = str(e.value)
    assert "w.pt do not fit AlexNetStyle" in msg
    assert "shape mismatch: fc8.bias (3,) vs (5,), fc8.weight (3, 32) vs (5, 32)" in msg
    assert "final layer fc8 has 3 outputs but 5 class names were given" in msg
    assert "give exactly 3 class names" in msg
    assert not (tmp_path / "out.json").exists() and not (tmp_path / "out.safetensors").exists()


def test_wrong_arch_arguments_hint(tmp_path):
    src = write_weights(make_model(), tmp_path / "w.pt", "pt")
    with pytest.raises(CheckpointError) as e:
        import_weights(src, tmp_path / "out", "alexnet_style", CLASSES, SIZE, arch_kwargs={**KWARGS, "fc7": 64})
    msg = str(e.value)
    assert "shape mismatch: fc7.1.bias (32,) vs (64,)" in msg
    assert "--model-arg" in msg and "--size" in msg
    with pytest.raises(CheckpointError) as e:  # another architecture altogether
        import_weights(src, tmp_path / "out", "resnet18", CLASSES, SIZE)
    msg = str(e.value)
    assert "w.pt do not fit TorchvisionResNet: missing keys: bn1.bias, bn1.num_batches_tracked" in msg
    assert "unexpected keys: fc6.1.bias, fc6.1.weight" in msg
    assert "weights are of another architecture" in msg and "--model-arg" not in msg
    assert not (tmp_path / "out.json").exists()


def test_unknown_arch_lists_registered_names(tmp_path):
    src = write_weights(make_model(), tmp_path / "w.pt", "pt")
    with pytest.raises(CheckpointError) as e:
        import_weights(src, tmp_path / "out", "alexnett", CLASSES, SIZE)
    assert str(e.value) == f"unknown model 'alexnett'; known models: {', '.join(list_models())}"
    with pytest.raises(CheckpointError, match="cannot build alexnet_style .* unexpected keyword argument 'depth'"):
        import_weights(src, tmp_path / "out", "alexnet_style", CLASSES, SIZE, arch_kwargs={"depth": 3})
    with pytest.raises(CheckpointError, match="needs inputs of at least 16 px, got 8"):
        import_weights(src, tmp_path / "out", "alexnet_style", CLASSES, 8, arch_kwargs=KWARGS)


def test_bad_classes_and_settings(tmp_path):
    src = write_weights(make_model(), tmp_path / "w.pt", "pt")
    args = (src, tmp_path / "out", "alexnet_style")
    with pytest.raises(CheckpointError, match="repeated: cat"):
        import_weights(*args, ["cat", "dog", "cat"], SIZE, arch_kwargs=KWARGS)
    with pytest.raises(CheckpointError, match="none may be empty"):
        import_weights(*args, ["cat", "", "dog"], SIZE, arch_kwargs=KWARGS)
    with pytest.raises(CheckpointError, match="unknown resize mode 'crop'"):
        import_weights(*args, CLASSES, SIZE, arch_kwargs=KWARGS, resize="crop")
    with pytest.raises(CheckpointError, match="divide values for 0-255 pixels by 255"):
        import_weights(*args, CLASSES, SIZE, arch_kwargs=KWARGS,
                       normalization=Normalization((123.7, 116.3, 103.5), (58.4, 57.1, 57.4)))
    assert not (tmp_path / "out.json").exists()


def test_pickle_with_code_is_refused_unrun(tmp_path):
    marker = tmp_path / "pwned"
    src = tmp_path / "evil.pt"
    torch.save({**make_model().state_dict(), "extra": Evil(marker)}, src)
    with pytest.raises(CheckpointError) as e:
        import_weights(src, tmp_path / "out", "alexnet_style", CLASSES, SIZE, arch_kwargs=KWARGS)
    assert "refused to load" in str(e.value) and "weights_only=True" in str(e.value)
    assert not marker.exists()
    assert not (tmp_path / "out.json").exists()


class Custom:
    """An ordinary class defined here: loading it needs code, so it must be refused."""

    def __init__(self) -> None:
        self.weight = torch.ones(2)


def test_custom_class_object_is_refused(tmp_path):
    src = tmp_path / "obj.pt"
    torch.save({"state_dict": make_model().state_dict(), "extra": Custom()}, src)
    with pytest.raises(CheckpointError) as e:
        import_weights(src, tmp_path / "out", "alexnet_style", CLASSES, SIZE, arch_kwargs=KWARGS)
    assert "refused to load" in str(e.value)
    assert "torch.save(model.state_dict()" in str(e.value)


def test_missing_weights_file(tmp_path):
    with pytest.raises(CheckpointError, match="no weights file at .*nothing.pt"):
        import_weights(tmp_path / "nothing.pt", tmp_path / "out", "alexnet_style", CLASSES, SIZE, arch_kwargs=KWARGS)


def test_refuses_to_overwrite(tmp_path):
    first, second = make_model(1), make_model(2)
    a = write_weights(first, tmp_path / "a.pt", "pt")
    b = write_weights(second, tmp_path / "b.pt", "pt")
    import_weights(a, tmp_path / "ck", "alexnet_style", CLASSES, SIZE, arch_kwargs=KWARGS)
    before = (tmp_path / "ck.json").read_text()
    with pytest.raises(CheckpointError) as e:
        import_weights(b, tmp_path / "ck", "alexnet_style", CLASSES, SIZE, arch_kwargs=KWARGS)
    assert f"{tmp_path / 'ck.json'} already exists" in str(e.value) and "--force" in str(e.value)
    assert (tmp_path / "ck.json").read_text() == before
    assert_same_state(first.state_dict(), load_checkpoint(tmp_path / "ck").model.state_dict())
    # weights without a sidecar are not silently replaced either
    (tmp_path / "ck.json").unlink()
    with pytest.raises(CheckpointError, match="ck.safetensors already exists"):
        import_weights(b, tmp_path / "ck", "alexnet_style", CLASSES, SIZE, arch_kwargs=KWARGS)
    ck = import_weights(b, tmp_path / "ck", "alexnet_style", ["x", "y", "z"], SIZE, arch_kwargs=KWARGS,
                        overwrite=True)
    assert ck.meta.classes == ["x", "y", "z"]
    assert_same_state(second.state_dict(), load_checkpoint(tmp_path / "ck").model.state_dict())


# --------------------------------------------------------------------------------------------
# Command line


def cli_import(src, out, *extra: str) -> list[str]:
    return ["import", str(src), "--arch", "alexnet_style", "--size", str(SIZE), "--out", str(out),
            "--model-arg", "width=0.125", "--model-arg", "fc6=16", "--model-arg", "fc7=32", *extra]


def test_cli_import_with_classes_file(tmp_path, capsys):
    model = make_model(4)
    src = write_weights(model, tmp_path / "mine.pth", "pt")
    (tmp_path / "classes.txt").write_text("cat\n  dog \n\nbird\n")
    rc = main(cli_import(src, tmp_path / "ck" / "mine", "--classes-file", str(tmp_path / "classes.txt"),
                         "--resize", "center_crop", "--mean", "0.5", "0.4", "0.3", "--std", "0.2", "0.25", "0.3",
                         "--dataset", "simpsons"))
    assert rc == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"saved {tmp_path / 'ck' / 'mine.safetensors'} and {tmp_path / 'ck' / 'mine.json'}"
    assert out[1].startswith("mine: alexnet_style {'width': 0.125, 'fc6': 16, 'fc7': 32} (")
    assert out[1].endswith("parameters), 3 classes, input 32x32 (center_crop), from mine.pth")
    ck = load_checkpoint(tmp_path / "ck" / "mine", runtime=CPU32)
    assert ck.meta.classes == CLASSES
    assert ck.meta.preprocess == Preprocess(SIZE, "center_crop")
    assert ck.meta.normalization == Normalization((0.5, 0.4, 0.3), (0.2, 0.25, 0.3))
    assert ck.meta.dataset == "simpsons"
    with torch.no_grad():
        assert torch.equal(ck.model(fixed_input()), model(fixed_input()))

    assert main(["info", str(tmp_path / "ck" / "mine")]) == 0
    info = capsys.readouterr().out
    assert f"imported from mine.pth (sha256 {file_sha256(src)[:12]}), no training history" in info
    assert "3 classes: cat, dog, bird" in info


def test_cli_import_classes_and_force(tmp_path, capsys):
    src = write_weights(make_model(5), tmp_path / "w.pt", "pt")
    assert main(cli_import(src, tmp_path / "ck", "--classes", "a, b,c")) == 0
    assert load_checkpoint(tmp_path / "ck").meta.classes == ["a", "b", "c"]
    assert load_checkpoint(tmp_path / "ck").meta.normalization == IMAGENET
    capsys.readouterr()
    assert main(cli_import(src, tmp_path / "ck", "--classes", "x,y,z")) == 2
    assert "cnnviz import: error:" in capsys.readouterr().err
    assert load_checkpoint(tmp_path / "ck").meta.classes == ["a", "b", "c"]
    assert main(cli_import(src, tmp_path / "ck", "--classes", "x,y,z", "--force")) == 0
    assert load_checkpoint(tmp_path / "ck").meta.classes == ["x", "y", "z"]


@pytest.mark.parametrize("case, expected", [
    ("missing", "no weights file at"),
    ("mismatch", "has 3 outputs but 2 class names were given"),
    ("arch", "unknown model 'nope'; known models: alexnet, "),
    ("pickle", "refused to load"),
    ("mean_only", "give both --mean and --std"),
    ("no_classes_file", "no classes file at"),
])
def test_cli_errors_are_one_line_and_exit_2(tmp_path, capsys, case, expected):
    marker = tmp_path / "pwned"
    src = write_weights(make_model(), tmp_path / "w.pt", "pt")
    argv = cli_import(src, tmp_path / "ck", "--classes", "a,b,c")
    if case == "missing":
        argv[1] = str(tmp_path / "absent.pt")
    elif case == "mismatch":
        argv = cli_import(src, tmp_path / "ck", "--classes", "a,b")
    elif case == "arch":
        argv[3] = "nope"
    elif case == "pickle":
        torch.save({"x": Evil(marker)}, src)
    elif case == "mean_only":
        argv += ["--mean", "0.5", "0.5", "0.5"]
    elif case == "no_classes_file":
        argv = cli_import(src, tmp_path / "ck", "--classes-file", str(tmp_path / "absent.txt"))
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("cnnviz import: error: ") and expected in err
    assert err.count("\n") == 1  # one message, no traceback
    assert not marker.exists()
    assert not (tmp_path / "ck.json").exists()


def test_cli_needs_classes_size_and_out(tmp_path, capsys):
    src = write_weights(make_model(), tmp_path / "w.pt", "pt")
    for argv in (["import", str(src), "--arch", "alexnet_style", "--size", "32", "--out", str(tmp_path / "ck")],
                 ["import", str(src), "--arch", "alexnet_style", "--classes", "a,b,c", "--out", str(tmp_path / "ck")],
                 ["import", str(src), "--arch", "alexnet_style", "--classes", "a,b,c", "--classes-file", "f",
                  "--size", "32", "--out", str(tmp_path / "ck")]):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2
    err = capsys.readouterr().err
    assert "one of the arguments --classes --classes-file is required" in err
    assert "the following arguments are required: --size" in err
    assert "not allowed with argument" in err


def test_import_of_a_torchvision_resnet_saved_as_is(tmp_path):
    """A state dict of torchvision's own ResNet-18 (e.g. fine-tuned by a student) imports as is."""
    torch.manual_seed(0)
    net = torchvision.models.resnet18(weights=None, num_classes=3).eval()
    torch.save(net.state_dict(), tmp_path / "resnet18.pt")
    ckpt = import_weights(tmp_path / "resnet18.pt", tmp_path / "resnet18", "resnet18", CLASSES, 64)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ckpt.model(x), net(x))


@pytest.mark.parametrize("arch,build", [("alexnet", torchvision.models.alexnet),
                                        ("vgg11", torchvision.models.vgg11_bn)])
def test_torchvision_classifier_layout_is_adapted(arch, build):
    """torchvision's AlexNet/VGG name their last layer ``classifier.6``; ours is ``fc``. (No file
    round trip here: these weigh 0.2-0.5 GB; the import path is the one tested above.)"""
    torch.manual_seed(0)
    net = build(weights=None, num_classes=3).eval()
    ours = get_model(arch, 3, 64).eval()
    state = ours.adapt_state_dict(net.state_dict())
    assert "fc.weight" in state and not any(k.startswith("classifier.6.") for k in state)
    ours.load_state_dict(state, strict=True)
    assert ours.adapt_state_dict(ours.state_dict()).keys() == ours.state_dict().keys()  # ours: unchanged
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), net(x))
