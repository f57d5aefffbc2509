"""Can an attribution method be trusted on this model? Faithfulness (deletion / insertion, against
random and Sobel-edge maps) and the cascading-randomisation sanity check, on the same seeded
sample of held-out images, explaining the class the model predicts for each."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from ..checkpoints import Checkpoint
from ..data import ImageDataset
from ..hooks import model_view
from ..inputs import to_input
from ..runtime import device_of
from .attribution import METHODS
from .faithfulness import BASELINES, FaithfulnessReport, faithfulness_report
from .sanity import SanityResult, cascading_randomisation, randomisation_layers

__all__ = ["AttributionCheck", "attribution_check", "check_sample", "format_check"]


@dataclass(frozen=True, eq=False)
class AttributionCheck:
    """Both checks on ``indices`` of the ``split`` images (targets: the predicted classes)."""

    checkpoint: str
    split: str
    indices: np.ndarray
    targets: np.ndarray
    faithfulness: FaithfulnessReport | None
    sanity: SanityResult | None
    seconds: float

    def to_dict(self) -> dict:
        return {"checkpoint": self.checkpoint, "split": self.split, "n": int(len(self.indices)),
                "indices": self.indices.tolist(), "targets": self.targets.tolist(), "seconds": self.seconds,
                "faithfulness": self.faithfulness.to_dict() if self.faithfulness else None,
                "sanity": self.sanity.to_dict() if self.sanity else None}


def check_sample(ckpt: Checkpoint, dataset: ImageDataset, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(indices, predicted classes)`` of a seeded sample of ``n`` images (all when fewer),
    sorted; the predictions are the model's single-view ones, the logits the maps explain."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(dataset), size=min(n, len(dataset)), replace=False))
    view = model_view(ckpt.model)
    preds = []
    with torch.no_grad():
        for s in range(0, len(idx), 64):
            x = to_input(dataset.images[idx[s:s + 64]], ckpt.meta.normalization, device_of(ckpt.model))
            preds.append(view(x).argmax(1).cpu().numpy())
    return idx, np.concatenate(preds) if preds else np.zeros(0, np.int64)


def attribution_check(ckpt: Checkpoint, dataset: ImageDataset, split: str, n: int = 200,
                      methods: Sequence[str] = METHODS, steps: int = 16, seed: int = 0,
                      faithfulness: bool = True, sanity: bool = True,
                      progress: Callable[[int, int], None] | None = None, **attribution_kwargs) -> AttributionCheck:
    """Faithfulness and sanity check of ``methods`` on ``n`` seeded ``split`` images of ``dataset``.
    ``progress(done, total)`` counts maps computed (one per method and step)."""
    start = time.perf_counter()
    idx, targets = check_sample(ckpt, dataset, n, seed)
    images = dataset.images[idx]
    n_faith = len(methods) + len(BASELINES) if faithfulness else 0
    n_sanity = len(methods) * (len(randomisation_layers(ckpt.model)) + 1) if sanity else 0
    total = n_faith + n_sanity

    def part(offset: int, size: int) -> Callable[[int, int], None] | None:
        if progress is None:
            return None
        return lambda done, of: progress(offset + round(done / max(of, 1) * size), total)

    report = faithfulness_report(ckpt.model, images, ckpt.meta.normalization, targets, methods, steps=steps,
                                 progress=part(0, n_faith), **attribution_kwargs) if faithfulness else None
    result = cascading_randomisation(ckpt.model, images, ckpt.meta.normalization, targets, methods, seed=seed,
                                     progress=part(n_faith, n_sanity), **attribution_kwargs) if sanity else None
    return AttributionCheck(ckpt.name, split, idx, targets, report, result, time.perf_counter() - start)


def format_check(check: AttributionCheck, threshold: float = 0.5) -> str:
    """Both tables as plain text, for the terminal and the README."""
    lines = [f"{check.checkpoint}: {len(check.indices)} {check.split} images, explaining the predicted class "
             f"({check.seconds:.0f} s)"]
    if check.faithfulness is not None:
        f = check.faithfulness
        lines += ["", f"Faithfulness ({f.steps} steps; deletion area: lower is better, insertion: higher)",
                  f"{'method':24s} {'deletion':>16s} {'insertion':>16s} {'seconds':>8s}"]
        for r in f.rows():
            name = r["method"] + (" (baseline)" if r["kind"] == "baseline" else "")
            lines.append(f"{name:24s} {r['deletion_auc']:8.3f} ± {r['deletion_auc_std']:5.3f} "
                         f"{r['insertion_auc']:8.3f} ± {r['insertion_auc_std']:5.3f} "
                         f"{r['map_seconds'] + r['curve_seconds']:8.1f}")
    if check.sanity is not None:
        s = check.sanity
        mean, undefined, verdict, cascade = s.mean(), s.undefined(), s.verdict(threshold), s.cascade()
        lines += ["", f"Sanity check: Spearman correlation with the trained model's map as layers are "
                      f"randomised top-down ({len(s.layers)} layers; verdict: mean over the cascade below "
                      f"{threshold} or not)",
                  f"{'method':24s} " + " ".join(f"{k:>6d}" for k in range(len(s.steps)))
                  + f" {'mean':>6s} {'undefined':>9s}  verdict"]
        for i, m in enumerate(s.methods):
            lines.append(f"{m:24s} " + " ".join("   nan" if np.isnan(v) else f"{v:6.2f}" for v in mean[i])
                         + f" {cascade[m]:6.2f} {int(undefined[i, -1]):9d}  {verdict[m]}")
        lines.append("steps: " + ", ".join(f"{k} = {name}" for k, name in enumerate(s.steps)))
    return "\n".join(lines)
