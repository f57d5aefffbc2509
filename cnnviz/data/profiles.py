"""Dataset profiles: the defaults each known kind of dataset trains with."""

from __future__ import annotations

from dataclasses import dataclass

from .decoding import Preprocess
from .errors import DatasetError


@dataclass(frozen=True)
class DatasetProfile:
    """Defaults for a known dataset: the model, preprocessing and validation share it uses."""

    name: str
    default_model: str
    preprocess: Preprocess
    val_fraction: float
    description: str
    how_to_get: str
    """Where a user gets the data, for messages ("`cnnviz download cifar10` ...")."""


PROFILES: dict[str, DatasetProfile] = {
    "cifar10": DatasetProfile("cifar10", "cifar_fast", Preprocess(32, "squash"), 0.04,
                              "CIFAR-10: 60,000 32x32 images of 10 classes",
                              "`cnnviz download cifar10` (into the user data folder; needs the network), or a "
                              "folder with train/ and test/ class folders"),
    "simpsons": DatasetProfile("simpsons", "alexnet_style", Preprocess(64, "squash"), 0.15,
                               "The Simpsons characters: frames of any size, 20 characters",
                               "`cnnviz download simpsons` (Kaggle, through kagglehub; needs the network), or the "
                               "Kaggle `train.zip` (one folder per character)"),
    "folder": DatasetProfile("folder", "alexnet_style", Preprocess(64, "squash"), 0.1,
                             "any folder with one sub-folder per class",
                             "a folder with one sub-folder of images per class"),
}


def profile(name: str) -> DatasetProfile:
    """The profile of a dataset kind; a clear error lists the known kinds."""
    try:
        return PROFILES[name]
    except KeyError:
        raise DatasetError(f"unknown dataset kind {name!r}; known: {', '.join(PROFILES)}") from None
