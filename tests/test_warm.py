"""The warm-up: cnnviz.warm fills exactly the caches the pages read, and the dashboard runs it in
the background when a model is first opened, so a heavy page's first visit reads them."""

from __future__ import annotations

import time

import pytest

from cnnviz.checkpoints import checkpoint_data, held_out_data, load_checkpoint
from cnnviz.inspect.features import feature_cache_path
from cnnviz.warm import STEPS, middle_convolution, warm_caches

from dashboard_fixtures import dashboard_env, errors, open_page, tiny_dashboard  # noqa: F401 (fixtures)


def _files(cache) -> set[str]:
    return {p.relative_to(cache).parts[0] for p in cache.rglob("*") if p.is_file()}


def test_warm_caches_fills_what_the_pages_read(dashboard_env, cache_dir):
    ckpt = load_checkpoint(dashboard_env.checkpoints / "tiny.json")
    called = []
    report = warm_caches(ckpt, dashboard_env.tree, done=called.append)
    assert called == list(STEPS) and set(report.seconds) | set(report.skipped) == set(STEPS)
    assert middle_convolution(ckpt.model) == "features.8"  # conv3 of five: features.0, .4, .8, .11, .14
    held, test = held_out_data(ckpt.meta, dashboard_env.tree)
    train = checkpoint_data(ckpt.meta, dashboard_env.tree, "train")
    for ds, split in ((train, "train"), (test, held)):
        assert feature_cache_path(ckpt, ds, split).is_file()
    assert {"features", "units", "visualise"} <= _files(cache_dir)
    again = warm_caches(ckpt, dashboard_env.tree)  # everything read back: far quicker
    assert sum(again.seconds.values()) < sum(report.seconds.values())


def test_the_dashboard_warms_up_in_the_background(dashboard_env, cache_dir, monkeypatch):
    import dashboard.warm_up as warm_up  # noqa: PLC0415

    monkeypatch.setenv("CNNVIZ_WARM", "1")
    warm_up._start.clear()
    at = open_page("model")  # any page opens the model: the warm-up starts
    assert not at.exception, errors(at)
    ckpt = load_checkpoint(dashboard_env.checkpoints / "tiny.json")
    warm = warm_up.start(ckpt, str(dashboard_env.data / "folder"))
    deadline = time.time() + 120
    while any(warm.running(s) for s in STEPS) and time.time() < deadline:
        time.sleep(0.2)
    assert warm.error is None and warm.report is not None and not any(warm.running(s) for s in STEPS)
    assert "features" in warm.report.seconds and "units" in warm.report.seconds
    held, test = held_out_data(ckpt.meta, dashboard_env.tree)
    assert feature_cache_path(ckpt, test, held).is_file()
    nb = open_page("neighbours")  # reads what the warm-up wrote
    assert not nb.exception, errors(nb)
    monkeypatch.setenv("CNNVIZ_WARM", "0")
    assert warm_up.start(ckpt, str(dashboard_env.data / "folder")) is None
    warm_up._start.clear()


@pytest.mark.parametrize("value,on", [("0", False), ("1", True), ("", True)])
def test_warm_up_switch(monkeypatch, value, on):
    import dashboard.warm_up as warm_up  # noqa: PLC0415

    monkeypatch.setenv("CNNVIZ_WARM", value)
    assert warm_up.enabled() is on


def test_the_time_left_on_a_progress_bar():
    from dashboard.state import time_left  # noqa: PLC0415

    assert time_left(10, 100, 4.0) == " · about 36 s left"
    assert time_left(10, 100, 20.0) == " · about 3 min left"  # 180 s
    assert time_left(2, 100, 10.0) == ""  # under 5% done: no guess yet
    assert time_left(50, 100, 1.0) == ""  # under 2 s: no guess yet
    assert time_left(100, 100, 30.0) == "" and time_left(0, 0, 5.0) == ""
