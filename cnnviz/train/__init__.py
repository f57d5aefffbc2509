"""Training: ``fit(model, train, val, config, norm) -> TrainResult`` on CUDA or a fast CPU path,
and ``train_checkpoint`` from data on disk to a saved checkpoint.

:mod:`.config` holds :class:`TrainConfig` (the one home of training defaults, checked as it
is made), :mod:`.optim` the schedule and optimiser parts, :mod:`.loop` the loop in small
steps, :mod:`.resume` a run's state between epochs (a long run in parts), :mod:`.run` the
whole run with its checks before any work.
"""

from .config import ConfigError, EpochRecord, TrainConfig, TrainResult
from .loop import fit
from .resume import ResumeError
from .run import DEFAULT_DATASET, TrainPart, TrainPlan, plan_training, train_checkpoint

__all__ = ["DEFAULT_DATASET", "ConfigError", "EpochRecord", "ResumeError", "TrainConfig", "TrainPart", "TrainPlan",
           "TrainResult", "fit", "plan_training", "train_checkpoint"]
