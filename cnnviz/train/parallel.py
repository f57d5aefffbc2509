"""Training in several processes: the model in ``DistributedDataParallel`` (gradients averaged
over the ranks) and, optionally, BatchNorm over the global batch instead of each rank's share.
The process group itself is :mod:`cnnviz.distributed`'s."""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from .. import distributed as dist_

__all__ = ["GlobalBatchNorm", "data_parallel", "global_batchnorm"]


def data_parallel(module: nn.Module, device: torch.device, broadcast_buffers: bool = True) -> nn.Module:
    """``module`` in ``DistributedDataParallel``: rank 0's parameters and buffers copied to
    every rank now, gradients averaged over the ranks in every backward pass, and (with
    ``broadcast_buffers``) rank 0's buffers copied again before every forward pass. Only
    parameters that train (``requires_grad``) take part: wrap again after freezing some."""
    import inspect

    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    # PyTorch 2.14 renamed the option (both copy the buffers at construction); older ones know the old name
    known = inspect.signature(DistributedDataParallel.__init__).parameters
    sync = {"forward_sync_buffers" if "forward_sync_buffers" in known else "broadcast_buffers": broadcast_buffers}
    return DistributedDataParallel(module, device_ids=ids, **sync)


class _SumOverRanks(torch.autograd.Function):
    """Sum over the ranks whose gradient is the sum over the ranks of the gradients."""

    @staticmethod
    def forward(ctx: Any, t: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        out = t.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        out = grad.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(out)
        return out


class GlobalBatchNorm(nn.Module):
    """A BatchNorm layer (``bn``, whose parameters and buffers it uses) that in training
    normalises by the statistics of the whole global batch, summed over the ranks in one
    differentiable all-reduce per pass (PyTorch's ``SyncBatchNorm`` refuses CPU tensors).
    Sums are taken around the running mean (the same on every rank), in float64 across ranks.
    Outside training, or in a single process, it is ``bn`` itself."""

    def __init__(self, bn: nn.modules.batchnorm._BatchNorm):
        super().__init__()
        self.bn = bn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bn = self.bn
        if not (self.training and dist_.active()):
            return bn(x)
        c = x.shape[1]
        shape = [1, c] + [1] * (x.dim() - 2)
        dims = [0, *range(2, x.dim())]
        xf = x.float()
        tracked = bn.track_running_stats and bn.running_mean is not None
        shift = bn.running_mean.detach().float() if tracked else xf.new_zeros(c)
        d = xf - shift.view(shape)
        count = torch.full((1,), xf.numel() / c, dtype=torch.float64, device=x.device)
        local = torch.cat([d.sum(dims, dtype=torch.float64), (d * d).sum(dims, dtype=torch.float64), count])
        total = _SumOverRanks.apply(local)
        n = total[-1]
        mean_d = total[:c] / n
        var = (total[c:2 * c] / n - mean_d * mean_d).clamp_min(0)
        mean = shift.double() + mean_d
        if tracked:
            with torch.no_grad():
                bn.num_batches_tracked.add_(1)
                m = bn.momentum if bn.momentum is not None else 1.0 / float(bn.num_batches_tracked)
                unbiased = var * n / (n - 1).clamp_min(1)
                bn.running_mean.mul_(1 - m).add_(mean.to(bn.running_mean.dtype), alpha=m)
                bn.running_var.mul_(1 - m).add_(unbiased.to(bn.running_var.dtype), alpha=m)
        y = (xf - mean.float().view(shape)) * torch.rsqrt(var.float().view(shape) + bn.eps)
        if bn.affine:
            y = y * bn.weight.view(shape) + bn.bias.view(shape)
        return y.to(x.dtype)


def global_batchnorm(model: nn.Module) -> nn.Module:
    """A copy of ``model``'s module tree that shares its parameters and buffers (training the
    copy trains ``model``), with every BatchNorm layer in a :class:`GlobalBatchNorm`. ``model``
    itself is not changed."""
    memo: dict[int, nn.Module] = {}

    def copy_module(m: nn.Module) -> nn.Module:
        if id(m) in memo:
            return memo[id(m)]
        v = copy.copy(m)
        v._parameters = m._parameters.copy()
        v._buffers = m._buffers.copy()
        v._modules = {k: (copy_module(c) if c is not None else None) for k, c in m._modules.items()}
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            v = GlobalBatchNorm(v).train(m.training)
        memo[id(m)] = v
        return v

    return copy_module(model)
