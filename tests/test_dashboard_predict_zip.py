"""AppTest of the Predict page with the competition's test set uploaded as a zip: one CSV row per
image with the competition's ids, and the zip's non-images named in one warning."""

from __future__ import annotations

import io
import zipfile

import pytest
from PIL import Image

from conftest import COLORS
from dashboard_fixtures import dashboard_env, errors, open_page, tiny_dashboard  # noqa: F401


def encoded(color: tuple[int, int, int], fmt: str = "PNG", size: tuple[int, int] = (40, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, fmt)
    return buf.getvalue()


@pytest.fixture
def downloads(monkeypatch) -> list[tuple[bytes, str, str | None]]:
    """``(data, mimetype, file name)`` of every file the app hands to Streamlit's media manager
    (how ``st.download_button`` serves its data)."""
    from streamlit.runtime.media_file_manager import MediaFileManager

    got: list[tuple[bytes, str, str | None]] = []
    add = MediaFileManager.add

    def recording_add(self, path_or_data, mimetype, coordinates, file_name=None, **kw):
        got.append((path_or_data, mimetype, file_name))
        return add(self, path_or_data, mimetype, coordinates, file_name=file_name, **kw)

    monkeypatch.setattr(MediaFileManager, "add", recording_add)
    return got


def csv_rows(downloads) -> list[list[str]]:
    data = [d for d, mime, _ in downloads if mime == "text/csv"]
    assert data, "no CSV was offered for download"
    text = data[-1].decode() if isinstance(data[-1], bytes) else data[-1]
    return [line.split(",") for line in text.splitlines()]


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
    at.file_uploader(key="p_zip").set_value(("testset.zip", b"not a zip at all", "application/zip")).run()
    assert not at.exception, errors(at)
    assert any("testset.zip is not a zip archive" in e.value for e in at.error)
    assert not [d for d, mime, _ in downloads if mime == "text/csv"]
