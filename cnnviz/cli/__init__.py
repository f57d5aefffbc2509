"""The ``cnnviz`` command line: :mod:`.parser` holds the one argument parser, :mod:`.commands`
what each command does; :func:`main` runs one and reports every user error the same way."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from ..checkpoints import CheckpointError
from ..data import DatasetError
from ..models import UnknownModelError
from ..train import ConfigError
from .commands import (cmd_download, cmd_evaluate, cmd_figures, cmd_gallery, cmd_import, cmd_info, cmd_models,
                       cmd_predict, cmd_train, cmd_units, cmd_attribution_check)
from .parser import UsageError, build_parser

__all__ = ["UsageError", "build_parser", "main"]

_USER_ERRORS = (DatasetError, CheckpointError, ConfigError, FileNotFoundError, UnknownModelError, UsageError)


def _message(e: Exception, args: argparse.Namespace) -> str:
    """The one line a user error prints: a training option is named by its command-line flag."""
    if isinstance(e, ConfigError):
        flag = f"--{e.field.replace('_', '-')}" if hasattr(args, e.field) else f"--train-arg {e.field}"
        return f"{flag} {e.problem}"
    msg = e.args[0] if isinstance(e, KeyError) and e.args else e  # KeyError quotes its text
    return " ".join(str(msg).split("\n"))


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. Every user error prints one line ``cnnviz <command>: error: ...`` and
    returns 2 (argparse's own refusals exit with 2 after its usage line)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = {"train": cmd_train, "evaluate": cmd_evaluate, "info": cmd_info, "models": cmd_models,
               "import": cmd_import, "predict": cmd_predict, "figures": cmd_figures,
               "download": cmd_download, "gallery": cmd_gallery, "units": cmd_units,
               "attribution-check": cmd_attribution_check}[args.command]
    try:
        return handler(args)
    except _USER_ERRORS as e:
        print(f"cnnviz {args.command}: error: {_message(e, args)}", file=sys.stderr)
        return 2
