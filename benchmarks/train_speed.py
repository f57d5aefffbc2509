"""Training images/s of a model: fp32 vs bf16 autocast, contiguous vs channels_last.

    python benchmarks/train_speed.py [--model cifar_fast] [--size 32] [--batch-size 1024]

Synthetic inputs; times whole optimizer steps after warm-up.
"""

from __future__ import annotations

import argparse

import torch

from _common import Timer

from cnnviz.models import get_model
from cnnviz.runtime import resolve_runtime


def images_per_s(model_name: str, size: int, batch: int, precision: str, channels_last: bool,
                 steps: int) -> float:
    rt = resolve_runtime("auto", precision, channels_last)
    torch.manual_seed(0)
    model = get_model(model_name, 10, size).to(rt.device, memory_format=rt.memory_format).train()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01, momentum=0.9)
    x = torch.randn(batch, 3, size, size, device=rt.device).contiguous(memory_format=rt.memory_format)
    y = torch.randint(0, 10, (batch,), device=rt.device)

    def step() -> None:
        with rt.autocast():
            loss = torch.nn.functional.cross_entropy(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(2):
        step()
    if rt.device.type == "cuda":
        torch.cuda.synchronize()
    with Timer() as t:
        for _ in range(steps):
            step()
        if rt.device.type == "cuda":
            torch.cuda.synchronize()
    return steps * batch / t.seconds


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="cifar_fast")
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=512)
    ap.add_argument("--steps", type=int, default=4)
    a = ap.parse_args()
    print(f"{a.model} at {a.size} px, batch {a.batch_size}, {torch.get_num_threads()} threads")
    for precision, cl in (("fp32", False), ("fp32", True), ("bf16", False), ("bf16", True)):
        ips = images_per_s(a.model, a.size, a.batch_size, precision, cl, a.steps)
        print(f"  {precision:4s} {'channels_last' if cl else 'contiguous   '}: {ips:7.0f} img/s")


if __name__ == "__main__":
    main()
