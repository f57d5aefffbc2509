"""Predictions and the metrics built on them: accuracy, per-class P/R/F1, confusion matrix."""

from __future__ import annotations

from dataclasses import asdict, dataclass
import contextlib
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from . import distributed as dist_
from .checkpoints import Checkpoint, checkpoint_data
from .data import DatasetError
from .inputs import TTA, Normalization, tta_logits, to_input
from .hooks import model_view
from .runtime import Progress, Runtime, check_runtime, progress_reporter, tune_cpu_process


@contextlib.contextmanager
def inference_batches(model: torch.nn.Module, images: np.ndarray, norm: Normalization,
                      runtime: Runtime | None = None, batch_size: int = 500, progress: Progress = False,
                      desc: str = "predicting"
                      ) -> Iterator[tuple[torch.nn.Module, Iterator[tuple[int, torch.Tensor]]]]:
    """Context yielding ``(view, batches)``: an eval-mode :func:`~cnnviz.hooks.model_view` of
    ``model`` and an iterator of ``(start, x)`` normalised input batches of ``images``
    (``(N, H, W, 3) uint8``), gradients off. The model is not moved or changed: ``runtime``
    (default: the model's device) must name the model's device. Progress advances per batch."""
    rt = check_runtime(model, runtime)
    if rt.device.type == "cpu":
        tune_cpu_process()
    n = len(images)
    update, close = progress_reporter(progress, n, desc)

    def batches() -> Iterator[tuple[int, torch.Tensor]]:
        for s in range(0, n, batch_size):
            yield s, to_input(images[s:s + batch_size], norm, rt.device, rt.memory_format)
            update(min(s + batch_size, n), n)

    try:
        with torch.no_grad():
            yield model_view(model), batches()
    finally:
        close()


