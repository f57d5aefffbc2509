"""``cnnviz import --pretrained NAME``: torchvision's ImageNet weights saved as a cnnviz checkpoint.

The weights come from torchvision's weights API (:func:`torchvision.models.get_weight`): the
file is the one torchvision's own builders use, cached where they cache it,
``torch.hub.get_dir()/checkpoints/<file name of the weights' URL>`` (``$TORCH_HOME/hub/...``,
default ``~/.cache/torch/hub/...``). A file already there is used as it is, so a machine
without the network works once the file has been copied there; otherwise it is downloaded
exactly as ``weights.get_state_dict(check_hash=True)`` would (torch.hub's
``download_url_to_file``, checked against the hash prefix in the file name), with a short
socket timeout so that a closed network fails within seconds. The file is then read with
``torch.load(weights_only=True)`` (:func:`~cnnviz.checkpoints.read_state_dict`): torch.hub's
own loader would unpickle it with ``weights_only=False``.
"""

from __future__ import annotations

import http.client
import os
import socket
import sys
from pathlib import Path
from urllib.parse import urlparse

import torch
import torchvision

from .checkpoint_meta import CheckpointError, CheckpointMeta, check_classes
from .checkpoints import (
    Checkpoint, file_sha256, load_checkpoint, load_weights, prepare_output, read_state_dict, save_checkpoint,
)
from .data import Preprocess
from .inputs import Normalization
from .runtime import Runtime

__all__ = ["DOWNLOAD_TIMEOUT_S", "PRETRAINED", "PretrainedUnavailable", "cached_weights_path",
           "import_pretrained", "list_pretrained", "pretrained_weights"]

PRETRAINED: dict[str, str] = {
    "alexnet": "AlexNet_Weights.IMAGENET1K_V1",
    "vgg11": "VGG11_BN_Weights.IMAGENET1K_V1",  # cnnviz's vgg11 is torchvision's vgg11_bn
    "resnet18": "ResNet18_Weights.IMAGENET1K_V1",
}
"""cnnviz architecture name -> the torchvision weights enum whose state dict fits it."""

DOWNLOAD_TIMEOUT_S = 8.0
"""Seconds any one network operation of a download may block (connect, TLS, each read)."""

RESIZE_MODE = "center_crop"
DATASET_KIND = "folder"


class PretrainedUnavailable(CheckpointError):
    """The pretrained weights are neither in torch.hub's cache nor downloadable now; the
    message names the URL and the exact path to put the file at."""


def list_pretrained() -> list[str]:
    """Names ``import_pretrained`` accepts, sorted (the cnnviz architectures they build)."""
    return sorted(PRETRAINED)


def pretrained_weights(name: str) -> torchvision.models.WeightsEnum:
    """The torchvision weights enum member for cnnviz architecture ``name`` (no download)."""
    if name not in PRETRAINED:
        raise CheckpointError(f"no pretrained weights for {name!r}: choose {', '.join(list_pretrained())}")
    return torchvision.models.get_weight(PRETRAINED[name])


