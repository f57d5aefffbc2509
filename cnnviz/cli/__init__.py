"""The ``cnnviz`` command line: :mod:`.parser` holds the one argument parser, :mod:`.commands`
what each command does; :func:`main` runs one and reports every user error the same way.

Under ``torchrun`` (``torchrun --nproc-per-node N -m cnnviz train ...``) train, evaluate,
features and units share their work among the processes; an error names the rank it happened
on and is recorded for torchrun's summary, and torchrun then stops the other processes."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from ..checkpoints import CheckpointError
from ..data import DatasetError
from ..distributed import DistributedError, Launch, launch_from_env
from ..models import UnknownModelError
from ..train import ConfigError, ResumeError
from .commands import (cmd_download, cmd_evaluate, cmd_features, cmd_figures, cmd_gallery, cmd_import, cmd_info,
                       cmd_models, cmd_predict, cmd_train, cmd_units, cmd_attribution_check)
from .parser import UsageError, build_parser

__all__ = ["UsageError", "build_parser", "main"]

_USER_ERRORS = (DatasetError, CheckpointError, ConfigError, FileNotFoundError, UnknownModelError, UsageError,
                DistributedError, ResumeError)
_TORCHRUN_COMMANDS = ("train", "evaluate", "features", "units", "info", "models")
"""Commands that may run as several processes: the first four share their work, the last two only read."""


def _message(e: Exception, args: argparse.Namespace) -> str:
    """The one line a user error prints: a training option is named by its command-line flag."""
    if isinstance(e, ConfigError):
        flag = f"--{e.field.replace('_', '-')}" if hasattr(args, e.field) else f"--train-arg {e.field}"
        return f"{flag} {e.problem}"
    msg = e.args[0] if isinstance(e, KeyError) and e.args else e  # KeyError quotes its text
    return " ".join(str(msg).split("\n"))


def _check_launch(command: str, launch: Launch | None) -> None:
    """Refuse under torchrun a command that would repeat its work, and its writes, in every process."""
    if launch is not None and launch.world_size > 1 and command not in _TORCHRUN_COMMANDS:
        raise UsageError(f"cnnviz {command} runs as one process: start it without torchrun (torchrun runs "
                         f"{', '.join(_TORCHRUN_COMMANDS[:4])})")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. Every user error prints one line ``cnnviz <command>: error: ...`` and
    returns 2 (argparse's own refusals exit with 2 after its usage line); under torchrun the
    line names the rank (``error (rank 1 of 2): ...``)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = {"train": cmd_train, "evaluate": cmd_evaluate, "info": cmd_info, "models": cmd_models,
               "import": cmd_import, "predict": cmd_predict, "figures": cmd_figures,
               "download": cmd_download, "gallery": cmd_gallery, "units": cmd_units,
               "attribution-check": cmd_attribution_check, "features": cmd_features}[args.command]
    launch = None
    try:
        launch = launch_from_env()
        _check_launch(args.command, launch)
        if launch is not None:  # the failing rank's exception goes into torchrun's summary
            from torch.distributed.elastic.multiprocessing.errors import record

            handler = record(handler)
        return handler(args)
    except _USER_ERRORS as e:
        where = f" (rank {launch.rank} of {launch.world_size})" if launch is not None and launch.world_size > 1 else ""
        print(f"cnnviz {args.command}: error{where}: {_message(e, args)}", file=sys.stderr)
        return 2
