"""Time of one exact nearest-neighbour query over 50,000 x 4096 float32 features (the CIFAR-10
training set's penultimate vectors), for cnnviz's NeighbourIndex and for scikit-learn's brute
force NearestNeighbors, in the same run on the same random data.

    python benchmarks/knn_speed.py [--n 50000] [--dim 4096] [--k 10] [--repeats 9]

Prints the median milliseconds per query of each, the ratio, and the memory bandwidth ours
reaches (the floor is one read of the matrix per query).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def median_ms(fn, queries: np.ndarray) -> float:
    fn(queries[0])  # warm-up (page-in, BLAS thread start)
    times = []
    for q in queries[1:]:
        t0 = time.perf_counter()
        fn(q)
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--dim", type=int, default=4096)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=9)
    args = ap.parse_args()

    from sklearn.neighbors import NearestNeighbors

    from cnnviz.inspect.neighbours import NeighbourIndex

    rng = np.random.default_rng(0)
    # ReLU-like non-negative features, as a penultimate layer gives
    data = np.maximum(rng.standard_normal((args.n, args.dim), dtype=np.float32), 0)
    queries = np.maximum(rng.standard_normal((args.repeats + 1, args.dim), dtype=np.float32), 0)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"{args.n:,} x {args.dim} float32 ({data.nbytes / 1e6:.0f} MB), k={args.k}, "
          f"median of {args.repeats} single queries, {cores} cores")

    t0 = time.perf_counter()
    index = NeighbourIndex(data, ("euclidean",))
    print(f"build NeighbourIndex: {time.perf_counter() - t0:.2f} s")
    ours = median_ms(lambda q: index.query(q, args.k), queries)

    sk = NearestNeighbors(n_neighbors=args.k, algorithm="brute", metric="euclidean").fit(data)
    theirs = median_ms(lambda q: sk.kneighbors(q[None], args.k), queries)

    a = index.query(queries[1], args.k)
    d_sk, i_sk = sk.kneighbors(queries[1][None], args.k)
    same = np.array_equal(a.indices[0], i_sk[0])
    gap = float(np.abs(a.distances[0] - d_sk[0]).max())

    print(f"NeighbourIndex (euclidean):        {ours:8.1f} ms/query "
          f"({data.nbytes / (ours / 1e3) / 1e9:.1f} GB/s over the matrix)")
    print(f"sklearn NearestNeighbors (brute):  {theirs:8.1f} ms/query")
    print(f"speed-up: {theirs / ours:.1f}x   same neighbours as sklearn: {same}   "
          f"max distance difference: {gap:.2e}")

    cos = NeighbourIndex(data, ("cosine",))
    ours_cos = median_ms(lambda q: cos.query(q, args.k, "cosine"), queries)
    print(f"NeighbourIndex (cosine):           {ours_cos:8.1f} ms/query")

    block = queries[1:]
    t0 = time.perf_counter()
    index.query(block, args.k)
    per = (time.perf_counter() - t0) / len(block) * 1e3
    print(f"NeighbourIndex batched ({len(block)} queries at once): {per:.1f} ms/query")


if __name__ == "__main__":
    main()
