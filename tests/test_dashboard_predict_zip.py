"""AppTest of the Predict page with the competition's test set uploaded as a zip: one CSV row per
image with the competition's ids, and the zip's non-images named in one warning."""

from __future__ import annotations

import io
import zipfile


from conftest import COLORS
from dashboard_fixtures import (csv_rows, dashboard_env, downloads, encoded, errors, open_page,  # noqa: F401
                                tiny_dashboard)


def competition_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("testset/1.jpg", encoded(COLORS["red"], "JPEG"))
        zf.writestr("testset/2.png", encoded(COLORS["green"]))
        zf.writestr("testset/10.jpg", encoded(COLORS["blue"], "JPEG"))
        zf.writestr("testset/11.jpg", b"this is not an image")
        zf.writestr("testset/notes.txt", b"hello")
        zf.writestr("__MACOSX/testset/._1.jpg", b"resource fork")
    return buf.getvalue()


def test_predict_zip_upload_gives_competition_csv(dashboard_env, downloads):
    at = open_page("predict")
    assert not at.exception, errors(at)
    at.radio(key="p_src").set_value("upload").run()
    at.file_uploader(key="p_zip").set_value(("testset.zip", competition_zip(), "application/zip")).run()
    assert not at.exception, errors(at)
    assert not at.error, errors(at)
    rows = csv_rows(downloads)
    assert rows[0] == ["id", "character"]
    assert [r[0] for r in rows[1:]] == ["1", "2", "10"]
    assert all(r[1] in dashboard_env.classes for r in rows[1:])
    assert len(at.warning) == 1  # every unreadable member in one warning
    warning = at.warning[0].value
    assert "2 files" in warning and "testset/11.jpg" in warning and "testset/notes.txt" in warning
    assert "__MACOSX" not in warning


def test_predict_upload_that_is_not_a_zip_says_so(dashboard_env, downloads):
    at = open_page("predict")
    at.radio(key="p_src").set_value("upload").run()
    downloads.clear()  # the sample of held-out images the page opened on offered its own CSV
    at.file_uploader(key="p_zip").set_value(("testset.zip", b"not a zip at all", "application/zip")).run()
    assert not at.exception, errors(at)
    assert any("testset.zip is not a zip archive" in e.value for e in at.error)
    assert not [d for d, mime, _ in downloads if mime == "text/csv"]
