"""Several processes (torchrun, gloo on the CPU) against one: training follows the same loss
curve, whole-dataset passes give the same numbers, rank 0 alone writes, a failing rank stops
the run. Two processes on tiny data; each multi-process test takes a few seconds.

Library tests spawn two processes with ``torch.multiprocessing`` (the workers below); command
line tests run ``python -m torch.distributed.run --standalone --nproc-per-node 2`` (torchrun)
as a subprocess, with a timeout so a hang fails instead of blocking.
"""

from __future__ import annotations

import datetime
import json
import os
import pickle
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from cnnviz.train.parallel import GlobalBatchNorm, global_batchnorm
from cnnviz import distributed
from cnnviz.checkpoints import Checkpoint, CheckpointMeta, checkpoint_data, load_checkpoint
from cnnviz.cli import main
from cnnviz.data import ImageDataset, Preprocess
from cnnviz.evaluate import evaluate_checkpoint, predict_logits
from cnnviz.inputs import Normalization
from cnnviz.inspect.features import cached_features, extract_features, feature_cache_path
from cnnviz.inspect.units import knocked_logits, unit_examples
from cnnviz.models import get_model
from cnnviz.runtime import resolve_runtime
from cnnviz.train import ConfigError, TrainConfig, fit, train_checkpoint

CPU32 = resolve_runtime("cpu", "fp32")
COLORS = np.array([(220, 40, 40), (40, 200, 60), (50, 60, 210)])
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
# Relative tolerance of the epoch losses of two processes against one with the same global batch.
# Without BatchNorm, or with sync_bn, both follow the same gradients and differ only in the order
# floats are summed, which max-pooling and 6 epochs at lr 0.5 amplify a little (measured: at most
# 4e-6 of the loss; 2e-3 on a weight of about 1). With BatchNorm on each process's half batch the
# statistics differ (8 images instead of 16), so the curves drift apart (measured: 4%).
SAME_CURVE = 5e-5
SAME_WEIGHTS = 5e-3
OWN_STATISTICS = 0.1


def colours(n_per_class: int = 16, size: int = 8, seed: int = 0) -> ImageDataset:
    """3 colour classes of noisy solid images, in class order (as a folder loads them)."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(3), n_per_class).astype(np.int64)
    images = np.clip(COLORS[labels][:, None, None, :] + rng.integers(-20, 21, (len(labels), size, size, 3)),
                     0, 255).astype(np.uint8)
    return ImageDataset(images, labels, ["blue", "green", "red"], [f"{i}.png" for i in range(len(labels))],
                        f"col{seed}", Preprocess(size))


def bn_model() -> nn.Module:
    """cifar_fast, narrow: BatchNorm after every convolution."""
    torch.manual_seed(0)
    return get_model("cifar_fast", 3, 8, widths=(8, 8, 8))


class NoNorm(nn.Module):
    """A small CNN without BatchNorm: nothing in it depends on which images share a batch."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.act = nn.GELU()
        self.fc = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.act(self.conv(x)).mean((2, 3)))


def config(**kw) -> TrainConfig:
    base = dict(epochs=6, batch_size=16, lr=0.5, device="cpu", precision="fp32", flip="none", translate=0, seed=0)
    return TrainConfig(**(base | kw))


# Each case: (model, config, validation images?). "sync": odd batch (shares of 8 and 7 images),
# class-weighted label-smoothed loss, random flips (drawn per image from the order's generator, so
# the same on every rank), lookahead, a parameter frozen after epoch 1 (the wrapper is rebuilt).
CURVES = {
    "no_norm": (NoNorm, dict(lr=0.1), False),
    "sync": (bn_model, dict(sync_bn=True, batch_size=15, class_balance="loss", label_smoothing=0.1, flip="random",
                            lookahead_every=2, lookahead_decay=0.5, freeze_after={"whiten.bias": 1}), True),
    "own_statistics": (bn_model, dict(snapshot_epochs=(0, 6)), False),
}


