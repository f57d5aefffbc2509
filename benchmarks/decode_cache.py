"""Decode + cache time for CIFAR-10 (both splits), then the cached load time.

    python benchmarks/decode_cache.py
"""

from __future__ import annotations

import tempfile

from _common import Timer, shared_path

from cnnviz.data import Preprocess, load_dataset


def main() -> None:
    root = shared_path("cifar10")
    with tempfile.TemporaryDirectory() as cache:
        for split in ("train", "test"):
            with Timer() as cold:
                ds = load_dataset(root, split, Preprocess(32), cache_dir=cache)
            with Timer() as warm:
                load_dataset(root, split, Preprocess(32), cache_dir=cache)
            print(f"cifar10 {split}: {len(ds)} images, decode+cache {cold.seconds:.2f} s "
                  f"({len(ds) / cold.seconds:.0f} img/s), cached load {warm.seconds:.2f} s")


if __name__ == "__main__":
    main()
