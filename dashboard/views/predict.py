"""Predict page: classify uploaded images or an uploaded zip, or every image of a folder or zip on the
server (such as the Simpsons competition's test set), and download the predictions as the
competition's ``id,character`` CSV. Uploads are decoded in memory; nothing is written to disk."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from dashboard.glossary import explain
from dashboard.present import present_on, slide_text
from dashboard.state import on_all_cores, eval_split, progress_bar, sidebar, split_data, url_int, url_text, user_path
from dashboard.widgets import draw_image, upload_images
from cnnviz.checkpoints import Checkpoint
from cnnviz.data import DatasetError, load_dataset
from cnnviz.figures.projection import thumbnails_b64
from cnnviz.predict import Predictions, predict_folder, predict_images, predict_zip

THUMB = 64
SAMPLE = 12


@st.cache_data(show_spinner=False, max_entries=4)
@on_all_cores
def folder_predictions(sha: str, path: str, mtime: float, _ckpt: Checkpoint) -> Predictions:
    """Predictions for every image of ``path`` (kept while the folder is unchanged)."""
    bar = progress_bar("Reading and classifying the images")
    try:
        return predict_folder(_ckpt, path, progress=bar)
    finally:
        bar.close()


@st.cache_resource(show_spinner=False, max_entries=4)
def folder_thumbnails(path: str, mtime: float, preprocess: str, _ckpt: Checkpoint) -> dict[str, str]:
    """id -> small PNG data URI of each image of ``path`` (decoded images come from the disk cache
    that the prediction filled)."""
    ds = load_dataset(path, None, _ckpt.meta.preprocess)
    return dict(zip(ds.ids, thumbnails_b64(ds.images, THUMB)))


@st.cache_resource(show_spinner=False, max_entries=2)
@on_all_cores
def zip_predictions(sha: str, digest: str, name: str, _data: bytes, _ckpt: Checkpoint
                    ) -> tuple[Predictions, list[str], dict[str, str]]:
    """Predictions, thumbnails and unreadable files of an uploaded zip, kept in memory (by content)
    while the page reruns; raises ``DatasetError`` for a zip without images."""
    bar = progress_bar(f"Reading and classifying the images of {name}")
    try:
        preds, images, errors = predict_zip(_ckpt, _data, name, progress=bar)
    finally:
        bar.close()
    return preds, thumbnails_b64(images, THUMB) if len(images) else [], errors


def held_out_sample(n: int, k: int, seed: int) -> list[int]:
    """``k`` distinct positions of ``n``, drawn by ``seed`` (the same draw for the same seed)."""
    return sorted(np.random.default_rng(seed).choice(n, min(k, n), replace=False).tolist())


def unreadable_warning(names: list[str]) -> None:
    """One warning naming the files that have no prediction."""
    if names:
        what = "1 file is not a readable image and has" if len(names) == 1 else \
            f"{len(names)} files are not readable images and have"
        st.warning(f"{what} no prediction: "
                   f"{', '.join(names[:10])}" + (" ..." if len(names) > 10 else ""))


def show(preds: Predictions, thumbnails: list[str] | None, key: str, truth: list[str] | None = None) -> None:
    """Download button, a count per predicted class, and one table row per image (with the
    true class when known)."""
    if not preds.ids:
        return
    st.download_button("Download CSV (id,character)", preds.to_csv(), file_name="predictions.csv",
                       mime="text/csv", on_click="ignore", key=f"{key}_csv", icon=":material/download:",
                       type="primary")
    top = preds.top_k(3)
    table = pd.DataFrame({
        "image": thumbnails if thumbnails is not None else [None] * len(preds.ids),
        "id": preds.ids,
        "character": preds.predicted,
        "probability": [t[0][1] for t in top],
        "top 3": [" · ".join(f"{c} {p:.0%}" for c, p in t) for t in top],
    })
    if truth is not None:
        table.insert(3, "true class", truth)
    counts = Counter(preds.predicted)
    st.caption(f"{len(preds.ids):,} image{'s' if len(preds.ids) != 1 else ''}; most predicted: "
               + ", ".join(f"{c} ({n})" for c, n in counts.most_common(5)))
    st.dataframe(table, hide_index=True, key=f"{key}_table", row_height=THUMB + 8,
                 column_config={
                     "image": st.column_config.ImageColumn("image", width="small"),
                     "probability": st.column_config.ProgressColumn(format="percent", min_value=0.0,
                                                                    max_value=1.0),
                 })


ctx = sidebar()
if present_on():  # a slide has no upload field or camera: say where they are
    slide_text("Predict classifies images you upload: press p (or Esc) to leave present mode and use it.")
else:
    st.title("Predict")
if ctx is not None and not present_on():
    m = ctx.ckpt.meta
    st.caption(f"Each image is resized as the model was trained ({m.preprocess.size} px, "
               f"{m.preprocess.mode}) and classified among its {len(m.classes)} classes"
               f"{' with test-time augmentation (' + str(m.tta) + ')' if m.tta and m.tta != 'none' else ''}. "
               "The CSV has the competition's `id,character` columns.",
               help=explain("test-time augmentation") if m.tta and m.tta != "none" else None)
    has_data = ctx.data is not None and ctx.data.exists()
    sources = (["sample"] if has_data else []) + ["upload", "folder", "draw"]
    source = st.radio("Images from", sources, horizontal=True, key="p_src",
                      format_func={"sample": "a sample of held-out images",
                                   "upload": "upload images or a zip",
                                   "folder": "a folder or zip on the server",
                                   "draw": "draw an image"}.get,
                      index=sources.index("folder") if url_text("folder") else 0,
                      help=explain("held-out") if has_data else None)
    if source == "sample":
        split = eval_split(ctx)
        ds = split_data(ctx, split)
        if ds is not None and len(ds):
            if ctx.choice is not None and ctx.choice.gallery is not None:
                st.caption(f"From the {ctx.choice.describe()}.")
            seed = st.number_input("Sample", 0, 10_000, url_int("sample", 0, 10_000, 0), key="p_sample",
                                   help="Another number draws another 12 images.")
            st.query_params["sample"] = str(seed)
            idx = held_out_sample(len(ds), SAMPLE, int(seed))
            images = ds.images[idx]
            preds = predict_images(ctx.ckpt, images, [ds.ids[i] for i in idx])
            truth = [m.classes[ds.labels[i]] if ds.labels[i] >= 0 else "" for i in idx]
            right = sum(p == t for p, t in zip(preds.predicted, truth))
            st.caption(f"{right} of {len(idx)} right ({split} images the model never trained on).")
            show(preds, thumbnails_b64(images, THUMB), "p_sample", truth=truth)
    elif source == "upload":
        images, names = upload_images("Images to classify", "p_upload", m.preprocess, multiple=True)
        if len(images):
            ids = [Path(n).stem for n in names]  # "17.jpg" -> id 17, as the competition numbers them
            dupes = sorted(i for i, n in Counter(ids).items() if n > 1)
            if dupes:
                st.warning(f"Several files share the id {', '.join(dupes)} (same name, other extension).")
            preds = predict_images(ctx.ckpt, images, ids)
            show(preds, thumbnails_b64(images, THUMB), "p_up")
        else:
            st.caption("Drop one or many images (PNG, JPEG, ...): the id in the CSV is each file's name "
                       "without its extension.")
        archive = st.file_uploader("...or the competition's test set as a .zip", type=["zip"], key="p_zip",
                                   help="A zip of numbered images (the competition's test set), of "
                                        "<character>_<n>.jpg files, or of one folder per class. It is "
                                        "read in memory; nothing is written to disk.")
        if archive is not None:
            data = archive.getvalue()
            try:
                preds, thumbs, bad = zip_predictions(ctx.ckpt.sha256, hashlib.sha256(data).hexdigest(),
                                                     archive.name, data, ctx.ckpt)
            except DatasetError as e:
                st.error(str(e))
            else:
                unreadable_warning(list(bad))
                if not preds.ids:
                    st.error(f"None of the images in {archive.name} could be read.")
                show(preds, thumbs, "p_archive")
    elif source == "draw":
        pad, _ = st.columns([3, 2])
        with pad:
            drawn = draw_image("p_draw", m.preprocess)
        if drawn is not None:
            show(predict_images(ctx.ckpt, drawn[None], ["drawing"]), thumbnails_b64(drawn[None], THUMB), "p_drawn")
    else:
        path = st.text_input("Folder or zip", key="p_path", value=url_text("folder"),
                             placeholder="/data/simpsons/testset  or  testset.zip",
                             help="A flat folder of numbered images (the competition's test set), a "
                                  "labelled flat folder, a class tree, or a zip of any of them.")
        where = user_path(path)
        if path:
            st.query_params["folder"] = path
        if where is not None:
            if not where.exists():
                st.error(f"`{where}` does not exist: give the path of a folder or zip of images on the "
                         "machine that runs the dashboard (or upload the images instead).")
            else:
                try:
                    preds = folder_predictions(ctx.ckpt.sha256, str(where), where.stat().st_mtime, ctx.ckpt)
                except DatasetError as e:
                    st.error(f"Cannot read images from `{where}`: {e}")
                else:
                    unreadable_warning(preds.unreadable)
                    if not preds.ids:
                        st.error(f"No images found in `{where}`.")
                    thumbs = folder_thumbnails(str(where), where.stat().st_mtime,
                                               str(m.preprocess.to_dict()), ctx.ckpt)
                    show(preds, [thumbs.get(i) for i in preds.ids], "p_folder")