def fit_case(name: str):
    make, kw, with_val = CURVES[name]
    ds = colours()
    norm = Normalization.fit(ds.images)
    model = make()
    result = fit(model, ds, colours(4, seed=1) if with_val else None, config(**kw), norm, progress=False)
    return result, {k: v.detach().clone() for k, v in model.state_dict().items()}


class _FastClock:
    """A stand-in for the ``time`` module whose ``perf_counter`` runs ``k`` times too fast."""

    def __init__(self, k: float):
        self.k, self.t0 = k, time.perf_counter()

    def perf_counter(self) -> float:
        return self.t0 + (time.perf_counter() - self.t0) * self.k


def budget_case():
    """A 1-minute budget for 20 epochs, which rank 0 (clock 1000x too fast) finds far too little
    and rank 1 (true clock) plenty: rank 0's plan must be the one both follow."""
    from cnnviz.train import loop

    ds = colours()
    model = bn_model()
    real = loop.time
    if distributed.rank() == 0:
        loop.time = _FastClock(1000.0)
    try:
        result = fit(model, ds, None, config(epochs=20, max_minutes=1.0), Normalization.fit(ds.images),
                     progress=False)
    finally:
        loop.time = real
    return [r.train_loss for r in result.history], float(sum(v.double().sum() for v in model.state_dict().values()))


def pass_model() -> Checkpoint:
    """A checkpoint of the narrow cifar_fast (whitening as initialised) on 8-px images."""
    ds = colours()
    meta = CheckpointMeta(arch="cifar_fast", classes=ds.classes, preprocess=Preprocess(8),
                          normalization=Normalization.fit(ds.images), arch_kwargs={"widths": (8, 8, 8)})
    return Checkpoint(bn_model().eval(), meta, None, "c" * 64, CPU32)


PASS_IMAGES = 37  # in batches of 8: 5 batches, 3 on rank 0 and 2 (the last one short) on rank 1


def passes(ckpt: Checkpoint, dist_: bool, cache: Path) -> dict:
    ds = colours(13).subset(list(range(PASS_IMAGES)))
    norm, model = ckpt.meta.normalization, ckpt.model
    ex = unit_examples(model, ds.images, "block2.conv1", norm, CPU32, batch_size=8, distributed=dist_)
    fs = cached_features(ckpt, ds, "train", cache_dir=cache, batch_size=8, distributed=dist_)
    return {"features": extract_features(ckpt, ds.images, batch_size=8, distributed=dist_),
            "logits": predict_logits(model, ds.images, norm, CPU32, batch_size=8, tta="flip", distributed=dist_),
            "knocked": knocked_logits(model, ds.images, "block2.conv1", [1, 3], norm, CPU32, batch_size=8,
                                      distributed=dist_),
            "peak": ex.peak, "where": ex.where, "map_size": ex.map_size,
            "cached": (fs.features, fs.logits), "cache_path": feature_cache_path(ckpt, ds, "train", cache)}


def _library_worker(rank: int, world: int, port: int, out: str) -> None:
    """One rank of the library tests: every case above, results pickled to ``out/rank<r>.pkl``."""
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world, timeout=datetime.timedelta(seconds=60))
    try:
        res = {"curves": {name: fit_case(name) for name in CURVES}, "budget": budget_case(),
               "passes": passes(pass_model(), True, Path(out) / "cache")}
        with open(Path(out) / f"rank{rank}.pkl", "wb") as f:
            pickle.dump(res, f)
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    """Both ranks' results of every library case (one spawn of two processes, 60 s at most)."""
    out = tmp_path_factory.mktemp("ranks")
    ctx = mp.start_processes(_library_worker, args=(2, free_port(), str(out)), nprocs=2, join=False,
                             start_method="spawn")
    deadline = time.monotonic() + 90
    while not ctx.join(timeout=1):
        if time.monotonic() > deadline:
            for p in ctx.processes:
                p.terminate()
            pytest.fail("two gloo processes did not finish in 90 s")
    return [pickle.loads((out / f"rank{r}.pkl").read_bytes()) for r in range(2)]


