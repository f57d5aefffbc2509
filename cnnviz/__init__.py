"""cnnviz: make convolutional neural networks visible."""

__version__ = "0.1.0"

from .checkpoints import Checkpoint, CheckpointError, CheckpointMeta, load_checkpoint, save_checkpoint
from .data import DatasetError, ImageDataset, Preprocess, SplitSpec, load_dataset, make_split, stratified_split
from .evaluate import EvalReport, evaluate, predict_logits, report_from_predictions
from .inputs import Normalization
from .models import CNN, get_model, list_models
from .runtime import pick_device, resolve_runtime
from .train import TrainConfig, TrainResult, fit, train_checkpoint

__all__ = [
    "CNN", "Checkpoint", "CheckpointError", "CheckpointMeta", "DatasetError", "EvalReport",
    "ImageDataset", "Normalization", "Preprocess", "SplitSpec", "TrainConfig", "TrainResult",
    "evaluate", "fit", "get_model", "list_models", "load_checkpoint", "load_dataset",
    "make_split", "pick_device", "predict_logits", "report_from_predictions", "resolve_runtime",
    "save_checkpoint", "stratified_split", "train_checkpoint",
]
