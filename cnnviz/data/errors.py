"""The errors the data layer raises; each message says what to do next."""

from __future__ import annotations


class DatasetError(ValueError):
    """A dataset the user pointed at cannot be used; the message says what to do."""


class PreprocessError(DatasetError):
    """A :class:`~cnnviz.data.Preprocess` that cannot work (unknown mode, size below 1, ...)."""


class UnsafePickleError(DatasetError):
    """A pickle asked for something other than plain data and was refused unread."""


class UnreadableImage(ValueError):
    """Raised for one file that is not a readable image, or is over a budget; the load goes on
    without it (it is counted in one warning, or listed beside an upload's results)."""