# --------------------------------------------------------------------------------------------
# Training: two processes against one


def relative_gap(a: list[float], b: list[float]) -> float:
    return max(abs(x - y) / abs(x) for x, y in zip(a, b))


@pytest.mark.parametrize("name", ["no_norm", "sync"])
def test_two_processes_follow_the_single_process_curve(two_ranks, name):
    single, single_state = fit_case(name)
    for rank in two_ranks:
        result, state = rank["curves"][name]
        assert [r.epoch for r in result.history] == [r.epoch for r in single.history]
        assert relative_gap([r.train_loss for r in single.history], [r.train_loss for r in result.history]) < SAME_CURVE
        assert [r.train_acc for r in result.history] == [r.train_acc for r in single.history]
        assert result.world_size == 2 and single.world_size == 1
        for k, v in single_state.items():
            torch.testing.assert_close(state[k], v, rtol=0, atol=SAME_WEIGHTS)
    if name == "sync":  # validation is shared too, and the same on both ranks
        val = [(r.val_loss, r.val_acc) for r in two_ranks[0]["curves"][name][0].history]
        assert val == [(r.val_loss, r.val_acc) for r in two_ranks[1]["curves"][name][0].history]
        assert relative_gap([v for v, _ in val], [r.val_loss for r in single.history]) < SAME_CURVE
        assert [a for _, a in val] == [r.val_acc for r in single.history]


def test_batchnorm_on_half_batches_stays_near_the_single_process_curve(two_ranks):
    single, _ = fit_case("own_statistics")
    (a, sa), (b, sb) = (rank["curves"]["own_statistics"] for rank in two_ranks)
    gap = relative_gap([r.train_loss for r in single.history], [r.train_loss for r in a.history])
    assert SAME_CURVE < gap < OWN_STATISTICS  # measurably its own curve, but close
    assert [r.train_loss for r in a.history] == [r.train_loss for r in b.history]
    for k in sa:  # the ranks hold the same model: rank 0's statistics, the averaged gradients
        assert torch.equal(sa[k], sb[k]), k


def test_the_time_budget_is_rank_0s_plan(two_ranks):
    (losses0, weights0), (losses1, weights1) = (rank["budget"] for rank in two_ranks)
    assert 1 <= len(losses0) < 20  # rank 0's fast clock cut the plan short ...
    assert losses1 == losses0 and weights1 == weights0  # ... and rank 1 (true clock) followed it


def test_snapshots_are_kept_by_rank_0_only(two_ranks):
    (a, state), (b, _) = (rank["curves"]["own_statistics"] for rank in two_ranks)
    assert sorted(a.snapshots) == [0, 6] and b.snapshots == {}
    for k, v in state.items():
        assert torch.equal(a.snapshots[6][k], v), k


# --------------------------------------------------------------------------------------------
# Whole-dataset passes: sharded over two ranks against one pass


def test_sharded_passes_equal_one_pass_exactly(two_ranks, tmp_path):
    single = passes(pass_model(), False, tmp_path / "cache")
    for rank in two_ranks:
        got = rank["passes"]
        for key in ("features", "logits", "knocked", "peak", "where"):
            assert got[key].shape == single[key].shape and got[key].dtype == single[key].dtype, key
            assert np.array_equal(got[key], single[key]), key
        assert got["map_size"] == single["map_size"]
        assert all(np.array_equal(a, b) for a, b in zip(got["cached"], single["cached"]))
    assert len(single["features"]) == PASS_IMAGES


