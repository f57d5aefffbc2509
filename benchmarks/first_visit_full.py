"""The first visit of a dashboard page on a full dataset, against one features pass over the same
images, in the same run: the page's script in a fresh process and a fresh cnnviz cache
(Streamlit's AppTest, no browser, no warm-up), and before it ``cached_features`` of the training
and held-out splits into another fresh cache (the pass any first visit must make). The ratio is
what the page adds to that pass. Target (issue 26): Neighbours within 1.5x.

    python benchmarks/first_visit_full.py [--page neighbours] [--model cifar10_cnn]

Needs ../shared/data/<dataset> (CNNVIZ_SHARED_DATA to move it). The decoded images are cached
beforehand, in both caches alike, so neither side pays for the JPEG decoding.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, SHARED, shared_path

PAGE_RUN = """
import os, sys, time
sys.path.insert(0, {root!r})
from streamlit.testing.v1 import AppTest
at = AppTest.from_file({app!r}, default_timeout=3000)
at.switch_page("views/{page}.py")
at.query_params.update({{"model": {model!r}}})
t = time.perf_counter()
at.run()
print("SECONDS", time.perf_counter() - t, "EXCEPTION", len(at.exception))
"""

FEATURES_RUN = """
import sys, time
sys.path.insert(0, {root!r})
from cnnviz.checkpoints import checkpoint_data, held_out_data, load_checkpoint
from cnnviz.inspect.features import cached_features
ckpt = load_checkpoint({ckpt!r})
held, test = held_out_data(ckpt.meta, {data!r})
train = checkpoint_data(ckpt.meta, {data!r}, "train")
t = time.perf_counter()
cached_features(ckpt, train, "train")
cached_features(ckpt, test, held)
print("SECONDS", time.perf_counter() - t, "IMAGES", len(train) + len(test))
"""


def run(code: str, env: dict[str, str]) -> str:
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    if out.returncode:
        sys.exit(f"failed:\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}")
    return next(line for line in out.stdout.splitlines() if line.startswith("SECONDS"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--page", default="neighbours")
    ap.add_argument("--model", default="cifar10_cnn")
    a = ap.parse_args()
    ckpt = ROOT / "checkpoints" / f"{a.model}.json"
    import json  # noqa: PLC0415

    dataset = json.loads(ckpt.read_text())["dataset"]
    data = shared_path(dataset)
    tmp = Path(tempfile.mkdtemp(prefix="first_visit_"))
    base = {k: v for k, v in os.environ.items() if k not in ("CNNVIZ_DATA",)}
    envs = {}
    for name in ("features", "page"):
        cache = tmp / name
        cache.mkdir()
        envs[name] = dict(base, CNNVIZ_CACHE=str(cache), CNNVIZ_WARM="0", CNNVIZ_CHECKPOINTS=str(ROOT / "checkpoints"),
                          CNNVIZ_DATA=str(SHARED), PYTHONPATH=str(ROOT))
        # decode once into each cache (not timed): JPEG decoding is not what is compared
        run(f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
            "from cnnviz.checkpoints import checkpoint_data, held_out_data, load_checkpoint\n"
            f"c = load_checkpoint({str(ckpt)!r}); held_out_data(c.meta, {str(data)!r}); "
            f"checkpoint_data(c.meta, {str(data)!r}, 'train'); print('SECONDS 0')", envs[name])
    t0 = time.perf_counter()
    feat = run(FEATURES_RUN.format(root=str(ROOT), ckpt=str(ckpt), data=str(data)), envs["features"]).split()
    page = run(PAGE_RUN.format(root=str(ROOT), app=str(ROOT / "dashboard" / "app.py"), page=a.page,
                               model=a.model), envs["page"]).split()
    f_s, p_s = float(feat[1]), float(page[1])
    print(f"{a.model} on the full {dataset} ({int(feat[3]):,} images of the training and held-out splits), "
          f"{time.perf_counter() - t0:.0f} s in all:")
    print(f"  one features pass (train + held-out): {f_s:.1f} s")
    print(f"  first visit of {a.page} (script, fresh process and cache, no warm-up): {p_s:.1f} s, "
          f"{int(page[3])} exception(s)")
    print(f"  ratio: {p_s / f_s:.2f}x (target 1.5x: {'pass' if p_s / f_s <= 1.5 else 'MISS'})")


if __name__ == "__main__":
    main()
