"""Where a checkpoint's images are: one resolution order for the dashboard and the CLI.

1. the path the user gave (a ``--data`` option, the sidebar's field, ``?data=``);
2. ``$CNNVIZ_DATA/<dataset>``;
3. the user data folder (``cnnviz download`` puts datasets there), when it holds the dataset;
4. the demo gallery shipped beside the checkpoint (:mod:`cnnviz.gallery`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .checkpoint_meta import CheckpointMeta
from .data import dataset_home, is_downloaded
from .gallery import GalleryError, GalleryMeta, find_gallery, is_gallery, read_gallery_meta
from .roots import env_data_root

__all__ = ["DataChoice", "Origin", "locate_data"]

Origin = Literal["given", "env", "user", "gallery"]


@dataclass(frozen=True)
class DataChoice:
    """The data a checkpoint's views use, where it came from, and (for a gallery) what it holds."""

    path: Path
    origin: Origin
    gallery: GalleryMeta | None = None

    def describe(self) -> str:
        """One short line: the gallery's contents, else the folder and where it came from."""
        if self.gallery is not None:
            return self.gallery.describe()
        where = {"given": "", "env": " ($CNNVIZ_DATA)", "user": " (the user data folder)"}[self.origin]
        return f"full dataset: {self.path}{where}"


def locate_data(meta: CheckpointMeta, checkpoint_path: str | Path | None, given: str | Path | None = None
                ) -> DataChoice | None:
    """The first of: ``given``, ``$CNNVIZ_DATA/<dataset>``, the user data folder's copy, the
    checkpoint's gallery; None when there is none of them."""
    if given is not None and str(given).strip():
        path = Path(str(given).strip()).expanduser()
        return DataChoice(path, "given", _gallery_meta(path))
    env = env_data_root()
    if env is not None and (env / meta.dataset).exists():
        return DataChoice(env / meta.dataset, "env")
    if meta.dataset in ("cifar10", "simpsons") and is_downloaded(meta.dataset):
        return DataChoice(dataset_home(meta.dataset), "user")
    if checkpoint_path is not None:
        found = find_gallery(checkpoint_path, meta)
        if found is not None:
            return DataChoice(found, "gallery", _gallery_meta(found))
    return None


def _gallery_meta(path: Path) -> GalleryMeta | None:
    """The sidecar of a gallery path, else None (not a gallery, or unreadable)."""
    if not is_gallery(path):
        return None
    try:
        return read_gallery_meta(path)
    except GalleryError:
        return None