def test_rank_0_writes_the_cache_a_single_process_writes(two_ranks, tmp_path):
    single = passes(pass_model(), False, tmp_path / "cache")
    shared = two_ranks[0]["passes"]["cache_path"]
    assert shared.name == single["cache_path"].name  # the same key: the dashboard finds it
    assert sorted(p.name for p in shared.parent.iterdir()) == [shared.name, shared.with_suffix(".npz").name]
    assert np.array_equal(np.load(shared), np.load(single["cache_path"]))
    with np.load(shared.with_suffix(".npz")) as a, np.load(single["cache_path"].with_suffix(".npz")) as b:
        assert sorted(a.files) == sorted(b.files)
        for k in a.files:
            assert np.array_equal(a[k], b[k]), k


# --------------------------------------------------------------------------------------------
# The helpers in one process: shards, and no-ops


def test_shards_are_runs_of_whole_batches_covering_every_row():
    for n, batch, world in [(37, 8, 2), (5, 250, 2), (0, 8, 3), (100, 10, 4), (1001, 100, 8)]:
        bounds = [distributed.shard_bounds(n, batch, r, world) for r in range(world)]
        assert bounds[0][0] == 0 and bounds[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))  # contiguous, in rank order
        assert all(lo % batch == 0 or lo == hi for lo, hi in bounds)  # every batch as in one pass
        sizes = [-(-(hi - lo) // batch) for lo, hi in bounds]
        assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)
        if n:
            assert bounds[0][1] > 0  # rank 0 always has a batch
    assert distributed.shard_bounds(37, 8, 0, 2) == (0, 24) and distributed.shard_bounds(37, 8, 1, 2) == (24, 37)


def test_helpers_do_nothing_in_a_single_process():
    assert not distributed.active() and distributed.rank() == 0 and distributed.world_size() == 1
    assert distributed.is_main() and distributed.describe_rank() == "" and distributed.backend() == ""
    part = np.arange(6).reshape(3, 2)
    assert distributed.gather_rows(part) is part
    idx = torch.arange(5)
    assert distributed.split_batch(idx) is idx
    assert distributed.sum_values([1, 2.5]) == [1.0, 2.5]
    assert distributed.all_agree(True) and not distributed.all_agree(False)
    assert distributed.broadcast_value(3.0) == 3.0 and distributed.broadcast_object({"a": 1}) == {"a": 1}
    assert distributed.rank_seed(7) == 7
    distributed.barrier()
    with distributed.leader_first():
        pass
    with distributed.process_group("cpu") as launch:
        assert launch is None and not dist.is_initialized()


def test_global_batchnorm_leaves_the_model_alone_and_shares_its_weights():
    model = bn_model().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    view = global_batchnorm(model)
    assert all(type(m) is not GlobalBatchNorm for m in model.modules())
    wrapped = [m for m in view.modules() if isinstance(m, GlobalBatchNorm)]
    assert len(wrapped) == sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 6
    assert {id(p) for p in view.parameters()} == {id(p) for p in model.parameters()}
    x = torch.randn(4, 3, 8, 8)
    with torch.no_grad():
        out_view = view(x)  # one process: plain BatchNorm, updating the shared running statistics
        after_view = {k: v.clone() for k, v in model.state_dict().items()}
        for k, v in before.items():
            model.state_dict()[k].copy_(v)
        out_model = model(x)
    assert torch.equal(out_view, out_model)
    for k, v in model.state_dict().items():
        assert torch.equal(after_view[k], v), k


def test_launch_is_read_from_torchruns_variables():
    assert distributed.launch_from_env({}) is None
    env = {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"}
    assert distributed.launch_from_env(env) == distributed.Launch(3, 4, 1, 2)
    with pytest.raises(distributed.DistributedError, match="start cnnviz with torchrun"):
        distributed.launch_from_env({"RANK": "4", "WORLD_SIZE": "4"})
    with pytest.raises(distributed.DistributedError, match="whole numbers"):
        distributed.launch_from_env({"RANK": "x", "WORLD_SIZE": "4"})


def test_devices_and_backends_a_user_can_get_wrong(monkeypatch):
    one = distributed.Launch(1, 4, 1, 4)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert distributed.rank_device("auto", one) == torch.device("cpu")
    with pytest.raises(distributed.DistributedError, match="CUDA is not available: use --device cpu"):
        distributed.rank_device("cuda", one)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(distributed.DistributedError,
                       match="started 4 processes on this machine but it has 2 GPUs: use --nproc-per-node 2"):
        distributed.rank_device("auto", one)
    with pytest.raises(distributed.DistributedError, match="all 4 processes of this machine on one GPU"):
        distributed.rank_device("cuda:1", one)
    assert distributed.rank_device("cuda", distributed.Launch(3, 4, 1, 2)) == torch.device("cuda", 1)
    assert distributed.rank_device(None, distributed.Launch(0, 2, 0, 1)) == torch.device("cuda", 0)
    assert distributed.pick_backend("auto", torch.device("cpu")) == "gloo"
    assert distributed.pick_backend("auto", torch.device("cuda", 1)) == "nccl"
    with pytest.raises(distributed.DistributedError, match="nccl runs on CUDA GPUs only.*use --dist-backend gloo"):
        distributed.pick_backend("nccl", torch.device("cpu"))


def test_sync_bn_is_a_checked_training_option():
    assert TrainConfig().sync_bn is False and TrainConfig(sync_bn=True).to_dict()["sync_bn"] is True
    with pytest.raises(ConfigError, match="sync_bn must be true or false"):
        TrainConfig(sync_bn="yes")


def test_cli_refuses_what_cannot_run_as_several_processes(monkeypatch, capsys, tmp_path):
    rc = main(["evaluate", str(tmp_path / "x.json"), "--dist-backend", "gloo"])  # not under torchrun
    assert rc == 2
    assert "--dist-backend gloo only applies under torchrun" in capsys.readouterr().err
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    rc = main(["predict", str(tmp_path / "x.json"), str(tmp_path), "--out", str(tmp_path / "p.csv")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "cnnviz predict: error (rank 1 of 2): cnnviz predict runs as one process: start it without torchrun" in err
    assert not (tmp_path / "p.csv").exists()


# --------------------------------------------------------------------------------------------
# The command line under torchrun


def torchrun(args: list[str], cwd: Path, timeout: float = 60, **env: str) -> subprocess.CompletedProcess:
    env = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"} | env
    return subprocess.run(TORCHRUN + args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


TINY = ["--dataset", "folder", "--model", "cifar_fast", "--model-arg", "widths=[8,8,8]", "--size", "16",
        "--device", "cpu", "--precision", "fp32"]


def test_torchrun_train_saves_one_checkpoint_from_rank_0(class_tree, tmp_path, capsys):
    out = tmp_path / "ck" / "tiny"
    run = torchrun(["-m", "cnnviz", "train", "--data", str(class_tree.root), "--out", str(out), *TINY,
                    "--epochs", "2", "--batch-size", "8", "--sync-bn", "--snapshot-epochs", "0,2"], tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.count("saved ") == 1 and run.stdout.count("test accuracy: ") == 1  # rank 0 speaks
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["info"]["world_size"] == 2 and meta["info"]["dist_backend"] == "gloo"
    assert meta["train_config"]["sync_bn"] is True and meta["train_config"]["batch_size"] == 8
    assert [h["epoch"] for h in meta["history"]] == [1, 2] and meta["snapshot_epochs"] == [0, 2]
    ckpt = load_checkpoint(out.with_suffix(".json"), runtime=CPU32)  # the same format as ever
    assert meta["metrics"]["test"]["n"] == sum(class_tree.n_test.values())
    assert not list(out.parent.glob(".*"))  # no temporaries left behind
    assert main(["info", str(ckpt.path)]) == 0
    assert "(2 processes, gloo; global batch 8, 4 per process)" in capsys.readouterr().out


@pytest.fixture(scope="module")
def tiny_ckpt(class_tree_session, tmp_path_factory):
    """A checkpoint trained in one process on the session's class tree."""
    out = tmp_path_factory.mktemp("ckpt") / "tiny"
    ckpt = train_checkpoint(class_tree_session.root, out, dataset="folder", model="cifar_fast",
                            model_kwargs={"widths": (8, 8, 8)}, preprocess=Preprocess(16),
                            overrides={"epochs": 1, "precision": "fp32", "device": "cpu"}, progress=False,
                            cache_dir=tmp_path_factory.mktemp("ckpt-cache"))
    return ckpt, class_tree_session


def test_torchrun_features_fill_the_cache_the_dashboard_reads(tiny_ckpt, tmp_path, cache_dir):
    ckpt, tree = tiny_ckpt
    run = torchrun(["-m", "cnnviz", "features", str(ckpt.path), "--data", str(tree.root), "--device", "cpu",
                    "--precision", "fp32", "--batch-size", "4"], tmp_path)  # 21 train images: 3 + 3 batches
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.strip().splitlines()
    assert [ln.split(":")[0] for ln in lines] == ["train", "test"]  # printed once, by rank 0
    here = load_checkpoint(ckpt.path, runtime=CPU32)
    for line, split in zip(lines, ("train", "test")):
        ds = checkpoint_data(here.meta, tree.root, split)  # as the dashboard loads them ($CNNVIZ_CACHE)
        path = feature_cache_path(here, ds, split)
        assert str(path) in line and f"{len(ds):,} images" in line
        shared = np.load(path)
        single = cached_features(here, ds, split, cache_dir=tmp_path / "single", batch_size=4)
        assert np.array_equal(shared, single.features)
        with np.load(path.with_suffix(".npz")) as z:
            assert np.array_equal(z["logits"], single.logits)


def test_torchrun_evaluate_reports_what_one_process_does(tiny_ckpt, tmp_path):
    ckpt, tree = tiny_ckpt
    run = torchrun(["-m", "cnnviz", "evaluate", str(ckpt.path), "--data", str(tree.root), "--device", "cpu",
                    "--precision", "fp32", "--json"], tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.strip().splitlines()
    assert len(lines) == 1
    single = evaluate_checkpoint(load_checkpoint(ckpt.path, runtime=CPU32), tree.root, runtime=CPU32)
    assert json.loads(lines[0]) == json.loads(json.dumps(single.to_dict()))


FAILING_RANK = """
import os, sys, time
from pathlib import Path
from cnnviz.cli import main
from cnnviz.train import loop

if os.environ["RANK"] == "1":
    step = loop._step

    def failing(run, *args, **kw):
        if run.step == 2:
            Path(os.environ["FAILED_AT"]).write_text(repr(time.time()))
            raise RuntimeError("rank 1 failed on purpose at step 3")
        return step(run, *args, **kw)

    loop._step = failing
sys.exit(main(sys.argv[1:]))
"""


def test_a_failing_rank_stops_the_run_with_its_error(class_tree, tmp_path):
    """Rank 1 raises in its third step while rank 0 waits for its gradients: torchrun stops
    rank 0 and exits non-zero at once, showing rank 1's error."""
    script, stamp = tmp_path / "failing_rank.py", tmp_path / "failed_at"
    script.write_text(FAILING_RANK)
    run = torchrun([str(script), "train", "--data", str(class_tree.root), "--out", str(tmp_path / "ck"), *TINY,
                    "--epochs", "5", "--batch-size", "4"], tmp_path, timeout=60, FAILED_AT=str(stamp))
    ended = time.time()
    assert run.returncode != 0
    assert ended - float(stamp.read_text()) < 10  # measured: about 1 s from the failure to torchrun's exit
    root_cause = run.stderr.split("Root Cause")[-1]
    assert "RuntimeError: rank 1 failed on purpose at step 3" in root_cause  # torchrun's summary shows it
    assert not (tmp_path / "ck.json").exists()
