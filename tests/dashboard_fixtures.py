"""Shared fixtures for the dashboard's AppTest suites (``tests/test_dashboard_pages_*.py``).

Built once per session: a tiny class tree (``<data>/folder/{train,test}/<class>/<n>.jpg``,
32x32 JPEGs, three classes) and a checkpoint trained on it for one epoch (which records the
train/val split, so every page's split logic runs for real). Use them by importing the fixtures
into a test module::

    from dashboard_fixtures import dashboard_env, dashboard_env_no_data, figures, open_page, tiny_dashboard

``dashboard_env`` points the dashboard at them: ``$CNNVIZ_CHECKPOINTS`` and ``$CNNVIZ_DATA``
(whose ``folder/`` is the default data path of a ``dataset="folder"`` checkpoint) and, since
``dashboard.state`` reads the checkpoint folder when first imported, its ``CHECKPOINT_DIR`` too.
``dashboard_env_no_data`` does the same with an empty data folder.
"""

from __future__ import annotations

import base64
import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

from cnnviz.data import Preprocess
from cnnviz.train import train_checkpoint

from conftest import COLORS

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "dashboard" / "app.py"
if str(ROOT) not in sys.path:  # as dashboard/app.py does, so `dashboard.state` imports here too
    sys.path.insert(0, str(ROOT))

N_IMAGES = {"train": 4, "test": 2}  # per class
SIZE = 32
TIMEOUT = 60


@dataclass(frozen=True)
class TinyDashboard:
    checkpoints: Path  # holds tiny.json + tiny.safetensors
    data: Path  # $CNNVIZ_DATA: holds folder/ (the class tree)
    tree: Path  # data / "folder": train/ and test/
    empty: Path  # a data folder with nothing in it
    classes: list[str]
    name: str = "tiny"


def write_textured_jpeg(path: Path, color: tuple[int, int, int], rng: np.random.Generator) -> Path:
    """A 32x32 JPEG: the class colour with noise and a bright square at a random place, so images
    of one class differ and feature maps are not flat."""
    img = np.clip(np.asarray(color, np.float32) + rng.normal(0, 25, (SIZE, SIZE, 3)), 0, 255)
    y, x = rng.integers(0, SIZE - 8, 2)
    img[y:y + 8, x:x + 8] = 255
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img.astype(np.uint8)).save(path, "JPEG", quality=95)
    return path


def build_tiny_dashboard(base: Path) -> TinyDashboard:
    """Write the tiny class tree and train the tiny checkpoint under ``base``."""
    tree = base / "data" / "folder"
    rng = np.random.default_rng(0)
    for split, n in N_IMAGES.items():
        for cls, color in COLORS.items():
            for i in range(n):
                write_textured_jpeg(tree / split / cls / f"{i:03d}.jpg", color, rng)
    (base / "empty").mkdir()
    torch.manual_seed(0)
    ckpt = train_checkpoint(tree, base / "checkpoints" / "tiny", dataset="folder", model="alexnet_style",
                            model_kwargs=dict(width=0.125, fc6=16, fc7=32), preprocess=Preprocess(SIZE),
                            overrides=dict(epochs=1, precision="fp32", batch_size=8, device="cpu"),
                            progress=False, cache_dir=base / "cache")
    return TinyDashboard(base / "checkpoints", base / "data", tree, base / "empty", list(ckpt.meta.classes))


@pytest.fixture(scope="session")
def tiny_dashboard(tmp_path_factory) -> TinyDashboard:
    return build_tiny_dashboard(tmp_path_factory.mktemp("dashboard"))


def _point_dashboard(monkeypatch, checkpoints: Path, data: Path) -> None:
    import dashboard.state as state

    monkeypatch.setenv("CNNVIZ_CHECKPOINTS", str(checkpoints))
    monkeypatch.setenv("CNNVIZ_DATA", str(data))
    monkeypatch.setattr(state, "CHECKPOINT_DIR", checkpoints)


@pytest.fixture
def dashboard_env(tiny_dashboard, monkeypatch) -> TinyDashboard:
    """The dashboard sees the tiny checkpoint and, by default, its data."""
    _point_dashboard(monkeypatch, tiny_dashboard.checkpoints, tiny_dashboard.data)
    return tiny_dashboard


@pytest.fixture
def dashboard_env_no_data(tiny_dashboard, monkeypatch) -> TinyDashboard:
    """The dashboard sees the tiny checkpoint but no data path."""
    _point_dashboard(monkeypatch, tiny_dashboard.checkpoints, tiny_dashboard.empty)
    return tiny_dashboard


