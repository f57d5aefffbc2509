"""Datasets as users have them, decoded once into a compact uint8 cache.

Supported on-disk shapes (:mod:`.sources`): CIFAR-10 in torchvision's format (read without
unpickling code, :mod:`.cifar`); a folder or zip with one sub-folder per class; a root holding
``train``/``test`` as folders or zips; the Simpsons' flat ``<character>_<n>.jpg`` test folder and
the competition's unlabelled ``<n>.jpg`` folder. Folders and zips are read through one bounded
:class:`Container` (:mod:`.containers`).

Every image is decoded once (:mod:`.decoding`, within a :class:`Budget` checked from image
headers first), resized by a :class:`Preprocess` recorded in checkpoints, and kept as
``(N, H, W, 3) uint8`` in a checksummed cache (:mod:`.cache`) keyed by dataset kind,
preprocessing and a fingerprint of the source (:func:`load_dataset`, :mod:`.loading`), so a
training epoch never decodes a JPEG again. :mod:`.splits` holds the seeded stratified splits,
:mod:`.profiles` the defaults of each known dataset, :mod:`.download` fetches CIFAR-10 and the
Simpsons into the per-user data folder.
"""

from .cache import CACHE_VERSION, CacheDamaged, default_cache_dir
from .cifar import CIFAR10_CLASSES, CIFAR10_MEAN, CIFAR10_STD, download_cifar10, read_plain_pickle
from .containers import Container
from .dataset import ImageDataset
from .decoding import (IMAGE_EXTENSIONS, MAX_FILE_BYTES, MAX_IMAGE_PIXELS, MAX_TOTAL_PIXELS, RESIZE_MODES,
                       Budget, Preprocess, check_total_pixels, declared_pixels, decode_image, is_image_name)
from .download import DownloadError, dataset_home, download_dataset, is_downloaded, user_data_dir
from .errors import DatasetError, PreprocessError, UnreadableImage, UnsafePickleError
from .loading import load_dataset
from .profiles import PROFILES, DatasetProfile, profile
from .sources import Source, Split, iter_images, resolve_source, source_from_entries
from .splits import SplitSpec, make_split, stratified_split

__all__ = [
    "CACHE_VERSION", "CIFAR10_CLASSES", "CIFAR10_MEAN", "CIFAR10_STD", "IMAGE_EXTENSIONS",
    "MAX_FILE_BYTES", "MAX_IMAGE_PIXELS", "MAX_TOTAL_PIXELS", "PROFILES", "RESIZE_MODES",
    "Budget", "CacheDamaged", "Container", "DatasetError", "DatasetProfile", "DownloadError", "ImageDataset",
    "Preprocess", "PreprocessError", "Source", "Split", "SplitSpec", "UnreadableImage",
    "UnsafePickleError", "check_total_pixels", "declared_pixels", "decode_image",
    "dataset_home", "default_cache_dir", "download_cifar10", "download_dataset", "is_downloaded",
    "is_image_name", "iter_images", "load_dataset", "make_split", "profile", "read_plain_pickle",
    "resolve_source", "source_from_entries", "stratified_split", "user_data_dir",
]
