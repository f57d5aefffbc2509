"""Training, metrics, train_checkpoint and the command line, on tiny data and tiny models."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
import torch

from cnnviz.checkpoints import load_checkpoint, load_snapshots
from cnnviz.cli import main
from cnnviz.data import ImageDataset, Preprocess, load_dataset, stratified_split
from cnnviz.evaluate import EvalReport, evaluate, predict_logits, report_from_predictions
from cnnviz.inputs import Normalization, random_affine, to_input
from cnnviz.models import get_model
from cnnviz.runtime import resolve_runtime
from cnnviz.train import TrainConfig, fit, train_checkpoint

CPU32 = resolve_runtime("cpu", "fp32")
SEPARABLE_COLORS = np.array([(220, 40, 40), (40, 200, 60), (50, 60, 210)])


def separable(n_per_class: int = 16, size: int = 8, seed: int = 0) -> ImageDataset:
    """3 colour classes of noisy solid ``size`` px images."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(3), n_per_class).astype(np.int64)
    base = SEPARABLE_COLORS[labels][:, None, None, :]
    images = np.clip(base + rng.integers(-20, 21, (len(labels), size, size, 3)), 0, 255).astype(np.uint8)
    return ImageDataset(images, labels, ["blue", "green", "red"], [str(i) for i in range(len(labels))],
                        f"sep{seed}", Preprocess(size))


def tiny_model(seed: int = 0):
    torch.manual_seed(seed)
    return get_model("cifar_fast", 3, 8, widths=(8, 8, 8))


def config(**kw) -> TrainConfig:
    base = dict(epochs=6, batch_size=16, lr=0.5, device="cpu", precision="fp32", flip="none",
                translate=0, seed=0)
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def trained():
    """A tiny model fitted once on the separable data, with its history and snapshots."""
    ds = separable()
    norm = Normalization.fit(ds.images)
    model = tiny_model()
    result = fit(model, ds, None, config(snapshot_epochs=(2, 6)), norm, progress=False)
    return model, ds, norm, result


# --------------------------------------------------------------------------------------------
# fit


def test_fit_learns(trained):
    model, ds, norm, result = trained
    h = result.history
    assert [r.epoch for r in h] == [1, 2, 3, 4, 5, 6]
    assert h[0].train_loss > h[-1].train_loss + 0.1
    assert h[-1].train_acc >= 0.9
    assert h[-1].val_acc is None and h[-1].val_loss is None
    assert all(r.images_per_s > 0 for r in h)
    report = evaluate(model, ds.images, ds.labels, ds.classes, norm, CPU32)
    assert report.accuracy >= 0.9
    assert report.n == len(ds)


def test_fit_leaves_the_model_in_eval_mode(trained):
    model = trained[0]
    assert not model.training
    assert not any(m.training for m in model.modules())


def test_fit_returns_the_chosen_snapshots(trained):
    model, _, _, result = trained
    assert sorted(result.snapshots) == [2, 6]
    s2, s6 = result.snapshots[2], result.snapshots[6]
    assert sorted(s2) == sorted(model.state_dict())
    assert not torch.equal(s2["fc.weight"], s6["fc.weight"])  # training went on after epoch 2
    for k, v in model.state_dict().items():  # the last epoch's snapshot is the final model
        assert torch.equal(s6[k], v), k
        assert s6[k].device.type == "cpu"
    s6["fc.weight"].add_(1.0)  # snapshots are copies, not views of the live weights
    assert not torch.equal(s6["fc.weight"], model.state_dict()["fc.weight"])


def test_fit_is_reproducible():
    ds = separable()
    norm = Normalization.fit(ds.images)
    cfg = config(epochs=3, flip="random", translate=1)
    runs = []
    for _ in range(2):
        model = tiny_model(0)
        runs.append((fit(model, ds, None, cfg, norm, progress=False), model.state_dict()))
    (a, sa), (b, sb) = runs
    assert [r.train_loss for r in a.history] == [r.train_loss for r in b.history]
    assert [r.train_acc for r in a.history] == [r.train_acc for r in b.history]
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
    other = fit(tiny_model(0), ds, None, config(epochs=3, flip="random", translate=1, seed=1), norm,
                progress=False)
    assert [r.train_loss for r in other.history] != [r.train_loss for r in a.history]


