"""What a number was measured on: split names as people read them, how many views of each image
the model saw, and the basis of an accuracy (how many images, which split, which data)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .gallery import GalleryMeta

SPLIT_NAMES = {"train": "training", "val": "validation", "test": "test"}
TTA_NAMES = {"flip": "the image and its mirror", "flip_translate": "the image, its mirror and two shifted copies"}


def split_display_name(split: str) -> str:
    """A split as a page names it: ``val`` -> ``validation``, ``train`` -> ``training``,
    ``test`` -> ``test`` (any other name as given)."""
    return SPLIT_NAMES.get(split, split)


def views_text(tta: str, detail: bool = True) -> str:
    """How each image was seen: ``one view each (no test-time augmentation)``, or ``with
    test-time augmentation``, with ``detail`` followed by e.g. ``(flip_translate: the image, its
    mirror and two shifted copies)``."""
    if not tta or tta == "none":
        return "one view each (no test-time augmentation)"
    what = TTA_NAMES.get(tta)
    return "with test-time augmentation" + (f" ({tta}{': ' + what if what else ''})" if detail else "")


@dataclass(frozen=True)
class AccuracyBasis:
    """The images an accuracy was measured on: ``n`` images of ``split``, from the demo gallery
    (a sample of a split of ``of`` images) or the full dataset (``of`` None), each seen as ``tta``
    says (``none``: one view)."""

    n: int
    split: str
    gallery: bool = False
    of: int | None = None
    tta: str = "none"

    def describe(self, detail: bool = True) -> str:
        """E.g. ``1,000 test images of the demo gallery (of the 10,000), one view each (no
        test-time augmentation)`` or ``2,348 validation images of the full dataset, with
        test-time augmentation`` (``detail``: and which, see :func:`views_text`)."""
        where = "the demo gallery" if self.gallery else "the full dataset"
        of = f" (of the {self.of:,})" if self.gallery and self.of is not None else ""
        return f"{self.n:,} {split_display_name(self.split)} images of {where}{of}, {views_text(self.tta, detail)}"

    def accuracy_text(self, accuracy: float, digits: int = 1, detail: bool = True) -> str:
        """``accuracy 91.6% on <describe(detail)>``."""
        return f"accuracy {accuracy:.{digits}%} on {self.describe(detail)}"

    def accuracy_sentence(self, accuracy: float, digits: int = 1, detail: bool = True) -> str:
        """:meth:`accuracy_text` as a sentence starts: ``Accuracy 91.6% on ...``."""
        text = self.accuracy_text(accuracy, digits, detail)
        return text[0].upper() + text[1:]


def accuracy_basis(n: int, split: str, gallery: "GalleryMeta | None" = None, tta: str = "none"
                   ) -> AccuracyBasis:
    """The basis of an accuracy over ``n`` images of ``split``: of the demo ``gallery`` when one
    is given (its part of that split and the full split's size), else of the full dataset."""
    if gallery is None:
        return AccuracyBasis(n, split, tta=tta)
    part = gallery.train if split == "train" else gallery.heldout
    return AccuracyBasis(n, split, gallery=True, of=part.source_size, tta=tta)
