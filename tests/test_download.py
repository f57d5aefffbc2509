"""``cnnviz download``: offline failures are one line within seconds and leave nothing behind; a
local HTTP server stands in for torchvision's CIFAR-10 URL, a fake kagglehub for Kaggle."""

from __future__ import annotations

import hashlib
import io
import os
import socket
import tarfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import kagglehub
import numpy as np
import pytest
from conftest import CIFAR_LABEL_NAMES, write_jpeg
from kagglehub.exceptions import UnauthenticatedError

from cnnviz.cli import main
from cnnviz.data import (DownloadError, Preprocess, dataset_home, download_dataset, is_downloaded, load_dataset,
                         user_data_dir)
from cnnviz.data import download as download_module

CIFAR_HOST = "www.cs.toronto.edu"


def offline(host: str) -> None:
    """These tests make real calls: run them only where the host name does not resolve."""
    try:
        socket.getaddrinfo(host, 443)
    except OSError:
        return
    pytest.skip(f"{host} is reachable: the offline tests would download for real")


def leftovers(root: Path) -> list[str]:
    return sorted(os.listdir(root)) if root.exists() else []


@pytest.fixture
def serve():
    """``serve(payload, cut=False)`` -> URL of a local server sending ``payload`` (only its first
    half when ``cut``, then closing, with the full Content-Length)."""
    servers = []

    def start(payload: bytes, cut: bool = False) -> str:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload[: len(payload) // 2] if cut else payload)

            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}/cifar-10-python.tar.gz"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def cifar_tarball(cifar_batches) -> bytes:
    """conftest's tiny ``cifar-10-batches-py`` as torchvision's ``.tar.gz``."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(cifar_batches.batches, arcname="cifar-10-batches-py")
    return buf.getvalue()


def test_user_data_dir_and_homes(cache_dir, tmp_path):
    assert user_data_dir() == cache_dir / "datasets"
    assert not user_data_dir().exists()
    assert dataset_home("cifar10") == cache_dir / "datasets" / "cifar10"
    assert dataset_home("simpsons", tmp_path / "d") == tmp_path / "d" / "simpsons"


def test_is_downloaded_is_false_for_missing_empty_or_partial_homes(tmp_path):
    assert not is_downloaded("cifar10", tmp_path) and not is_downloaded("simpsons", tmp_path)
    (tmp_path / "cifar10" / "cifar-10-batches-py").mkdir(parents=True)
    (tmp_path / "simpsons" / "simpsons_dataset").mkdir(parents=True)
    assert not is_downloaded("cifar10", tmp_path) and not is_downloaded("simpsons", tmp_path)
    (tmp_path / "cifar10" / "cifar-10-batches-py" / "batches.meta").write_bytes(b"x")
    assert not is_downloaded("cifar10", tmp_path)
    (tmp_path / "simpsons" / "simpsons_dataset" / "bart_simpson").mkdir()
    assert is_downloaded("simpsons", tmp_path)


def test_cifar10_offline_fails_within_seconds_in_one_line(tmp_path):
    offline(CIFAR_HOST)
    root = tmp_path / "data"
    start = time.perf_counter()
    with pytest.raises(DownloadError) as info:
        download_dataset("cifar10", root=root)
    assert time.perf_counter() - start < 10
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(f"could not download CIFAR-10 from https://{CIFAR_HOST}/"), msg
    assert ": no network (" in msg
    assert f"copy cifar-10-batches-py into {root / 'cifar10'}, or point --data / $CNNVIZ_DATA at a copy." in msg
    assert leftovers(root) == []
    assert socket.getdefaulttimeout() is None


def test_simpsons_offline_fails_within_seconds_in_one_line(tmp_path, monkeypatch):
    offline("www.kaggle.com")
    monkeypatch.setenv("KAGGLEHUB_CACHE", "/elsewhere")
    root = tmp_path / "data"
    start = time.perf_counter()
    with pytest.raises(DownloadError) as info:
        download_dataset("simpsons", root=root)
    assert time.perf_counter() - start < 10
    msg = str(info.value)
    assert "\n" not in msg
    page = "https://www.kaggle.com/datasets/alexattia/the-simpsons-characters-dataset"
    assert msg.startswith(f"could not download the Simpsons dataset from {page}: no network ("), msg
    assert f"copy its simpsons_dataset folder (one folder per character) into {root / 'simpsons'}" in msg
    assert leftovers(root) == []
    assert os.environ["KAGGLEHUB_CACHE"] == "/elsewhere" and socket.getdefaulttimeout() is None


@pytest.mark.parametrize("with_root", [True, False])
def test_cli_offline_prints_one_error_line_and_returns_2(with_root, tmp_path, cache_dir, capsys):
    offline(CIFAR_HOST)
    root = tmp_path / "data" if with_root else cache_dir / "datasets"  # the user data folder by default
    start = time.perf_counter()
    assert main(["download", "cifar10", *(["--root", str(root)] if with_root else [])]) == 2
    assert time.perf_counter() - start < 10
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith(f"cnnviz download: error: could not download CIFAR-10 from https://{CIFAR_HOST}/"), err
    assert f"into {root / 'cifar10'}," in err
    assert leftovers(root) == []


def test_cifar10_from_a_local_server(tmp_path, serve, cifar_tarball, cifar_batches, capsys):
    url, md5 = serve(cifar_tarball), hashlib.md5(cifar_tarball).hexdigest()
    root, calls = tmp_path / "data", []
    home = download_dataset("cifar10", root=root, url=url, md5=md5, progress=lambda d, t: calls.append((d, t)))
    assert home == root / "cifar10"
    assert is_downloaded("cifar10", root)
    assert leftovers(root) == ["cifar10"] and leftovers(home) == ["cifar-10-batches-py"]
    n = len(cifar_tarball)
    assert calls[0] == (0, n) and calls[-1] == (n, n)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)

    train = load_dataset(home, "train", Preprocess(32))
    assert train.classes == CIFAR_LABEL_NAMES
    assert train.labels.tolist() == cifar_batches.train_labels
    assert np.array_equal(train.images, cifar_batches.train_data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    assert load_dataset(home, "test", Preprocess(32)).labels.tolist() == cifar_batches.test_labels

    assert download_dataset("cifar10", root=root) == home  # already there: no network needed
    assert download_dataset("cifar10", root=root, url=url, md5=md5, force=True) == home
    assert leftovers(root) == ["cifar10"] and is_downloaded("cifar10", root)

    assert main(["download", "cifar10", "--root", str(root)]) == 0
    assert capsys.readouterr().out == f"cifar10 is in {home}; use --data {home}\n"


def test_a_download_cut_short_leaves_nothing(tmp_path, serve, cifar_tarball):
    root = tmp_path / "data"
    with pytest.raises(DownloadError) as info:
        download_dataset("cifar10", root=root, url=serve(cifar_tarball, cut=True),
                         md5=hashlib.md5(cifar_tarball).hexdigest())
    n = len(cifar_tarball)
    assert f"the connection closed after {n // 2:,} of {n:,} bytes. Download it where" in str(info.value)
    assert leftovers(root) == []


def test_an_interrupted_download_leaves_nothing(tmp_path, serve):
    payload = np.random.default_rng(0).bytes(3 << 20)  # three chunks
    root, seen = tmp_path / "data", []

    def interrupt(done: int, total: int) -> None:
        seen.append(done)
        if 0 < done < total:
            assert list(root.glob(".cifar10.partial-*/cifar-10-python.tar.gz"))  # it was being written
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        download_dataset("cifar10", root=root, url=serve(payload), md5="0" * 32, progress=interrupt)
    assert len(seen) == 2 and seen[0] == 0 and 0 < seen[1] < len(payload)
    assert leftovers(root) == [] and socket.getdefaulttimeout() is None


def test_a_damaged_download_is_refused_and_leaves_nothing(tmp_path, serve, cifar_tarball):
    root, url = tmp_path / "data", serve(cifar_tarball)
    with pytest.raises(DownloadError) as info:
        download_dataset("cifar10", root=root, url=url, md5="0" * 32)
    assert str(info.value).startswith(
        f"the download of CIFAR-10 from {url} is damaged (md5 {hashlib.md5(cifar_tarball).hexdigest()}, "
        f"expected {'0' * 32}): run this again.")
    assert leftovers(root) == []


def test_a_foreign_folder_at_the_home_is_not_replaced_without_force(tmp_path, serve, cifar_tarball):
    (tmp_path / "cifar10").mkdir()
    (tmp_path / "cifar10" / "notes.txt").write_text("mine")
    with pytest.raises(DownloadError, match="exists but holds no complete cifar10"):
        download_dataset("cifar10", root=tmp_path, url=serve(cifar_tarball))
    assert leftovers(tmp_path / "cifar10") == ["notes.txt"]


def fake_kaggle(monkeypatch, download):
    """kagglehub reachable, its download replaced by ``download(handle)``."""
    monkeypatch.setattr(download_module, "_check_reachable", lambda host, port: None)
    monkeypatch.setattr(kagglehub, "dataset_download", download)


def test_simpsons_through_kagglehub_keeps_the_inner_class_tree(tmp_path, monkeypatch):
    chars = ["bart_simpson", "homer_simpson", "lisa_simpson"]

    def download(handle: str) -> str:
        assert handle == "alexattia/the-simpsons-characters-dataset"
        version = Path(os.environ["KAGGLEHUB_CACHE"]) / "datasets" / handle / "versions" / "4"
        for top in ("simpsons_dataset", "simpsons_dataset/simpsons_dataset"):  # the archive nests a copy
            for i, c in enumerate(chars):
                for n in range(i + 2):
                    write_jpeg(version / top / c / f"pic_{n:04d}.jpg", (40 * i, 80, 120))
        write_jpeg(version / "kaggle_simpson_testset" / "kaggle_simpson_testset" / "bart_simpson_0.jpg", (0, 0, 0))
        return str(version)

    fake_kaggle(monkeypatch, download)
    monkeypatch.delenv("KAGGLEHUB_CACHE", raising=False)
    root, calls = tmp_path / "data", []
    home = download_dataset("simpsons", root=root, progress=lambda d, t: calls.append((d, t)))
    assert home == root / "simpsons" and is_downloaded("simpsons", root)
    assert calls == [(0, 0), (1, 1)]
    assert leftovers(root) == ["simpsons"] and leftovers(home) == ["simpsons_dataset"]
    assert leftovers(home / "simpsons_dataset") == chars
    train = load_dataset(home, "train")
    assert train.classes == chars and np.bincount(train.labels).tolist() == [2, 3, 4]
    assert "KAGGLEHUB_CACHE" not in os.environ


def test_simpsons_without_kaggle_credentials_says_how_to_give_them(tmp_path, monkeypatch):
    def download(handle: str) -> str:
        (Path(os.environ["KAGGLEHUB_CACHE"]) / "half").mkdir(parents=True)
        raise UnauthenticatedError()

    fake_kaggle(monkeypatch, download)
    root = tmp_path / "data"
    with pytest.raises(DownloadError) as info:
        download_dataset("simpsons", root=root)
    msg = str(info.value)
    assert "\n" not in msg
    assert "Kaggle refused the request (User is not authenticated). Set KAGGLE_USERNAME and KAGGLE_KEY (from " \
           "kaggle.com > Settings > API) or put kaggle.json in ~/.kaggle/, then run this again." in msg
    assert leftovers(root) == []
