"""`cnnviz train` refuses what cannot work before any work: one line, exit status 2.

Most cases point --data at a folder that does not exist: the refusal being about the argument,
not "no dataset at", shows the argument was checked before any data was read."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch

from cnnviz.checkpoints import load_checkpoint
from cnnviz.cli import main
from cnnviz.train import TrainConfig

MODEL = ["--model", "cifar_fast", "--model-arg", "widths=[8,8,8]", "--size", "8"]
RUNTIME = ["--device", "cpu", "--precision", "fp32"]
SUGGEST = "; check the model arguments (--model-arg) and the input size (--size)"
NEEDS_CLASSES = ("training needs labelled images of at least 2 classes; found {found}: use a folder with one "
                 "sub-folder of images per class (e.g. train/<class>/*.jpg) or a flat folder of <class>_<n>.jpg files")


def train_argv(data, out, *extra: str) -> list[str]:
    return ["train", "--data", str(data), "--out", str(out), "--dataset", "folder", *MODEL, *RUNTIME, *extra]


def refusal(argv: list[str], capsys, after_decoding: bool = False) -> str:
    """The one error line of a run that must exit with status 2 and print nothing else (but
    the decoding progress bar, ``after_decoding``)."""
    rc = main(argv)
    captured = capsys.readouterr()
    assert rc == 2, captured
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    if after_decoding:
        assert all(line.startswith("decoding ") for line in lines[:-1]), captured.err
        lines = lines[-1:]
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("cnnviz train: error: ")
    return lines[0][len("cnnviz train: error: "):]


@pytest.mark.parametrize("extra, message", [
    (["--epochs", "0"], "--epochs must be a number above 0 (got 0)"),
    (["--epochs", "-2"], "--epochs must be a number above 0 (got -2)"),
    (["--epochs", "nan"], "--epochs must be a number above 0 (got nan)"),
    (["--size", "0"], "--size must be a whole number of at least 1 (got 0)"),
    (["--size", "4"], "cannot build cifar_fast with widths=(8, 8, 8) at input size 4: cifar_fast needs inputs of "
                      "at least 8 px, got 4" + SUGGEST),
    (["--batch-size", "0"], "--batch-size must be a whole number of at least 1 (got 0)"),
    (["--val-fraction", "1.5"], "--val-fraction must be a number of at least 0 and below 1 (got 1.5)"),
    (["--val-fraction", "1"], "--val-fraction must be a number of at least 0 and below 1 (got 1)"),
    (["--val-fraction", "-0.1"], "--val-fraction must be a number of at least 0 and below 1 (got -0.1)"),
    (["--lr", "0"], "--lr must be a number above 0 (got 0)"),
    (["--lr", "-0.1"], "--lr must be a number above 0 (got -0.1)"),
    (["--label-smoothing", "1"], "--label-smoothing must be a number of at least 0 and below 1 (got 1)"),
    (["--threads", "0"], "--threads must be a whole number of at least 1 (got 0)"),
    (["--max-minutes", "0"], "--max-minutes must be a number above 0 (got 0)"),
    (["--seed", "-1"], "--seed must be a whole number of at least 0 (got -1)"),
    (["--model-arg", "widths=banana"],
     "cannot build cifar_fast with widths='banana' at input size 8: too many values to unpack (expected 3)" + SUGGEST),
    (["--model-arg", "depth=3"],
     "cannot build cifar_fast with widths=(8, 8, 8), depth=3 at input size 8: CifarFastNet.__init__() got an "
     "unexpected keyword argument 'depth'" + SUGGEST),
    (["--model-arg", "banana"], "--model-arg 'banana': write KEY=VALUE, e.g. width=0.5"),
    (["--model-arg", "widths=[8,8,40000]"],
     "cifar_fast with widths=(8, 8, 40000) at input size 8 would have 14,403,123,832 parameters (57.6 GB as "
     "float32), more than the 1,000,000,000 cnnviz builds" + SUGGEST),
    (["--train-arg", "momentum=1.5"], "--train-arg momentum must be a number of at least 0 and below 1 (got 1.5)"),
    (["--train-arg", "flip=sideways"], "--train-arg flip must be one of none, random, alternate (got 'sideways')"),
    (["--train-arg", "translate=-1"], "--train-arg translate must be a whole number of at least 0 (got -1)"),
    (["--train-arg", "bogus=1"], "--train-arg bogus is not a training option; known: "
                                 + ", ".join(TrainConfig.__dataclass_fields__)),
    (["--train-arg", 'freeze_after={"nope": 1}'],
     "--train-arg freeze_after names nope, which CifarFastNet does not have (its parameters: whiten.weight, "
     "whiten.bias, block1.conv1.weight, block1.norm1.weight, block1.norm1.bias, block1.conv2.weight, ...); "
     "set it to {} or to those names"),
    (["--model-arg", "stem=conv"],  # the recipe freezes the whitening's bias, which a conv stem lacks
     "--train-arg freeze_after names whiten.bias, which CifarFastNet does not have (its parameters: "
     "stem_conv.weight, stem_norm.weight, stem_norm.bias, block1.conv1.weight, block1.norm1.weight, "
     "block1.norm1.bias, ...); set it to {} or to those names"),
])
def test_arguments_out_of_range_are_refused_before_any_work(tmp_path, capsys, extra, message):
    assert refusal(train_argv(tmp_path / "no-data", tmp_path / "run", *extra), capsys) == message
    assert not any(tmp_path.glob("run*"))  # nothing written either


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present here")
def test_a_device_that_is_not_there(tmp_path, capsys):
    msg = refusal(train_argv(tmp_path / "no-data", tmp_path / "run", "--device", "cuda"), capsys)
    assert msg == "--device cannot be used here: device 'cuda' asked for but CUDA is not available: use --device cpu"


def test_an_existing_out_needs_force(class_tree, tmp_path, capsys):
    out = tmp_path / "run"
    args = train_argv(class_tree.root, out, "--epochs", "1")
    assert main(args) == 0
    capsys.readouterr()
    first = load_checkpoint(out)
    before = (tmp_path / "run.json").read_text()
    msg = refusal(train_argv(tmp_path / "no-data", out, "--epochs", "1"), capsys)  # refused before the data
    assert msg == (f"{tmp_path / 'run.json'} already exists; choose another output or overwrite it "
                   "(overwrite=True, --force on the command line)")
    assert (tmp_path / "run.json").read_text() == before
    assert main(args + ["--force", "--seed", "1"]) == 0
    assert "saved" in capsys.readouterr().out
    second = load_checkpoint(out)
    assert second.meta.train_config["seed"] == 1 and second.sha256 != first.sha256


def test_an_out_under_a_file_is_refused_before_training(tmp_path, capsys):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("not a folder")
    msg = refusal(train_argv(tmp_path / "no-data", blocker / "runs" / "run"), capsys)
    assert msg == (f"cannot save a checkpoint under {blocker}: it is a file, not a folder; "
                   "choose another output (--out)")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root may write anywhere")
def test_an_out_folder_without_write_permission_is_refused(tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        msg = refusal(train_argv(tmp_path / "no-data", locked / "run"), capsys)
    finally:
        locked.chmod(0o700)
    assert msg == f"cannot write to {locked} (Permission denied): choose another output (--out)"


def test_an_unlabelled_folder_is_refused(unlabelled, tmp_path, capsys):
    msg = refusal(train_argv(unlabelled, tmp_path / "run"), capsys, after_decoding=True)
    assert msg == NEEDS_CLASSES.format(found="3 unlabelled image(s) (numbered files name no class)")
    assert not (tmp_path / "run.json").exists()


def write_cifar_batches(root, label: int):
    """torchvision's cifar-10-batches-py with 4 random images per batch, every one of class ``label``."""
    batches = root / "cifar-10-batches-py"
    batches.mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

    def dump(name, obj):
        with open(batches / name, "wb") as f:
            pickle.dump(obj, f, protocol=2)

    dump("batches.meta", {"label_names": names})
    for b in range(1, 6):
        dump(f"data_batch_{b}", {"labels": [label] * 4, "data": rng.integers(0, 256, (4, 3072), dtype=np.uint8)})
    dump("test_batch", {"labels": [label] * 2, "data": rng.integers(0, 256, (2, 3072), dtype=np.uint8)})
    return root


