"""A loaded checkpoint is shared by every dashboard session: it is fixed once at load, and no
library call changes it, so eight threads at once give exactly the single-thread results."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from conftest import model_fingerprint

from cnnviz.checkpoints import CheckpointMeta, load_checkpoint, save_checkpoint
from cnnviz.data import Preprocess
from cnnviz.evaluate import predict_logits
from cnnviz.inputs import Normalization
from cnnviz.inspect.attribution import attribute
from cnnviz.inspect.effective_rf import gradient_rf
from cnnviz.inspect.feature_maps import feature_maps
from cnnviz.inspect.features import extract_features
from cnnviz.inspect.receptive_field import receptive_fields
from cnnviz.models import get_model
from cnnviz.runtime import resolve_runtime

SIZE = 32
CPU32 = resolve_runtime("cpu", "fp32")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """A tiny alexnet_style checkpoint (its ReLUs are built with inplace=True)."""
    torch.manual_seed(0)
    model = get_model("alexnet_style", 3, SIZE, width=0.125, fc6=16, fc7=32)
    assert any(getattr(m, "inplace", False) for m in model.modules())
    meta = CheckpointMeta(arch="alexnet_style", classes=["a", "b", "c"], preprocess=Preprocess(SIZE),
                          normalization=Normalization((0.5,) * 3, (0.25,) * 3),
                          arch_kwargs=dict(width=0.125, fc6=16, fc7=32))
    path = save_checkpoint(tmp_path_factory.mktemp("ck") / "tiny", model, meta)
    return load_checkpoint(path, runtime=CPU32)


def images(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, SIZE, SIZE, 3), dtype=np.uint8)




def test_load_fixes_the_model_for_shared_inference(ckpt):
    model = ckpt.model
    assert not any(m.training for m in model.modules())
    assert not any(p.requires_grad for p in model.parameters())
    assert not any(getattr(m, "inplace", False) for m in model.modules())
    assert ckpt.runtime == CPU32


def test_inference_refuses_another_device_than_the_models(ckpt):
    meta = torch.device("meta")
    other = type(CPU32)(meta, None, False)
    with pytest.raises(ValueError, match=r"^the model is on cpu but the runtime asks for meta: load the "
                                         r"checkpoint on that device"):
        predict_logits(ckpt.model, images(1, 0), ckpt.meta.normalization, other)


def work(ckpt, seed: int) -> dict[str, np.ndarray]:
    """One session's heavy calls on the shared model."""
    img = images(4, seed)
    norm = ckpt.meta.normalization
    maps = attribute(ckpt.model, img[0], norm, target=seed % 3, ig_steps=4)
    return {
        "logits": predict_logits(ckpt.model, img, norm, ckpt.runtime, tta="flip"),
        "features": extract_features(ckpt, img, runtime=ckpt.runtime),
        "maps": feature_maps(ckpt.model, img, "features.0", norm).maps,
        "erf": gradient_rf(ckpt.model, "features.3", 1, image=img[1], norm=norm),
        "rf": np.array([r.size for r in receptive_fields(ckpt.model, SIZE)]),
        **{f"attr_{k}": v.map for k, v in maps.items()},
    }


def test_eight_threads_at_once_give_the_single_thread_results(ckpt):
    before = model_fingerprint(ckpt.model)
    alone = {seed: work(ckpt, seed) for seed in range(8)}
    assert model_fingerprint(ckpt.model) == before
    results: dict[int, dict[str, np.ndarray]] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def run(seed: int) -> None:
        try:
            start.wait()
            results[seed] = work(ckpt, seed)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert model_fingerprint(ckpt.model) == before
    for seed in range(8):
        assert results[seed].keys() == alone[seed].keys()
        for key, value in alone[seed].items():
            np.testing.assert_array_equal(results[seed][key], value, err_msg=f"seed {seed}: {key}")