def open_page(page: str, query: dict[str, str] | None = None, timeout: float = TIMEOUT) -> AppTest:
    """Run ``dashboard/app.py`` on ``views/<page>.py`` with URL ``query`` parameters.

    Switches before the first run (skipping the default Model page): that works because every
    page's ``url_path`` in app.py is its file name; AppTest then matches the page by file name.
    """
    at = AppTest.from_file(str(APP), default_timeout=timeout)
    at.switch_page(f"views/{page}.py")
    at.query_params.update(query or {})
    return at.run()


def figures(at: AppTest) -> dict[str, dict]:
    """The Plotly figures on the page as their JSON specs (``data``, ``layout``), by the key
    given to ``st.plotly_chart`` (figures without one by their position, ``"#0"``, ``"#1"``...)."""
    return {el.key or f"#{i}": json.loads(el.proto.spec) for i, el in enumerate(at.get("plotly_chart"))}


@dataclass
class Chart:
    """A Vega-Lite chart on the page (``st.altair_chart``): its spec and its datasets by name."""

    spec: dict
    data: dict[str, "pd.DataFrame"]

    @property
    def title(self) -> str:
        t = self.spec.get("title", "")
        return t.get("text", "") if isinstance(t, dict) else str(t)

    def frame(self, i: int = 0) -> "pd.DataFrame":
        """The ``i``-th dataset (the layers' data, in the order the spec names them)."""
        return list(self.data.values())[i]


def charts(at: AppTest) -> dict[str, Chart]:
    """The Vega-Lite charts on the page, by the key given to ``st.altair_chart`` (charts without
    one by their position, ``"#0"``, ``"#1"``...)."""
    from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df  # noqa: PLC0415

    out = {}
    for i, el in enumerate(at.get("vega_lite_chart")):
        key = el.proto.id.split("-", 2)[-1] if el.proto.id.startswith("$$ID-") else f"#{i}"
        out[key] = Chart(json.loads(el.proto.spec),
                         {d.name: convert_arrow_bytes_to_pandas_df(d.data.data) for d in el.proto.datasets})
    return out


def chart_titled(at: AppTest, part: str) -> Chart:
    """The (first) Vega-Lite chart whose title holds ``part``."""
    found = [c for c in charts(at).values() if part in c.title]
    assert found, f"no chart titled with {part!r}: {[c.title for c in charts(at).values()]}"
    return found[0]


def clickable_images(at: AppTest) -> dict[str, np.ndarray]:
    """The pictures of the page's click-to-choose images (streamlit-image-coordinates, sent as a
    PNG data URI) as ``(H, W, 3) uint8`` arrays, by the key given to the component."""
    out = {}
    for el in at.get("component_instance"):
        src = json.loads(el.proto.json_args).get("src", "")
        if src.startswith("data:image/png;base64,"):
            key = el.proto.id.split("-", 2)[-1]
            out[key] = np.asarray(Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).convert("RGB"))
    return out


def grid_heading(at: AppTest) -> str:
    """The bold heading over a page's grid picture (Filters' kernels, Feature maps' channels)."""
    return next(m.value for m in at.markdown if m.value.startswith("**"))


def markdown_table(at: AppTest, first_column: str) -> list[dict[str, str]]:
    """The rows of the Markdown table (``dashboard.widgets.static_table``) whose first column is
    ``first_column``, as dicts of cell text (escaped pipes unescaped)."""
    for md in at.markdown:
        lines = md.value.splitlines()
        if lines and lines[0].startswith(f"| {first_column} |"):
            def cells(line: str) -> list[str]:
                parts = line.strip()[2:-2].replace("\\|", "\0").split(" | ")
                return [c.replace("\0", "|") for c in parts]
            head = cells(lines[0])
            return [dict(zip(head, cells(line))) for line in lines[2:]]
    raise AssertionError(f"no table starting with column {first_column!r}")


def title(fig: dict) -> str:
    t = fig.get("layout", {}).get("title", "")
    return t.get("text", "") if isinstance(t, dict) else str(t)


def errors(at: AppTest) -> list[str]:
    """Exceptions and st.error messages on the page (for assertion messages)."""
    return [e.proto.message for e in at.exception] + [e.proto.body for e in at.error]


def encoded(color: tuple[int, int, int], fmt: str = "PNG", size: tuple[int, int] = (40, 30)) -> bytes:
    """A one-colour image file's bytes, as an upload would carry them."""
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
    """The rows of the last CSV offered for download."""
    data = [d for d, mime, _ in downloads if mime == "text/csv"]
    assert data, "no CSV was offered for download"
    text = data[-1].decode() if isinstance(data[-1], bytes) else data[-1]
    return [line.split(",") for line in text.splitlines()]
