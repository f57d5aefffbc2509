"""`cnnviz import --pretrained NAME`: torchvision's ImageNet weights from torch.hub's cache as a
checkpoint, or, with no cached file and no network, one clear refusal within seconds.

Offline throughout: ``$TORCH_HOME`` points into ``tmp_path``, the "cached" weights are randomly
initialised torchvision models saved under the exact file name torchvision expects (a cached
file is never hash-checked: torch.hub checks the hash prefix of a file name only while it
downloads), and torch.hub's ``urlopen`` is replaced in every test, so nothing reaches the network.
"""

from __future__ import annotations

import http.client
import io
import socket
import time
import urllib.error
from pathlib import Path

import pytest
import torch
import torchvision

from cnnviz.checkpoint_meta import check_architecture
from cnnviz.checkpoints import CheckpointError, file_sha256, load_checkpoint
from cnnviz.cli import main
from cnnviz.data import Preprocess
from cnnviz.inputs import Normalization
from cnnviz.pretrained import (
    DOWNLOAD_TIMEOUT_S, PRETRAINED, PretrainedUnavailable, cached_weights_path, import_pretrained,
    pretrained_weights,
)
from cnnviz.runtime import resolve_runtime

CPU32 = resolve_runtime("cpu", "fp32")  # plain layout and precision: outputs comparable with torchvision's
FAST_S = 10.0  # an offline refusal must come within this many seconds


class Network:
    """Stands in for torch.hub's ``urlopen``: offline (``URLError``), or serving fixed bytes."""

    def __init__(self, body: bytes | None = None):
        self.body, self.calls, self.timeouts = body, [], []

    def __call__(self, req, *args, **kwargs):
        self.calls.append(req.full_url)
        self.timeouts.append(socket.getdefaulttimeout())
        if self.body is None:
            raise urllib.error.URLError("offline")
        return _Response(self.body)


class _Response(io.BytesIO):
    """What torch.hub reads of an HTTP response: ``info().get_all(...)`` and ``read(n)``."""

    def info(self):
        return self

    def get_all(self, header):
        return [str(len(self.getvalue()))] if header == "Content-Length" else None


@pytest.fixture
def hub(tmp_path, monkeypatch) -> Path:
    """torch.hub's cache under ``tmp_path`` (via ``$TORCH_HOME``); returns its ``checkpoints`` folder."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)  # a set_dir() elsewhere would override the variable
    assert torch.hub.get_dir() == str(tmp_path / "torch" / "hub")
    return tmp_path / "torch" / "hub" / "checkpoints"


@pytest.fixture
def network(monkeypatch) -> Network:
    """No network: torch.hub's downloads fail at once with ``URLError("offline")``."""
    net = Network()
    monkeypatch.setattr(torch.hub, "urlopen", net)
    return net


def cache_random_weights(name: str, hub: Path, seed: int = 0) -> tuple[Path, torch.nn.Module]:
    """A randomly initialised torchvision model (BatchNorm statistics randomised too) saved with
    ``torch.save(model.state_dict())`` where torchvision looks for ``name``'s ImageNet weights."""
    torch.manual_seed(seed)
    net = {"alexnet": torchvision.models.alexnet, "resnet18": torchvision.models.resnet18}[name]()
    with torch.no_grad():
        for key, t in net.state_dict().items():
            if key.endswith("running_mean"):
                t.normal_(0, 0.1)
            elif key.endswith("running_var"):
                t.uniform_(0.5, 1.5)
    path = cached_weights_path(pretrained_weights(name))
    assert path.parent == hub
    hub.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), path)
    return path, net.eval()


def fixed_input() -> torch.Tensor:
    return torch.linspace(-2, 2, 3 * 224 * 224).reshape(1, 3, 224, 224)


def test_every_name_maps_to_weights_of_its_architecture():
    """cnnviz's vgg11 is torchvision's vgg11_bn: each enum's parameter count is the architecture's
    (built on the meta device: nothing allocated, nothing downloaded)."""
    assert sorted(PRETRAINED) == ["alexnet", "resnet18", "vgg11"]
    for name in PRETRAINED:
        weights = pretrained_weights(name)
        model = check_architecture(name, len(weights.meta["categories"]), 224, {})
        assert sum(p.numel() for p in model.parameters()) == weights.meta["num_params"], name
    with pytest.raises(CheckpointError, match="no pretrained weights for 'vgg16': choose alexnet, resnet18, vgg11"):
        pretrained_weights("vgg16")