def test_fit_with_validation_reports_it():
    ds = separable()
    val = separable(n_per_class=4, seed=1)
    norm = Normalization.fit(ds.images)
    seen = []
    result = fit(tiny_model(), ds, val, config(epochs=2), norm, progress=False, on_epoch=seen.append)
    assert seen == result.history
    for r in result.history:
        assert 0.0 <= r.val_acc <= 1.0 and r.val_loss > 0
        assert r.val_acc * len(val) == pytest.approx(round(r.val_acc * len(val)))


def test_fit_refuses_an_empty_training_set():
    ds = separable().subset([])
    with pytest.raises(ValueError, match="empty"):
        fit(tiny_model(), ds, None, config(), Normalization((0.5,) * 3, (0.25,) * 3), progress=False)


def test_lookahead_keeps_the_training_of_a_short_run():
    """A run shorter than lookahead_every steps (a small dataset with the cifar_fast recipe)
    must not end on the initial weights."""
    ds = separable()
    norm = Normalization.fit(ds.images)
    model = tiny_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = config(epochs=3, batch_size=48, lookahead_every=5, lookahead_decay=0.77)  # 3 steps
    fit(model, ds, None, cfg, norm, progress=False)
    after = model.state_dict()
    assert not torch.equal(before["block1.conv1.weight"], after["block1.conv1.weight"])
    assert not torch.equal(before["fc.weight"], after["fc.weight"])


def test_normalization_of_a_constant_channel_stays_finite():
    images = separable().images.copy()
    images[..., 2] = 0  # e.g. every image has no blue at all
    norm = Normalization.fit(images)
    assert all(s > 0 for s in norm.std)
    assert torch.isfinite(to_input(images[:4], norm)).all()


