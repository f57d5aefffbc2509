"""One-call dataset downloads into a per-user data folder (``cnnviz download cifar10|simpsons``).

A dataset's folder (its *home*, ``<root>/<name>``) only ever exists complete: everything is
fetched into a temporary ``<root>/.<name>.partial-*`` folder beside it, checked, then renamed
into place; a failure or an interrupt removes the temporary folder and leaves nothing else.
Each socket operation is bounded by :data:`DOWNLOAD_TIMEOUT_S` and the host is tried first, so
a closed network fails with one :class:`DownloadError` line within seconds.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import socket
import tarfile
import tempfile
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Callable, Literal
from urllib.parse import urlparse

from .cache import default_cache_dir
from .decoding import is_image_name
from .errors import DatasetError

__all__ = ["DOWNLOAD_TIMEOUT_S", "DownloadError", "dataset_home", "download_dataset", "is_downloaded",
           "user_data_dir"]

DatasetName = Literal["cifar10", "simpsons"]
Progress = Callable[[int, int], None]

DOWNLOAD_TIMEOUT_S = 10.0
"""Seconds any one network operation of a download may block (connect, TLS, each read)."""
CONNECT_TIMEOUT_S = 5.0
"""Seconds the first reachability check of the host may take."""
SIMPSONS_HANDLE = "alexattia/the-simpsons-characters-dataset"
SIMPSONS_PAGE = f"https://www.kaggle.com/datasets/{SIMPSONS_HANDLE}"
CIFAR10_FILES = ("batches.meta", "test_batch", *(f"data_batch_{i}" for i in range(1, 6)))
_CHUNK = 1 << 20


class DownloadError(DatasetError):
    """A dataset could not be downloaded; the one-line message says what failed and what to do."""


def user_data_dir() -> Path:
    """The per-user data folder, ``default_cache_dir() / "datasets"`` (not created here)."""
    return default_cache_dir() / "datasets"


def dataset_home(name: str, root: Path | None = None) -> Path:
    """Where dataset ``name`` lives: ``<root or user_data_dir()>/<name>``."""
    return Path(root or user_data_dir()) / name


def _complete(name: str, home: Path) -> bool:
    if name == "cifar10":
        return all((home / "cifar-10-batches-py" / f).is_file() for f in CIFAR10_FILES)
    if name == "simpsons":
        tree = home / "simpsons_dataset"
        return tree.is_dir() and any(p.is_dir() for p in tree.iterdir())
    raise DownloadError(f"unknown dataset {name!r}: choose cifar10 or simpsons")


def is_downloaded(name: str, root: Path | None = None) -> bool:
    """True when ``name``'s home is complete: ``cifar-10-batches-py/`` with its batch files
    (cifar10), ``simpsons_dataset/`` holding class folders (simpsons)."""
    return _complete(name, dataset_home(name, root))


def _reason(e: BaseException) -> str:
    """What went wrong, in a few words on one line."""
    if isinstance(e, urllib.error.HTTPError):
        return f"HTTP {e.code} {e.reason}"
    if isinstance(e, urllib.error.URLError) and isinstance(e.reason, OSError):
        e = e.reason
    if isinstance(e, socket.gaierror):
        return f"no network ({e.strerror})"
    if isinstance(e, TimeoutError):
        return f"no answer within {DOWNLOAD_TIMEOUT_S:g} s"
    text = (e.strerror if isinstance(e, OSError) and e.strerror else str(e)) or type(e).__name__
    return text.strip().splitlines()[0]


def _check_reachable(host: str, port: int) -> None:
    """Open and close one connection to ``host``: a closed network fails here at once."""
    socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()


def _fetch(url: str, dest: Path, progress: Progress | None) -> str:
    """Stream ``url`` to ``dest`` reporting ``progress(done, total)``; returns the md5 hex digest."""
    parsed = urlparse(url)
    _check_reachable(parsed.hostname or "", parsed.port or (443 if parsed.scheme == "https" else 80))
    digest, done = hashlib.md5(), 0
    with urllib.request.urlopen(url) as resp, open(dest, "wb") as f:
        total = int(resp.headers.get("Content-Length") or 0)
        if progress:
            progress(0, total)
        while chunk := resp.read(_CHUNK):
            f.write(chunk)
            digest.update(chunk)
            done += len(chunk)
            if progress:
                progress(done, total)
    if total and done != total:
        raise ConnectionError(f"the connection closed after {done:,} of {total:,} bytes")
    return digest.hexdigest()


def _stage_cifar10(tmp: Path, home: Path, progress: Progress | None, url: str | None, md5: str | None) -> Path:
    """Download, check and extract CIFAR-10 under ``tmp``; returns the folder to become ``home``."""
    from torchvision.datasets import CIFAR10
    from torchvision.datasets.utils import extract_archive

    url, md5 = url or CIFAR10.url, md5 or CIFAR10.tgz_md5
    hint = (f"Download it where the network allows and copy {CIFAR10.base_folder} into {home}, "
            "or point --data / $CNNVIZ_DATA at a copy.")
    archive, staged = tmp / CIFAR10.filename, tmp / "home"
    try:
        got = _fetch(url, archive, progress)
    except (OSError, http.client.HTTPException) as e:  # URLError, refused, timeouts, cut short
        raise DownloadError(f"could not download CIFAR-10 from {url}: {_reason(e)}. {hint}") from None
    if got != md5:
        raise DownloadError(f"the download of CIFAR-10 from {url} is damaged (md5 {got}, expected {md5}): "
                            f"run this again. {hint}")
    try:
        extract_archive(str(archive), str(staged))
    except (OSError, tarfile.TarError, EOFError) as e:
        raise DownloadError(f"could not unpack CIFAR-10 from {url} ({_reason(e)}). {hint}") from None
    if not _complete("cifar10", staged):
        raise DownloadError(f"the archive from {url} does not hold {CIFAR10.base_folder}/ with "
                            f"{', '.join(CIFAR10_FILES)}. {hint}")
    return staged


def _class_tree_dir(top: Path) -> Path | None:
    """The folder under ``top`` with the most sub-folders of images (at least two); the deepest
    one of a tie, so that an archive nesting ``simpsons_dataset/simpsons_dataset/`` gives the inner."""
    with_images = [Path(d) for d, _, files in os.walk(top) if any(is_image_name(f) for f in files)]
    counts = Counter(p.parent for p in with_images)
    best = max(counts, key=lambda d: (counts[d], len(d.parts)), default=None)
    return best if best is not None and counts[best] >= 2 else None


def _stage_simpsons(tmp: Path, home: Path, progress: Progress | None) -> Path:
    """Download the Simpsons through kagglehub under ``tmp``; returns the folder to become ``home``."""
    import kagglehub
    from kagglehub import exceptions as kx

    hint = (f"Download it where the network allows and copy its simpsons_dataset folder (one folder per "
            f"character) into {home}, or point --data / $CNNVIZ_DATA at a copy.")
    previous = os.environ.get("KAGGLEHUB_CACHE")
    try:
        _check_reachable("www.kaggle.com", 443)
        if progress:
            progress(0, 0)
        os.environ["KAGGLEHUB_CACHE"] = str(tmp / "kagglehub")
        got = Path(kagglehub.dataset_download(SIMPSONS_HANDLE))
    except (OSError, kx.BackendError, kx.NotFoundError, kx.DataCorruptionError, kx.CredentialError,
            kx.UnauthenticatedError, kx.KaggleEnvironmentError) as e:  # requests' errors are OSErrors
        status = getattr(getattr(e, "response", None), "status_code", None)
        if status in (401, 403) or isinstance(e, (kx.CredentialError, kx.UnauthenticatedError)):
            raise DownloadError(
                f"could not download the Simpsons dataset from {SIMPSONS_PAGE}: Kaggle refused the request "
                f"({_reason(e)}). Set KAGGLE_USERNAME and KAGGLE_KEY (from kaggle.com > Settings > API) or put "
                "kaggle.json in ~/.kaggle/, then run this again.") from None
        raise DownloadError(f"could not download the Simpsons dataset from {SIMPSONS_PAGE}: {_reason(e)}. "
                            f"{hint}") from None
    finally:
        if previous is None:
            os.environ.pop("KAGGLEHUB_CACHE", None)
        else:
            os.environ["KAGGLEHUB_CACHE"] = previous
    tree = _class_tree_dir(got)
    if tree is None:
        raise DownloadError(f"the Kaggle download {got} holds no folder of character folders. {hint}")
    staged = tmp / "home"
    staged.mkdir()
    if tree.is_relative_to(tmp):
        os.replace(tree, staged / "simpsons_dataset")
    else:  # kagglehub answered from elsewhere (a Kaggle notebook's read-only input, Colab's cache)
        shutil.copytree(tree, staged / "simpsons_dataset")
    if progress:
        progress(1, 1)
    return staged


def download_dataset(name: DatasetName, root: Path | None = None, progress: Progress | None = None,
                     force: bool = False, *, url: str | None = None, md5: str | None = None) -> Path:
    """Download dataset ``name`` (``cifar10`` from torchvision's URL, ``simpsons`` from Kaggle
    through kagglehub) into its home ``<root or user_data_dir()>/<name>`` and return the home.

    An already complete home is returned at once unless ``force``. ``progress(done, total)``
    gets bytes (``total`` 0 when unknown; the Simpsons only report ``(0, 0)`` then ``(1, 1)``).
    ``url``/``md5`` replace torchvision's CIFAR-10 URL and checksum (for mirrors and tests).
    The process-wide default socket timeout is set meanwhile, as in :mod:`cnnviz.pretrained`.
    Raises :class:`DownloadError` (one line: what failed, what to do) on any failure.
    """
    if name != "cifar10" and (url or md5):
        raise ValueError("url and md5 apply to cifar10 only")
    home = dataset_home(name, root)
    if _complete(name, home) and not force:
        return home
    if not force and (home.is_file() or (home.is_dir() and any(home.iterdir()))):
        raise DownloadError(f"{home} exists but holds no complete {name}: move it away, or download "
                            "again with force (--force) to replace it")
    home.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.partial-", dir=home.parent))
    previous = socket.getdefaulttimeout()
    try:
        socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
        if name == "cifar10":
            staged = _stage_cifar10(tmp, home, progress, url, md5)
        else:
            staged = _stage_simpsons(tmp, home, progress)
        if home.exists() or home.is_symlink():  # replaced with force, or an empty folder
            os.replace(home, tmp / "replaced")
        os.replace(staged, home)
    finally:
        socket.setdefaulttimeout(previous)
        shutil.rmtree(tmp, ignore_errors=True)
    return home