def test_alexnet_from_the_cache_without_the_network(hub, network, tmp_path):
    cached, net = cache_random_weights("alexnet", hub)
    weights = torchvision.models.AlexNet_Weights.IMAGENET1K_V1
    state = torch.load(cached, weights_only=True)

    ck = import_pretrained("alexnet", tmp_path / "ck" / "alexnet", progress=False, runtime=CPU32)

    assert network.calls == []
    m = ck.meta
    assert m.arch == "alexnet" and m.classes == list(weights.meta["categories"]) and len(m.classes) == 1000
    assert m.classes[0] == "tench" and m.classes[-1] == "toilet tissue"
    assert m.input_size == 224 and m.preprocess == Preprocess(224, "center_crop")
    assert m.normalization == Normalization((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    assert m.dataset == "folder"
    assert m.info["pretrained"] == "AlexNet_Weights.IMAGENET1K_V1"
    assert m.info["source_url"] == weights.url == "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"
    assert m.info["source_file"] == "alexnet-owt-7be5be79.pth"
    assert m.info["source_sha256"] == file_sha256(cached)
    assert m.info["transforms"] == {"resize_size": 256, "crop_size": 224, "interpolation": "bilinear"}
    own = ck.model.state_dict()
    for mine, theirs in (("features.0.weight", "features.0.weight"), ("features.10.bias", "features.10.bias"),
                         ("classifier.4.weight", "classifier.4.weight"), ("fc.weight", "classifier.6.weight"),
                         ("fc.bias", "classifier.6.bias")):
        assert torch.equal(own[mine], state[theirs]), mine
    with torch.no_grad():
        torch.testing.assert_close(ck.model(fixed_input()), net(fixed_input()))
    assert ck.path == tmp_path / "ck" / "alexnet.safetensors"  # returned as loaded from the saved files


def test_cli_resnet18_from_the_cache_and_force(hub, network, tmp_path, capsys):
    cached, net = cache_random_weights("resnet18", hub, seed=1)
    state = torch.load(cached, weights_only=True)
    out = tmp_path / "ck" / "resnet18"
    argv = ["import", "--pretrained", "resnet18", "--out", str(out)]

    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"saved {out}.safetensors and {out}.json"
    assert lines[1] == ("resnet18: resnet18  (11,689,512 parameters), 1000 classes, input 224x224 (center_crop), "
                        "from ResNet18_Weights.IMAGENET1K_V1")
    ck = load_checkpoint(out, runtime=CPU32)
    own = ck.model.state_dict()
    for key in ("conv1.weight", "bn1.running_mean", "layer4.1.conv2.weight", "layer4.1.bn2.running_var",
                "fc.weight", "fc.bias"):
        assert torch.equal(own[key], state[key]), key
    with torch.no_grad():
        torch.testing.assert_close(ck.model(fixed_input()), net(fixed_input()))

    stamp = (out.parent / "resnet18.safetensors").stat().st_mtime_ns
    assert main(argv) == 2  # an existing checkpoint is kept...
    err = capsys.readouterr().err
    assert err.startswith("cnnviz import: error: ") and err.count("\n") == 1
    assert f"{out}.json already exists" in err and "--force" in err
    assert (out.parent / "resnet18.safetensors").stat().st_mtime_ns == stamp
    assert main(argv + ["--force"]) == 0  # ...unless --force
    assert (out.parent / "resnet18.safetensors").stat().st_mtime_ns != stamp
    assert torch.equal(load_checkpoint(out, runtime=CPU32).model.state_dict()["fc.weight"], state["fc.weight"])
    assert network.calls == []


def test_existing_out_is_refused_before_any_download(hub, network, tmp_path):
    out = tmp_path / "ck" / "vgg"
    out.parent.mkdir()
    Path(f"{out}.json").write_text("{}")
    with pytest.raises(CheckpointError, match="already exists"):
        import_pretrained("vgg11", out, progress=False)
    assert network.calls == []


@pytest.mark.parametrize("name", sorted(PRETRAINED))
def test_offline_refusal_names_the_url_and_the_path(hub, network, tmp_path, name):
    weights = pretrained_weights(name)
    expected = hub / Path(weights.url).name
    previous = socket.getdefaulttimeout()
    t0 = time.perf_counter()
    with pytest.raises(PretrainedUnavailable) as e:
        import_pretrained(name, tmp_path / "ck" / name, progress=False)
    assert time.perf_counter() - t0 < FAST_S
    msg = str(e.value)
    assert msg.startswith(f"could not fetch the pretrained weights {weights!r} (URLError: <urlopen error offline>).")
    assert f"get {weights.url} on another machine and put it at {expected} " in msg
    assert "TORCH_HOME" in msg and "\n" not in msg
    assert network.calls == [weights.url]
    assert network.timeouts == [DOWNLOAD_TIMEOUT_S]  # every socket operation of the download is bounded...
    assert socket.getdefaulttimeout() == previous  # ...and the process's default is restored
    assert list(hub.iterdir()) == []  # no partial file left behind
    assert not (tmp_path / "ck" / f"{name}.json").exists()


@pytest.mark.parametrize("error", [
    TimeoutError("timed out"),
    ConnectionRefusedError(111, "Connection refused"),
    urllib.error.HTTPError("https://x", 404, "Not Found", {}, None),
    http.client.RemoteDisconnected("Remote end closed connection without response"),
], ids=lambda e: type(e).__name__)
def test_every_kind_of_network_failure_is_the_same_refusal(hub, monkeypatch, tmp_path, error):
    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(torch.hub, "urlopen", fail)
    with pytest.raises(PretrainedUnavailable, match=f"could not fetch .* \\({type(error).__name__}: .*put it at"):
        import_pretrained("alexnet", tmp_path / "ck", progress=False)


def test_cli_offline_is_one_error_line_and_fast(hub, network, tmp_path, capsys):
    weights = torchvision.models.VGG11_BN_Weights.IMAGENET1K_V1
    t0 = time.perf_counter()
    rc = main(["import", "--pretrained", "vgg11", "--out", str(tmp_path / "ck" / "vgg11")])
    assert time.perf_counter() - t0 < FAST_S
    assert rc == 2
    lines = capsys.readouterr().err.splitlines()  # a "downloading URL to PATH" line, then the error
    errors = [line for line in lines if line.startswith("cnnviz")]
    assert errors == lines[-1:] and errors[0].startswith("cnnviz import: error: could not fetch the pretrained weights")
    assert weights.url in errors[0] and str(hub / "vgg11_bn-6002323d.pth") in errors[0]


def test_a_damaged_download_is_refused_and_not_kept(hub, monkeypatch, tmp_path):
    """torch.hub checks a download against the hash prefix in its file name."""
    net = Network(body=b"not the weights")
    monkeypatch.setattr(torch.hub, "urlopen", net)
    with pytest.raises(PretrainedUnavailable, match="is damaged .*invalid hash value .*run this again"):
        import_pretrained("resnet18", tmp_path / "ck", progress=False)
    assert len(net.calls) == 1 and list(hub.iterdir()) == []


def test_a_damaged_cached_file_says_to_delete_it(hub, network, tmp_path):
    path = cached_weights_path(pretrained_weights("resnet18"))
    hub.mkdir(parents=True)
    path.write_bytes(b"truncated")
    with pytest.raises(CheckpointError, match=f"If {path.name} is a damaged download, delete it"):
        import_pretrained("resnet18", tmp_path / "ck", progress=False)
    assert network.calls == []


@pytest.mark.parametrize("argv, expected", [
    (["w.pt", "--pretrained", "alexnet"], "argument --pretrained: not allowed with argument WEIGHTS"),
    (["--pretrained", "alexnet", "w.pt"], "argument WEIGHTS: not allowed with argument --pretrained"),
    (["--pretrained", "alexnet", "--arch", "alexnet", "--classes", "a,b", "--size", "224"],
     "--pretrained alexnet sets the architecture, classes, input size, preprocessing and normalisation itself: "
     "leave out --arch, --classes, --size"),
    ([], "one of the arguments WEIGHTS --pretrained is required"),
    (["--pretrained", "vgg16"], "argument --pretrained: invalid choice: 'vgg16'"),
    (["w.pt", "--classes", "a,b"], "the following arguments are required: --arch, --size"),
])
def test_cli_refuses_mixed_or_missing_sources(tmp_path, network, capsys, argv, expected):
    with pytest.raises(SystemExit) as e:
        main(["import", *argv, "--out", str(tmp_path / "ck")])
    assert e.value.code == 2
    assert f"cnnviz import: error: {expected}" in capsys.readouterr().err
    assert network.calls == [] and not list(tmp_path.iterdir())
