"""Data-parallel training under `torchrun` (torch.distributed), and gradient accumulation.

    torchrun --nproc_per_node=N -m openjepa train CONFIG ...

Each rank builds the same model from the same seed, collates the *global* batch of the step (crops, masks and
views are functions of (seed, step), and I-JEPA's masks are truncated to the batch's smallest context), then
keeps its own rows (`shard`), and splits them further into `train.accum_steps` micro-batches. Gradients are
summed over micro-batches and averaged over ranks with one all-reduce, so the update equals the one of a
single process on the whole global batch (up to float rounding) for any world size and accumulation, for
methods without per-batch statistics; SIGReg is made global by its own all-reduce (losses/sigreg.py). Since
the batch of a step does not depend on the world size, a checkpoint resumes on any number of ranks.
Rank 0 alone logs, evaluates, checkpoints and writes reports.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed() -> Dist:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1): NCCL on CUDA, gloo otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def shard(batch: dict[str, torch.Tensor], batch_dims: dict[str, int], index: int, parts: int
          ) -> dict[str, torch.Tensor]:
    """Part `index` of `parts` equal slices of every batched tensor (`batch_dims`: key -> its batch axis);
    other entries (e.g. the step's seed) are kept whole."""
    out = {}
    for key, t in batch.items():
        axis = batch_dims.get(key)
        if axis is None:
            out[key] = t
            continue
        n = t.shape[axis]
        if n % parts:
            raise ValueError(f"batch of {n} along {key!r} does not split into {parts} equal parts "
                             f"(data.batch_size must be divisible by world size x train.accum_steps)")
        size = n // parts
        out[key] = t.narrow(axis, index * size, size)
    return out


def all_reduce_grads(params: list[torch.nn.Parameter], world: int) -> None:
    """Average gradients over ranks with one flattened all-reduce (missing grads count as zeros)."""
    if world <= 1:
        return
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    grads = [p.grad for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world
    offset = 0
    for g in grads:
        g.copy_(flat[offset: offset + g.numel()].view_as(g))
        offset += g.numel()


def any_rank(flag: bool, world: int, device: torch.device) -> bool:
    """True on every rank if `flag` is true on any rank (keeps ranks' decisions identical)."""
    if world <= 1:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def mean_over_ranks(value: float, world: int, device: torch.device) -> float:
    if world <= 1:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t.item()) / world


def broadcast_parameters(module: torch.nn.Module, world: int) -> None:
    """Make every rank start from rank 0's parameters and buffers."""
    if world <= 1:
        return
    for t in module.state_dict().values():
        dist.broadcast(t, src=0)


def barrier(world: int) -> None:
    if world > 1:
        dist.barrier()
