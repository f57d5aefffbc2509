"""Single-view class probabilities: the one path by which every page gets an image's
probabilities (no test-time augmentation, so the same image prints the same numbers everywhere).

The feature cache (:func:`cnnviz.inspect.features.cached_features`) stores each image's logits
from ``model.head`` applied in float32 to its penultimate features; an image computed on its
own goes through that very pass (:func:`~cnnviz.inspect.features.features_and_logits`), which
gives the same probabilities to about 1e-7 whatever the batch (measured on the shipped CIFAR-10
and Simpsons models, bf16 on CPU). ``predict_images`` instead runs the checkpoint's test-time
augmentation: the Predict page's numbers, labelled as such.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .checkpoints import Checkpoint
from .evaluate import softmax
from .inspect.features import FeatureSet, features_and_logits
from .predict import Predictions
from .runtime import Runtime

SINGLE_VIEW = "single view (no test-time augmentation)"


def single_view_predictions(ckpt: Checkpoint, images: np.ndarray | None, ids: Sequence[str], *,
                            cached: FeatureSet | None = None, rows: Sequence[int] | None = None,
                            runtime: Runtime | None = None) -> Predictions:
    """Probabilities of one view of each image (``tta`` ``"none"``), one per id. ``images``:
    ``(N, S, S, 3) uint8``, put through the pass the feature cache uses, on ``runtime`` (default:
    the checkpoint's). With ``cached`` (this checkpoint's features of the split the images come
    from) the cached logits of ``rows`` (the images' positions in it; default: every row) are
    used instead and ``images`` may be None."""
    if cached is not None:
        if cached.checkpoint != ckpt.sha256:
            raise ValueError(f"the cached features are of another checkpoint ({cached.checkpoint[:12]}, "
                             f"not {ckpt.sha256[:12]})")
        logits = cached.logits if rows is None else cached.logits[np.asarray(rows, np.int64)]
    elif images is None:
        raise ValueError("give the images, or the cached features and the rows of the images in them")
    else:
        logits = features_and_logits(ckpt, images, runtime=runtime)[1]
    if len(logits) != len(ids):
        raise ValueError(f"{len(ids)} ids for {len(logits)} images")
    return Predictions(list(ids), list(ckpt.meta.classes), softmax(logits.astype(np.float64)), [], tta="none")
