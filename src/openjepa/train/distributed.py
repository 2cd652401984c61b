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

`train.parallel=fsdp` shards parameters, gradients and optimiser state over the ranks instead (FSDP2,
`torch.distributed.fsdp.fully_shard`): every transformer block and every top-level module of the method is
its own unit, gathered for its forward/backward and freed after; gradients are reduce-scattered (averaged),
so the update is the same as data-parallel. Checkpoints hold full, unsharded tensors in the same format as
single-process runs (gathered on save, re-sharded on load), so they load anywhere.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import Any

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
    """Join the process group when launched by torchrun (also with one process, so `train.parallel=fsdp` can be
    tried on a single GPU): NCCL on CUDA, gloo otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 and "TORCHELASTIC_RUN_ID" not in os.environ:
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


def local(t: torch.Tensor) -> torch.Tensor:
    """This rank's shard of a DTensor (FSDP), or the tensor itself."""
    from torch.distributed.tensor import DTensor

    return t.to_local() if isinstance(t, DTensor) else t


def shard_method(method: torch.nn.Module) -> None:
    """FSDP2-shard a method in place: each transformer block, then each top-level submodule (encoder, target
    encoder, predictor, projector: the modules the method calls) as its own root."""
    from torch.distributed.fsdp import fully_shard

    from openjepa.models.vit import Block

    if any(True for _ in method.parameters(recurse=False)):
        raise ValueError(f"{type(method).__name__} holds parameters outside its submodules; FSDP cannot shard it")
    for module in method.modules():
        if isinstance(module, Block):
            fully_shard(module)
    for child in method.children():
        if any(True for _ in child.parameters()):
            fully_shard(child)
    # our methods never modify a module's output in place, which is what this warning is about
    warnings.filterwarnings("ignore", message="FSDP2-wrapped module .* returned a view tensor")


def reshard(method: torch.nn.Module) -> None:
    """Put every FSDP module back to sharded parameters. FSDP keeps a root module's gathered weights after its
    forward (for the backward), which for the EMA target (no backward) would last until the next step."""
    from torch.distributed.fsdp import FSDPModule

    for module in method.modules():
        if isinstance(module, FSDPModule):
            module.reshard()


def full_state(obj: dict[str, Any]) -> dict[str, Any]:
    """A state dict (model or optimiser, nested) with every DTensor gathered to a full CPU tensor. Collective under
    FSDP: every rank must call it, in the same order."""
    from torch.distributed.tensor import DTensor

    if isinstance(obj, DTensor):
        return obj.full_tensor().cpu()
    if isinstance(obj, dict):
        return {k: full_state(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [full_state(v) for v in obj]
    return obj


def load_sharded(method: torch.nn.Module, opt: torch.optim.Optimizer, model_sd: dict[str, Any],
                 opt_sd: dict[str, Any]) -> None:
    """Load full (unsharded) model and optimiser state dicts into an FSDP-sharded method and its optimiser."""
    from torch.distributed.tensor import DTensor, distribute_tensor

    def like(ref: torch.Tensor, full: torch.Tensor) -> torch.Tensor:
        if isinstance(ref, DTensor) and tuple(full.shape) == tuple(ref.shape):
            return distribute_tensor(full.to(ref.device, ref.dtype), ref.device_mesh, ref.placements)
        return full

    own = method.state_dict()
    missing = sorted(set(own) - set(model_sd))
    if missing:
        raise KeyError(f"checkpoint lacks {missing[:5]}")
    with torch.no_grad():
        for name, ref in own.items():
            local(ref).copy_(local(like(ref, model_sd[name])))
    params = [p for g in opt.param_groups for p in g["params"]]
    state = {int(i): {k: like(params[int(i)], v) if isinstance(v, torch.Tensor) and v.dim() > 0 else v
                      for k, v in st.items()} for i, st in opt_sd.get("state", {}).items()}
    opt.load_state_dict({"state": state, "param_groups": opt_sd["param_groups"]})


def grad_norm(grads: list[torch.Tensor], world: int, sharded: bool) -> torch.Tensor:
    """Global L2 norm of the gradients; under FSDP the shards' squares are summed over ranks."""
    if not sharded:
        return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    sq = torch.stack([local(g).float().square().sum() for g in grads]).sum()
    if world > 1:
        dist.all_reduce(sq)
    return sq.sqrt()


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