def cached_weights_path(weights: torchvision.models.WeightsEnum) -> Path:
    """Where torchvision keeps (and looks for) this weights file:
    ``torch.hub.get_dir()/checkpoints/<the URL's file name>`` (as in ``load_state_dict_from_url``)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(weights.url).path)


def _download(weights: torchvision.models.WeightsEnum, dest: Path, progress: bool) -> None:
    """Fetch ``weights.url`` to ``dest`` as torch.hub does (temporary ``.partial`` file moved into
    place, sha256 checked against the hash prefix in the file name), each socket operation bounded
    by :data:`DOWNLOAD_TIMEOUT_S`. The process-wide default socket timeout is set for the download
    and restored afterwards (torch.hub's ``urlopen`` takes no timeout of its own): other threads
    opening sockets meanwhile get it too, so call this from a command, not a shared server.
    Host-name lookup is not bounded by socket timeouts; a closed network normally refuses it at once."""
    url, name = weights.url, dest.name
    match = torch.hub.HASH_REGEX.search(name)
    hint = (f"Without the network, get {url} on another machine and put it at {dest} "
            f"(torch.hub.get_dir()/checkpoints; set TORCH_HOME to use another cache), then run this again.")
    previous = socket.getdefaulttimeout()
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        if progress:
            print(f"downloading {url} to {dest}", file=sys.stderr)
        socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
        torch.hub.download_url_to_file(url, str(dest), match.group(1) if match else None, progress=progress)
    except RuntimeError as e:  # torch.hub's hash check
        raise PretrainedUnavailable(f"the download of {url} is damaged ({str(e).splitlines()[0]}); "
                                    f"run this again. {hint}") from None
    except (OSError, http.client.HTTPException) as e:  # URLError, HTTPError, timeouts, refused connections
        reason = str(e).splitlines()[0] if str(e) else ""
        raise PretrainedUnavailable(
            f"could not fetch the pretrained weights {weights!r} ({type(e).__name__}: {reason}). {hint}"
        ) from None
    finally:
        socket.setdefaulttimeout(previous)


def import_pretrained(name: str, out: str | Path, overwrite: bool = False, progress: bool = True,
                      runtime: Runtime | None = None) -> Checkpoint:
    """Save torchvision's ImageNet weights for cnnviz architecture ``name`` (``alexnet``,
    ``vgg11`` i.e. VGG-11 with BatchNorm, ``resnet18``; see :data:`PRETRAINED`) as the
    checkpoint ``<out>.safetensors`` + ``<out>.json`` and return it loaded on ``runtime``.

    The weights file is taken from torch.hub's cache, or downloaded there first (see the module
    docstring; ``progress`` shows a bar on stderr). Without the network and without the cached
    file, :class:`PretrainedUnavailable` (a :class:`CheckpointError`) says which URL to fetch
    and the exact path to put it at, within seconds. An existing ``<out>`` is refused before any
    download unless ``overwrite``.

    What the checkpoint records, from the weights' own metadata:

    - classes: the 1,000 ImageNet names of ``weights.meta["categories"]``, in output order;
    - preprocess: ``Preprocess(224, "center_crop")``. torchvision's transforms resize the
      shorter side to 256 and crop the central 224x224 (bilinear). Of cnnviz's resize modes,
      ``center_crop`` (shorter side to 224, central square) is the only one that keeps the
      aspect ratio and fills the frame as in training; it shows 256/224 = 1.14 times more of
      the image around the centre (objects ~12 % smaller) than torchvision's crop, which
      costs these models a little accuracy. ``squash`` would distort the aspect ratio and
      ``pad`` adds borders the models never saw. The transforms' own sizes are kept in
      ``info["transforms"]``;
    - normalisation: the transforms' mean and std (ImageNet's);
    - dataset: ``"folder"``, the generic kind (one sub-folder of images per class). There is no
      ImageNet dataset profile; the dataset kind only chooses defaults for training and the
      dashboard's data hints, and a folder of class sub-folders named like the classes is how
      ImageNet images would be given to ``evaluate`` anyway;
    - info: ``imported``, ``pretrained`` (the weights enum, e.g.
      ``AlexNet_Weights.IMAGENET1K_V1``), ``source_url``, ``source_file`` and its
      ``source_sha256``, the transforms, torchvision's ImageNet-1K accuracies, and a note.
      There is no training history or split.
    """
    weights = pretrained_weights(name)
    transforms = weights.transforms()
    crop, resize = int(transforms.crop_size[0]), int(transforms.resize_size[0])
    classes = check_classes(list(weights.meta["categories"]))
    meta = CheckpointMeta(
        arch=name, classes=classes, preprocess=Preprocess(crop, RESIZE_MODE),
        normalization=Normalization(tuple(map(float, transforms.mean)), tuple(map(float, transforms.std))),
        dataset=DATASET_KIND,
    )
    prepare_output(out, overwrite)
    cached = cached_weights_path(weights)
    if not cached.is_file():
        _download(weights, cached, progress)
    try:
        state = read_state_dict(cached)
    except CheckpointError as e:
        raise CheckpointError(f"{str(e).rstrip('.')}. If {cached.name} is a damaged download, delete it "
                              f"and run this again to fetch it afresh from {weights.url}") from None
    model = meta.build_model()
    try:
        load_weights(model, model.adapt_state_dict(state), source=cached.name)
    except CheckpointError as e:
        raise CheckpointError(f"{str(e).rstrip('.')}. {cached} does not hold {weights!r}: delete it and run "
                              f"this again to fetch it afresh from {weights.url}") from None
    del state
    meta.info = {
        "imported": True, "pretrained": repr(weights), "source_url": weights.url,
        "source_file": cached.name, "source_sha256": file_sha256(cached),
        "transforms": {"resize_size": resize, "crop_size": crop,
                       "interpolation": str(transforms.interpolation.value)},
        "imagenet_metrics": dict(weights.meta.get("_metrics", {}).get("ImageNet-1K", {})),
        "note": "torchvision's ImageNet weights imported with cnnviz import --pretrained: "
                "no training history, split or cnnviz metrics",
    }
    return load_checkpoint(save_checkpoint(out, model, meta), runtime=runtime)
