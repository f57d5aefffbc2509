"""Local vs shared serving: on loopback the dashboard reads any path; served beyond loopback it
reads only under its data roots, and a path outside them gets one message revealing nothing."""

from __future__ import annotations

import pytest
from streamlit import config

from cnnviz.roots import OUTSIDE_ROOTS, PathRefused, check_under_roots, is_loopback
from conftest import COLORS, write_jpeg
from dashboard_fixtures import dashboard_env, downloads, errors, open_page, tiny_dashboard  # noqa: F401


@pytest.mark.parametrize("address, loopback", [
    ("localhost", True), ("127.0.0.1", True), ("127.5.0.9", True), ("::1", True), ("[::1]", True),
    ("0.0.0.0", False), ("", False), (None, False), ("192.168.1.20", False), ("example.org", False),
])
def test_is_loopback(address, loopback):
    assert is_loopback(address) is loopback


def test_check_under_roots_follows_dots_and_links(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "private"
    (root / "cifar10").mkdir(parents=True)
    outside.mkdir()
    (root / "escape").symlink_to(outside)
    assert check_under_roots(root / "cifar10", [root]) == (root / "cifar10").resolve()
    assert check_under_roots(root, [root]) == root.resolve()
    for bad in (outside, root / ".." / "private", root / "escape", tmp_path / "missing", "/etc"):
        with pytest.raises(PathRefused) as e:
            check_under_roots(bad, [root])
        assert str(e.value) == OUTSIDE_ROOTS


@pytest.fixture
def shared(monkeypatch):
    """The dashboard as a lecturer shares it: listening on every interface."""
    before = config.get_option("server.address")
    config.set_option("server.address", "0.0.0.0")
    yield
    config.set_option("server.address", before)


@pytest.fixture
def private(tmp_path):
    """A folder of images outside every data root."""
    for i, color in enumerate(COLORS.values()):
        write_jpeg(tmp_path / "secret_folder" / f"{i}.jpg", color)
    return tmp_path / "secret_folder"


def shown(at) -> str:
    """Everything the page wrote, as one text."""
    parts = [e.value for e in at.markdown] + [e.value for e in at.caption] + [e.value for e in at.error]
    parts += [e.value for e in at.warning] + [e.value for e in at.info]
    return "\n".join(str(p) for p in parts)


def test_shared_predict_refuses_a_folder_outside_the_roots_alike_for_any_path(dashboard_env, shared, private,
                                                                             downloads):
    seen = []
    for path in (private, private / "missing", private.parent / "nothing_here"):
        at = open_page("predict", {"folder": str(path)})
        assert not at.exception, errors(at)
        assert [e.value for e in at.error] == [OUTSIDE_ROOTS]
        assert "secret_folder" not in shown(at) and "does not exist" not in shown(at)
        seen.append(shown(at))
    assert seen[0] == seen[1] == seen[2]  # exists, missing, empty: indistinguishable
    assert not [d for d, mime, _ in downloads if mime == "text/csv"]


def test_shared_data_path_outside_the_roots_lists_nothing(dashboard_env, shared):
    at = open_page("feature_maps", {"data": "/usr/share"})
    assert not at.exception, errors(at)
    assert OUTSIDE_ROOTS in [e.value for e in at.error]
    assert "/usr/share" not in shown(at).replace(OUTSIDE_ROOTS, "")


def test_shared_reads_a_folder_under_its_roots(dashboard_env, shared, downloads):
    folder = dashboard_env.tree / "test"
    at = open_page("predict", {"folder": str(folder)})
    assert not at.exception, errors(at)
    assert not at.error, errors(at)
    csv = [d for d, mime, _ in downloads if mime == "text/csv"][-1]
    assert len(csv.decode().splitlines()) - 1 == len(list(folder.rglob("*.jpg")))


def test_loopback_reads_any_path(dashboard_env, private, downloads):
    assert is_loopback(config.get_option("server.address"))  # the project's .streamlit/config.toml
    at = open_page("predict", {"folder": str(private)})
    assert not at.exception, errors(at)
    assert not at.error, errors(at)
    csv = [d for d, mime, _ in downloads if mime == "text/csv"][-1].decode()
    assert sorted(r.split(",")[0] for r in csv.splitlines()[1:]) == ["0", "1", "2"]
