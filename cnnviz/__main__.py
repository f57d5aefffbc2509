"""``python -m cnnviz``: the same command line as the ``cnnviz`` script."""

from .cli import main

raise SystemExit(main())