def test_random_affine_known_transforms():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8)
    g = torch.Generator().manual_seed(0)
    assert random_affine(x, 0.0, 0.0, g) is x  # off: the very same tensor
    assert torch.allclose(random_affine(x, 1e-9, 1e-9, g), x, atol=1e-3)  # no zoom, no turn: identity
    img = torch.rand(64, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    out = random_affine(img, 0.3, 90.0, g)
    assert out.shape == img.shape and torch.isfinite(out).all()
    assert out.min() >= 0 and out.max() <= 1 + 1e-6  # bilinear + reflection never leave the range


def test_random_affine_zoom_in_doubles_a_centred_square():
    img = torch.zeros(1, 1, 16, 16)
    img[..., 6:10, 6:10] = 1.0  # a 4x4 square in the centre
    g = torch.Generator().manual_seed(0)
    # scale 1 draws a zoom in [0, 2]; find a draw near 2 by sampling many copies
    out = random_affine(img.repeat(256, 1, 1, 1), 1.0, 0.0, g)
    zoom = 1 + (2 * torch.rand(256, generator=torch.Generator().manual_seed(0)) - 1)
    i = int(torch.argmax(zoom))
    area = float(out[i].sum())
    assert zoom[i] > 1.9
    assert area == pytest.approx(16 * float(zoom[i]) ** 2, rel=0.15)  # area grows with zoom squared


def test_predict_logits_restores_the_mode(trained):
    model, ds, norm, _ = trained
    model.train()
    try:
        logits = predict_logits(model, ds.images[:5], norm, CPU32, batch_size=2)
        assert model.training
    finally:
        model.eval()
    assert logits.shape == (5, 3) and logits.dtype == np.float32
    with torch.no_grad():
        direct = model(to_input(ds.images[:5], norm)).numpy()
    np.testing.assert_allclose(logits, direct, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------------------------
# Metrics


Y_TRUE = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
Y_PRED = np.array([0, 1, 1, 1, 2, 2, 2, 0, 2])
CLASSES4 = ["a", "b", "c", "d"]  # "d": no images, never predicted


def test_report_from_predictions_by_hand():
    r = report_from_predictions(Y_TRUE, Y_PRED, CLASSES4, split="val", tta="flip")
    assert r.confusion == [[1, 2, 0, 0],
                           [0, 1, 1, 0],
                           [1, 0, 3, 0],
                           [0, 0, 0, 0]]
    assert r.n == 9
    assert r.accuracy == pytest.approx(5 / 9)
    assert r.support == [3, 2, 4, 0]
    assert r.precision == pytest.approx([1 / 2, 1 / 3, 3 / 4, 0.0], abs=1e-6)
    assert r.recall == pytest.approx([1 / 3, 1 / 2, 3 / 4, 0.0], abs=1e-6)
    assert r.f1 == pytest.approx([0.4, 0.4, 0.75, 0.0], abs=1e-6)
    # macro averages over the classes that have images (a, b, c)
    assert r.macro_precision == pytest.approx((1 / 2 + 1 / 3 + 3 / 4) / 3, abs=1e-6)
    assert r.macro_recall == pytest.approx((1 / 3 + 1 / 2 + 3 / 4) / 3, abs=1e-6)
    assert r.macro_f1 == pytest.approx((0.4 + 0.4 + 0.75) / 3, abs=1e-6)
    assert (r.split, r.tta, r.classes) == ("val", "flip", CLASSES4)
    assert EvalReport.from_dict(json.loads(json.dumps(r.to_dict()))) == r


def test_report_perfect_and_empty():
    r = report_from_predictions(np.array([0, 1, 1]), np.array([0, 1, 1]), ["x", "y"])
    assert r.accuracy == 1.0 and r.precision == [1.0, 1.0] and r.macro_f1 == 1.0
    e = report_from_predictions(np.array([], np.int64), np.array([], np.int64), ["x", "y"])
    assert e.n == 0 and e.accuracy == 0.0 and e.confusion == [[0, 0], [0, 0]]


def test_format_table_ends_with_the_accuracy_line():
    r = report_from_predictions(Y_TRUE, Y_PRED, CLASSES4)
    table = r.format_table()
    lines = table.splitlines()
    assert lines[-1] == "accuracy: 0.5556"
    assert re.fullmatch(r"accuracy: \d\.\d{4}", lines[-1])
    assert sum(1 for ln in lines if ln.startswith("accuracy:")) == 1
    row_c = next(ln for ln in lines if ln.startswith("c ") and "0.7500" in ln)
    assert row_c.split() == ["c", "0.7500", "0.7500", "0.7500", "4"]


# --------------------------------------------------------------------------------------------
# train_checkpoint and the command line


N_VAL = 6  # round(0.25 * n) per class for 8, 6, 10 images: 2, 2, 2


@pytest.fixture(scope="module")
def tiny_checkpoint(class_tree_session, tmp_path_factory):
    out = tmp_path_factory.mktemp("ckpt") / "tiny"
    ckpt = train_checkpoint(
        class_tree_session.root, out, dataset="folder", model="cifar_fast",
        model_kwargs={"widths": (8, 8, 8)}, preprocess=Preprocess(16), val_fraction=0.25,
        overrides={"epochs": 2, "precision": "fp32", "device": "cpu", "snapshot_epochs": (1, 2)},
        progress=False, cache_dir=tmp_path_factory.mktemp("ckpt-cache"),
    )
    return ckpt, class_tree_session


def test_train_checkpoint_writes_a_complete_checkpoint(tiny_checkpoint):
    ckpt, tree = tiny_checkpoint
    stem = ckpt.path.with_suffix("")
    assert ckpt.path.suffix == ".safetensors" and ckpt.path.is_file()
    assert stem.with_suffix(".json").is_file()
    meta = ckpt.meta
    assert meta.arch == "cifar_fast" and meta.arch_kwargs == {"widths": (8, 8, 8)}
    assert meta.classes == ["blue", "green", "red"]
    assert meta.preprocess == Preprocess(16) and meta.dataset == "folder"
    assert meta.train_config["epochs"] == 2 and meta.train_config["precision"] == "fp32"
    assert [h["epoch"] for h in meta.history] == [1, 2]
    assert all(h["val_acc"] is not None for h in meta.history)
    assert meta.snapshot_epochs == [1, 2] and sorted(load_snapshots(ckpt)) == [1, 2]

    n_train = sum(tree.n_train.values())
    full = load_dataset(tree.root, "train", Preprocess(16))
    assert meta.split.fingerprint == full.fingerprint and meta.split.n_total == n_train
    _, val_idx = stratified_split(full.labels, 0.25, 0)
    assert list(meta.split.val_indices) == val_idx.tolist() and len(val_idx) == N_VAL
    assert meta.info["train_images"] == n_train - N_VAL and meta.info["val_images"] == N_VAL

    assert set(meta.metrics) == {"val", "test"}
    val, test = meta.metrics["val"], meta.metrics["test"]
    assert val["n"] == N_VAL and val["support"] == [2, 2, 2] and val["split"] == "val"
    assert test["n"] == sum(tree.n_test.values()) and test["support"] == [3, 2, 4]
    for rep in (val, test):
        cm = np.array(rep["confusion"])
        assert cm.sum() == rep["n"]
        assert rep["accuracy"] == pytest.approx(np.trace(cm) / rep["n"])
        assert rep["tta"] == "flip_translate"

    # what is on disk is what was returned
    again = load_checkpoint(stem.with_suffix(".json"))
    for k, v in ckpt.model.state_dict().items():
        assert torch.equal(again.model.state_dict()[k], v), k
    assert again.sha256 == ckpt.sha256


@pytest.fixture
def ckpt_copy(tiny_checkpoint, tmp_path):
    """The trained checkpoint's files copied into this test's folder; returns the weights path."""
    ckpt, tree = tiny_checkpoint
    stem = ckpt.path.with_suffix("")
    for suffix in (".safetensors", ".json", ".snapshots.safetensors"):
        shutil.copy(stem.with_suffix(suffix), tmp_path / f"tiny{suffix}")
    return tmp_path / "tiny.safetensors", tree, ckpt


def test_cli_evaluate_val(ckpt_copy, capsys):
    weights, tree, ckpt = ckpt_copy
    rc = main(["evaluate", str(weights), "--data", str(tree.root), "--split", "val",
               "--device", "cpu", "--precision", "fp32"])
    out = capsys.readouterr().out
    assert rc == 0
    m = re.search(r"^accuracy: (\d\.\d{4})$", out, re.M)
    assert m, out
    report_path = weights.parent / "tiny.eval-val.json"
    assert report_path.is_file()
    assert f"saved {report_path}" in out
    report = json.loads(report_path.read_text())
    assert report["split"] == "val" and report["n"] == N_VAL
    assert report["classes"] == ["blue", "green", "red"]
    assert m.group(1) == f"{report['accuracy']:.4f}"
    # the same model on the same split as recorded at training time
    assert report["accuracy"] == ckpt.meta.metrics["val"]["accuracy"]
    assert report["confusion"] == ckpt.meta.metrics["val"]["confusion"]


def test_cli_evaluate_test_json(ckpt_copy, capsys):
    weights, tree, ckpt = ckpt_copy
    rc = main(["evaluate", str(weights.with_suffix(".json")), "--data", str(tree.root), "--json",
               "--tta", "none", "--device", "cpu", "--precision", "fp32"])
    out = capsys.readouterr().out
    assert rc == 0
    report = json.loads(out)
    assert report["split"] == "test" and report["tta"] == "none"
    assert report["n"] == sum(tree.n_test.values())
    assert (weights.parent / "tiny.eval-test.json").is_file()


def test_cli_info(ckpt_copy, capsys):
    weights, tree, ckpt = ckpt_copy
    assert main(["info", str(weights)]) == 0
    out = capsys.readouterr().out
    n_params = sum(p.numel() for p in ckpt.model.parameters())
    assert f"checkpoint: {weights}" in out
    assert f"architecture: cifar_fast {{'widths': (8, 8, 8)}} ({n_params:,} parameters)" in out
    assert "dataset: folder, 3 classes: blue, green, red" in out
    assert "input: 16x16 (squash), tta: flip_translate" in out
    assert f"validation split: {N_VAL} of {sum(tree.n_train.values())} (seed 0)" in out
    assert re.search(r"^val accuracy: \d\.\d{4}  macro recall: \d\.\d{4}$", out, re.M)
    assert re.search(r"^test accuracy: \d\.\d{4}", out, re.M)
    assert "trained 2 epochs" in out


def test_cli_evaluate_missing_data(ckpt_copy, tmp_path, capsys):
    weights, _, _ = ckpt_copy
    missing = tmp_path / "no-such-data"
    rc = main(["evaluate", str(weights), "--data", str(missing), "--device", "cpu"])
    captured = capsys.readouterr()
    assert rc == 2
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("cnnviz evaluate: error: no dataset at ")
    assert str(missing) in lines[0] and "--data" in lines[0]
    assert not (weights.parent / "tiny.eval-test.json").exists()


def test_cli_train_missing_data(tmp_path, capsys):
    missing = tmp_path / "nothing-here"
    rc = main(["train", "--data", str(missing), "--out", str(tmp_path / "x"), "--dataset", "folder",
               "--model", "cifar_fast", "--device", "cpu", "--precision", "fp32"])
    captured = capsys.readouterr()
    assert rc == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cnnviz train: error: no dataset at ")
    assert not (tmp_path / "x.safetensors").exists()


def test_cli_info_missing_checkpoint(tmp_path, capsys):
    rc = main(["info", str(tmp_path / "ghost")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("cnnviz info: error: no description ghost.json")


def test_cli_unknown_model(tmp_path, class_tree, capsys):
    rc = main(["train", "--data", str(class_tree.root), "--out", str(tmp_path / "x"),
               "--dataset", "folder", "--model", "lenet9000"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    assert "unknown model 'lenet9000'" in err[0] and "cifar_fast" in err[0]


def test_cli_train_end_to_end(class_tree, tmp_path, capsys):
    out = tmp_path / "cli_run"
    rc = main(["train", "--data", str(class_tree.root), "--out", str(out), "--dataset", "folder",
               "--model", "cifar_fast", "--model-arg", "widths=[8,8,8]", "--size", "8",
               "--epochs", "1", "--val-fraction", "0.25", "--device", "cpu", "--precision", "fp32"])
    text = capsys.readouterr().out
    assert rc == 0
    assert f"saved {out}.safetensors and {out}.json" in text
    assert re.search(r"^val accuracy: \d\.\d{4}  macro recall", text, re.M)
    assert re.search(r"^test accuracy: \d\.\d{4}", text, re.M)
    ck = load_checkpoint(out)
    assert ck.meta.arch_kwargs == {"widths": (8, 8, 8)} and ck.meta.preprocess == Preprocess(8)


def test_cli_models(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in ("alexnet", "alexnet_style", "cifar_fast", "resnet18", "vgg11"):
        assert re.search(rf"^{name}\s", out, re.M)


def test_first_conv_snapshots_keep_only_the_first_convolution():
    ds = separable()
    model = tiny_model()
    result = fit(model, ds, None, config(epochs=2, snapshot_epochs=(1, 2), snapshot_scope="first_conv"),
                 Normalization.fit(ds.images), progress=False)
    assert sorted(result.snapshots) == [1, 2]
    assert set(result.snapshots[1]) == {"whiten.weight", "whiten.bias"}
    assert torch.equal(result.snapshots[2]["whiten.weight"], model.whiten.weight.detach())


def test_time_budget_shortens_the_run():
    ds = separable(n_per_class=64)
    model = tiny_model()
    result = fit(model, ds, None, config(epochs=500, max_minutes=0.05), Normalization.fit(ds.images),
                 progress=False)
    assert 1 <= len(result.history) < 500


def test_test_split_that_is_the_training_set_is_refused(tiny_checkpoint):
    from cnnviz.checkpoints import checkpoint_data
    from cnnviz.data import DatasetError

    ckpt, tree = tiny_checkpoint
    with pytest.raises(DatasetError, match="training set itself"):
        checkpoint_data(ckpt.meta, tree.root / "train", "test")


# --------------------------------------------------------------------------------------------
# Settings are checked as they are made


@pytest.mark.parametrize("option, value, problem", [
    ("epochs", 0, "must be a number above 0 (got 0)"),
    ("batch_size", 2.5, "must be a whole number of at least 1 (got 2.5)"),
    ("lr", float("inf"), "must be a number above 0 (got inf)"),
    ("weight_decay", -1e-4, "must be a number of at least 0 (got -0.0001)"),
    ("warmup_fraction", 1.5, "must be a number from 0 to 1 (got 1.5)"),
    ("tta", "sideways", "must be one of none, flip, flip_translate (got 'sideways')"),
    ("nesterov", "yes", "must be true or false (got 'yes')"),
    ("snapshot_epochs", (1, -1), "must be a list of epoch numbers of at least 0 (got (1, -1))"),
    ("freeze_after", {"fc.weight": -1}, "must be a mapping of parameter names to the last epoch they train "
                                        "(got {'fc.weight': -1})"),
])
def test_train_config_refuses_values_out_of_range(option, value, problem):
    from cnnviz.train import ConfigError

    with pytest.raises(ConfigError) as e:
        TrainConfig().with_overrides(**{option: value})
    assert (e.value.field, e.value.problem) == (option, problem)
    assert str(e.value) == f"{option} {problem}"


def test_train_config_takes_json_lists_and_refuses_unknown_options():
    from cnnviz.train import ConfigError

    cfg = TrainConfig.from_dict({"snapshot_epochs": [0, 2], "epochs": 2})
    assert cfg.snapshot_epochs == (0, 2)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match="^colour is not a training option; known: epochs, batch_size, "):
        TrainConfig().with_overrides(colour="red")


def test_every_recipe_is_a_valid_config():
    from cnnviz.models import list_models, model_spec

    for name in list_models():
        TrainConfig.from_dict(model_spec(name).train_defaults)


def test_plan_training_fills_in_the_profile_and_the_recipe():
    from cnnviz.models import model_spec
    from cnnviz.train import plan_training

    plan = plan_training("folder", "cifar_fast", {"widths": [8, 8, 8]}, size=24, resize="pad",
                         overrides={"epochs": 3, "device": "cpu"})
    assert plan.arch_kwargs == {"widths": (8, 8, 8)}
    assert plan.preprocess == Preprocess(24, "pad") and plan.val_fraction == 0.1
    assert plan.config == TrainConfig.from_dict(model_spec("cifar_fast").train_defaults).with_overrides(
        epochs=3, device="cpu")
    assert plan.runtime.device.type == "cpu"


def test_time_budget_never_adds_a_step_past_the_plan():
    from cnnviz.train.optim import steps_within

    assert steps_within(100.0, 50.0, 10, 10, 5) == 10  # all planned steps done: none added
    assert steps_within(100.0, 99.0, 4, 100, 5) == 5  # over budget: still one more step
    assert steps_within(100.0, 10.0, 10, 30, 5) == 30  # time to spare: the plan, no more
    assert steps_within(100.0, 50.0, 10, 100, 5) == 19  # 50 s left at 1.1 s a step


def test_normalization_samples_the_whole_set_not_its_first_classes():
    red = np.zeros((30, 2, 2, 3), np.uint8)
    red[..., 0] = 255
    blue = np.zeros((30, 2, 2, 3), np.uint8)
    blue[..., 2] = 255
    norm = Normalization.fit(np.concatenate([red, blue]), max_images=10)  # sorted by class, like a folder
    assert norm.mean == (0.5, 0.0, 0.5)
    assert norm.std == (0.5, 0.001, 0.5)
    assert Normalization.fit(np.concatenate([red, blue])).mean == (0.5, 0.0, 0.5)
