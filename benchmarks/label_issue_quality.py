"""How well cleanlab's label-issue flags find wrong labels, measured on planted ones: a shipped
checkpoint's held-out images (CIFAR-10's 10,000 test images by default) with ``--flip`` of their
labels changed to another class at random (seeded), then Datalab run as the Mistakes page runs
it, on the same features, with the probabilities made three ways in the same run:

* ``raw``: the softmax of the single-view logits (what the page used);
* ``calibrated``: temperature-scaled, ``T`` fitted on the checkpoint's validation split (images
  it never trained on, labels untouched);
* ``calibrated + TTA``: the same temperature on the logits averaged over the checkpoint's
  test-time views (flip and shift).

Printed per variant: flags, planted flips found (recall), the share of the flags that are
planted (precision on planted; flags on images not planted may be real label errors of the
dataset, so this is a lower bound), and the ratio of each to ``raw``.

    python benchmarks/label_issue_quality.py [--model cifar10_cnn] [--flip 0.02] [--seed 0]

Needs ../shared/data/cifar10 (CNNVIZ_SHARED_DATA to move it); the features and logits are
cached (``$CNNVIZ_CACHE``) and shared with the dashboard.
"""

from __future__ import annotations

import argparse

import numpy as np

from _common import ROOT, Timer, shared_path
from cnnviz.calibration import fit_temperature
from cnnviz.checkpoints import checkpoint_data, load_checkpoint
from cnnviz.evaluate import predict_logits, softmax
from cnnviz.inspect.features import cached_features
from cnnviz.inspect.mistakes import find_data_issues


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="cifar10_cnn")
    ap.add_argument("--flip", type=float, default=0.02, help="share of the held-out labels changed")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    ckpt = load_checkpoint(ROOT / "checkpoints" / f"{a.model}.json")
    data = shared_path(ckpt.meta.dataset)
    test = checkpoint_data(ckpt.meta, data, "test", progress=True)
    val = checkpoint_data(ckpt.meta, data, "val", progress=True)
    with Timer() as t_feat:
        fs = cached_features(ckpt, test, "test", progress=True)
        vs = cached_features(ckpt, val, "val", progress=True)
    temp = fit_temperature(vs.logits, val.labels)
    with Timer() as t_tta:
        tta_logits = predict_logits(ckpt.model, test.images, ckpt.meta.normalization, runtime=ckpt.runtime,
                                    tta=ckpt.meta.tta or "flip_translate")
    rng = np.random.default_rng(a.seed)
    k = len(ckpt.meta.classes)
    n = len(test)
    planted = rng.choice(n, int(round(a.flip * n)), replace=False)
    labels = np.asarray(test.labels, np.int64).copy()
    labels[planted] = (labels[planted] + rng.integers(1, k, len(planted))) % k  # always another class
    is_planted = np.zeros(n, bool)
    is_planted[planted] = True
    variants = {"raw": softmax(fs.logits).astype(np.float64), "calibrated": temp.probs(fs.logits),
                "calibrated + TTA": temp.probs(tta_logits)}
    print(f"{a.model}: {n:,} test images, {len(planted)} labels flipped (seed {a.seed}); features "
          f"{fs.features.shape[1]}-d ({t_feat.seconds:.0f} s, cached after); temperature {temp.value:.3f} fitted on "
          f"{temp.n:,} validation images (NLL {temp.nll_before:.3f} -> {temp.nll_after:.3f}); TTA pass "
          f"{t_tta.seconds:.0f} s")
    p_given = {name: float(p[np.arange(n), labels][planted].mean()) for name, p in variants.items()}
    base = None
    print(f"{'variant':<18} {'flags':>6} {'found':>6} {'recall':>7} {'precision':>9}  {'x raw':>13}  "
          "mean p(given label) on the flips")
    for name, probs in variants.items():
        with Timer() as t:
            issues = find_data_issues(labels, probs, fs.features, out_of_sample=True)
        flags = issues.is_label_issue
        found = int((flags & is_planted).sum())
        recall = found / len(planted)
        precision = found / max(int(flags.sum()), 1)
        base = base or (recall, precision)
        ratio = f"{recall / max(base[0], 1e-9):.2f}x / {precision / max(base[1], 1e-9):.2f}x"
        print(f"{name:<18} {int(flags.sum()):>6} {found:>6} {recall:>7.3f} {precision:>9.3f}  {ratio:>13}  "
              f"{p_given[name]:.3f}   ({t.seconds:.0f} s)")


if __name__ == "__main__":
    main()
