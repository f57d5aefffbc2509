"""Filling, ahead of a first visit, the disk caches the dashboard's heavy pages read: the
images of both splits, their penultimate features and logits (Neighbours, Mistakes, Units'
knock-out), the held-out images' neighbour purity and PCA map (Neighbours), every training
image's peak in a middle convolution, its first channel's favourite image and knock-out (Units), the
near-duplicate threshold and cleanlab's findings (Mistakes).

Each step is the very call a page makes, so the page finds its cache and only reads it. The
dashboard runs :func:`warm_caches` in a background thread when a model is first opened (any
page); from the command line, ``cnnviz features`` fills the largest part, the features.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from torch import nn

from .checkpoints import Checkpoint, checkpoint_data, held_out_data
from .inspect.features import cached_features
from .inspect.mistakes import cached_data_issues, cached_near_duplicate_threshold
from .inspect.neighbours import NeighbourIndex
from .inspect.split_cache import cached_knockout, cached_projection, cached_purity
from .inspect.units import cached_unit_examples
from .inspect.visualise import cached_visualisation

STEPS = ("images", "features", "units", "favourite image", "knock-out", "purity", "map",
         "near-duplicate threshold", "label issues")
WARM_PURITY_K = 10  # the Neighbours page's first purity view: 10 neighbours, Euclidean distance


def middle_convolution(model: nn.Module) -> str | None:
    """The convolution in the middle of the model's forward order (the one the Units page and
    the lecture open on); None for a model without convolutions."""
    names = [n for n in model.layer_names() if isinstance(model.get_submodule(n), nn.Conv2d)]
    return names[len(names) // 2] if names else None


@dataclass
class WarmReport:
    """What :func:`warm_caches` did: ``seconds`` per step done, in order; ``skipped`` the steps
    that do not apply (with why)."""

    seconds: dict[str, float] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


def warm_caches(ckpt: Checkpoint, data: str | Path, done: Callable[[str], None] | None = None,
                cache_dir: str | Path | None = None) -> WarmReport:
    """Run, in :data:`STEPS` order, each page's cached computation for ``ckpt`` on ``data`` (a
    dataset folder or a demo gallery); ``done(step)`` is called as each step ends (also for a
    skipped one), so a page can wait for the step it needs. Errors of the data (a missing split)
    propagate: the pages report them themselves."""
    tell = done or (lambda step: None)
    report = WarmReport()
    clock = time.perf_counter()

    def step(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        report.seconds[name] = now - clock
        clock = now
        tell(name)

    def skip(name: str, why: str) -> None:
        report.skipped[name] = why
        tell(name)

    held, test = held_out_data(ckpt.meta, data, cache_dir)
    train = checkpoint_data(ckpt.meta, data, "train", cache_dir)
    step("images")
    train_fs = cached_features(ckpt, train, "train", cache_dir)
    held_fs = cached_features(ckpt, test, held, cache_dir)
    step("features")
    layer = middle_convolution(ckpt.model)
    if layer is None or not len(train):
        skip("units", "no convolution or no training images")
        skip("favourite image", "no convolution or no training images")
    else:
        cached_unit_examples(ckpt, train, "train", layer, cache_dir)
        step("units")
        cached_visualisation(ckpt, layer, [0], cache_dir=cache_dir)
        step("favourite image")
    if layer is not None and test.labelled and len(test):
        cached_knockout(ckpt, test, held, layer, [0], held_fs.logits, cache_dir)
        step("knock-out")
    else:
        skip("knock-out", "no convolution or no labelled held-out images")
    if test.labelled and len(test) and len(train) >= WARM_PURITY_K:
        index = NeighbourIndex(train_fs.features, metrics=("euclidean",))
        cached_purity(ckpt, train, test, held, "features", WARM_PURITY_K, "euclidean", index, held_fs.features,
                      cache_dir)
        del index
        pixels = NeighbourIndex.from_images(train.images)
        cached_purity(ckpt, train, test, held, "pixels", WARM_PURITY_K, "euclidean", pixels, cache_dir=cache_dir)
        del pixels
        step("purity")
    else:
        skip("purity", f"no labelled held-out images or fewer than {WARM_PURITY_K} training images")
    if len(test) >= 3:
        cached_projection(ckpt, test, held, "pca", held_fs.features, cache_dir)
        step("map")
    else:
        skip("map", "fewer than 3 held-out images")
    if len(train) >= 2:
        cached_near_duplicate_threshold(ckpt, train, cache_dir)
        step("near-duplicate threshold")
    else:
        skip("near-duplicate threshold", "fewer than 2 training images")
    if test.labelled and len(test):
        try:
            cached_data_issues(ckpt, test, held, held_fs.features, held_fs.logits, cache_dir)
            step("label issues")
        except ValueError as e:  # cleanlab cannot run on these images; the page says why
            skip("label issues", str(e))
    else:
        skip("label issues", "the held-out images carry no labels")
    return report