def predict_logits(
    model: torch.nn.Module,
    images: np.ndarray,
    norm: Normalization,
    runtime: Runtime | None = None,
    batch_size: int = 500,
    tta: TTA = "none",
    progress: Progress = False,
    distributed: bool = False,
) -> np.ndarray:
    """``(N, H, W, 3) uint8`` images -> ``(N, num_classes) float32`` logits.

    Runs an eval-mode view of the model (never moved or changed) with ``runtime``'s
    precision (default: :func:`~cnnviz.runtime.runtime_for` the model).

    ``distributed``: every rank of the process group (``torchrun``) calls it with the same
    images and runs its share of the batches (:func:`cnnviz.distributed.shard_bounds`); each
    gets all the logits, the same as one process computes (progress on rank 0 only).
    """
    if distributed and dist_.active():
        lo, hi = dist_.shard_bounds(len(images), batch_size)
        part = predict_logits(model, images[lo:hi], norm, runtime, batch_size, tta,
                              progress if dist_.is_main() else False)
        return dist_.gather_rows(part)
    rt = check_runtime(model, runtime)
    out = np.zeros((len(images), int(getattr(model, "num_classes", 0))), np.float32)
    with inference_batches(model, images, norm, rt, batch_size, progress) as (view, batches):
        for s, x in batches:
            with rt.autocast():
                logits = tta_logits(view, x, tta).float()
            if out.shape[1] != logits.shape[1]:
                out = np.zeros((len(images), logits.shape[1]), np.float32)
            out[s:s + len(x)] = logits.cpu().numpy()
    return out


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of ``(N, K)`` logits, float32."""
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z, dtype=np.float64)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """``(K, K) int64``: row = true class, column = predicted class."""
    idx = np.asarray(y_true, np.int64) * num_classes + np.asarray(y_pred, np.int64)
    return np.bincount(idx, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


@dataclass(frozen=True)
class EvalReport:
    """Metrics of one evaluation. Per-class lists follow ``classes``; ``confusion`` rows are true
    classes, columns predicted."""

    classes: list[str]
    n: int
    accuracy: float
    precision: list[float]
    recall: list[float]
    f1: list[float]
    support: list[int]
    macro_precision: float
    macro_recall: float
    macro_f1: float
    confusion: list[list[int]]
    split: str = ""
    tta: str = "none"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "EvalReport":
        return cls(**d)

    def format_table(self) -> str:
        """Human-readable per-class table, confusion matrix, and a parseable accuracy line."""
        w = max(12, max(len(c) for c in self.classes))
        lines = [f"{'class':<{w}}  precision  recall     f1  support"]
        for i, c in enumerate(self.classes):
            lines.append(f"{c:<{w}}  {self.precision[i]:9.4f}  {self.recall[i]:6.4f}  "
                         f"{self.f1[i]:5.4f}  {self.support[i]:7d}")
        lines.append(f"{'macro avg':<{w}}  {self.macro_precision:9.4f}  {self.macro_recall:6.4f}  "
                     f"{self.macro_f1:5.4f}  {self.n:7d}")
        lines.append("")
        lines.append("confusion matrix (rows: true, columns: predicted)")
        cw = max(5, len(str(max(max(r) for r in self.confusion))) + 1)
        lines.append(" " * (w + 2) + "".join(f"{i:>{cw}d}" for i in range(len(self.classes))))
        for i, (c, row) in enumerate(zip(self.classes, self.confusion)):
            lines.append(f"{c:<{w}}{i:>2d}" + "".join(f"{v:>{cw}d}" for v in row))
        lines.append("")
        lines.append(f"accuracy: {self.accuracy:.4f}")
        return "\n".join(lines)


def report_from_predictions(y_true: np.ndarray, y_pred: np.ndarray, classes: Sequence[str],
                            split: str = "", tta: str = "none") -> EvalReport:
    """Metrics of predicted vs true class indices. Undefined ratios (0/0) count as 0."""
    k = len(classes)
    cm = confusion_matrix(y_true, y_pred, k)
    tp = np.diag(cm).astype(np.float64)
    support, predicted = cm.sum(1), cm.sum(0)
    prec = np.divide(tp, predicted, out=np.zeros(k), where=predicted > 0)
    rec = np.divide(tp, support, out=np.zeros(k), where=support > 0)
    f1 = np.divide(2 * prec * rec, prec + rec, out=np.zeros(k), where=(prec + rec) > 0)
    present = support > 0
    n = int(cm.sum())
    return EvalReport(
        classes=list(classes), n=n, accuracy=float(tp.sum() / max(n, 1)),
        precision=prec.round(6).tolist(), recall=rec.round(6).tolist(), f1=f1.round(6).tolist(),
        support=support.astype(int).tolist(),
        macro_precision=float(prec[present].mean()) if present.any() else 0.0,
        macro_recall=float(rec[present].mean()) if present.any() else 0.0,
        macro_f1=float(f1[present].mean()) if present.any() else 0.0,
        confusion=cm.astype(int).tolist(), split=split, tta=tta,
    )


def evaluate(model: torch.nn.Module, images: np.ndarray, labels: np.ndarray, classes: Sequence[str],
             norm: Normalization, runtime: Runtime | None = None, tta: TTA = "none",
             split: str = "", batch_size: int = 500, progress: bool = False,
             distributed: bool = False) -> EvalReport:
    """Predict ``images`` and score against ``labels`` (indices into ``classes``);
    ``distributed``: shared by the ranks of the process group (:func:`predict_logits`)."""
    logits = predict_logits(model, images, norm, runtime, batch_size, tta, progress, distributed)
    return report_from_predictions(labels, logits.argmax(1), classes, split, tta)


def evaluate_checkpoint(ckpt: Checkpoint, data: str | Path, split: str = "test", tta: TTA | None = None,
                        runtime: Runtime | None = None, cache_dir: str | Path | None = None,
                        progress: bool = False, distributed: bool = False) -> EvalReport:
    """Score a checkpoint on ``split`` of the data at ``data`` (any supported layout).

    ``tta`` defaults to the test-time augmentation recorded in the checkpoint.
    ``distributed``: every rank of the process group (``torchrun``) calls it and scores its
    share of the images; each gets the whole report.
    """
    with dist_.leader_first(distributed):
        ds = checkpoint_data(ckpt.meta, data, split, cache_dir=cache_dir,
                             progress=progress and dist_.is_main())
    if not ds.labelled:
        raise DatasetError(f"the {split} images at {data} carry no labels: use `cnnviz predict` for them")
    return evaluate(ckpt.model, ds.images, ds.labels, ckpt.meta.classes, ckpt.meta.normalization,
                    runtime or ckpt.runtime, tta or ckpt.meta.tta, split=split, progress=progress,
                    distributed=distributed)