def test_a_single_class_is_refused(tmp_path, capsys):
    data = write_cifar_batches(tmp_path / "cats", label=3)
    argv = ["train", "--data", str(data), "--out", str(tmp_path / "run"), "--dataset", "cifar10",
            "--model-arg", "widths=[8,8,8]", *RUNTIME]
    assert refusal(argv, capsys, after_decoding=True) == NEEDS_CLASSES.format(found="1 class (cat)")
    assert not (tmp_path / "run.json").exists()


def test_options_left_out_take_the_recipe_and_the_profile(class_tree, tmp_path, capsys):
    """The command line restates no default: what it leaves out comes from the model's recipe,
    TrainConfig and the dataset profile."""
    from cnnviz.cli import build_parser
    from cnnviz.models import model_spec

    args = build_parser().parse_args(["train", "--data", "d", "--out", "o"])
    for name in ("dataset", "model", "epochs", "batch_size", "lr", "size", "resize", "val_fraction", "seed",
                 "device", "precision", "snapshot_epochs", "threads", "max_minutes"):
        assert getattr(args, name) is None, name
    out = tmp_path / "run"
    assert main(train_argv(class_tree.root, out, "--epochs", "1")) == 0
    cfg = load_checkpoint(out).meta.train_config
    recipe = TrainConfig.from_dict(model_spec("cifar_fast").train_defaults)
    assert cfg == recipe.with_overrides(epochs=1, device="cpu", precision="fp32").to_dict()
