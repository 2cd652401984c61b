"""One training step, shared by the training loop and the throughput bench: the step's batch, then forward under
autocast, backward over micro-batches, gradient all-reduce, the non-finite guard, clipping, the optimiser step and
the method's `on_step_end` (e.g. the EMA update)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from openjepa.config import Config
from openjepa.data.transforms import normalize
from openjepa.data.stream import BatchStream, step_generator
from openjepa.eval.features import autocast
from openjepa.train.checkpoint import first_nonfinite
from openjepa.train.compile import compile_blocks
from openjepa.train.distributed import all_reduce_grads, any_rank, grad_norm, local, reshard, shard


def to_float(batch: torch.Tensor | dict[str, torch.Tensor]) -> torch.Tensor | dict[str, torch.Tensor]:
    """uint8 pixels -> normalised float32 (data.transforms.normalize); other tensors (actions, states) unchanged."""
    if isinstance(batch, dict):
        return {k: to_float(v) for k, v in batch.items()}
    return normalize(batch) if batch.dtype == torch.uint8 else batch


def step_batch(method: torch.nn.Module, stream: BatchStream, step: int, seed: int, rank: int = 0, world: int = 1
               ) -> dict[str, torch.Tensor]:
    """This rank's rows of step `step`'s collated batch, still on the CPU.

    The method's collate augments (crops, views) and masks from the step's generator; every rank collates the
    whole batch (a function of the step alone), then keeps its own rows."""
    g = step_generator(seed, step)
    x = to_float(stream.batch(step))  # e.g. (B, C, H, W) un-augmented images: the global batch
    return shard(method.collate(x, g), method.batch_dims, rank, world)


def stream_batch(method: torch.nn.Module, b: dict, seed: int, batch_size: int, rank: int = 0, world: int = 1
                 ) -> dict[str, torch.Tensor]:
    """This rank's collated batch of a streaming step b (data/streaming StreamingSource: its rows of the global
    batch of `batch_size`, decoded and cropped in the workers): the method draws the masks for the global batch
    from the step's generator and keeps its rows (method.collate_decoded)."""
    rows = batch_size // world  # this rank's share of the global batch
    g = step_generator(seed, b["step"])
    return method.collate_decoded(to_float(b["x"]), g, batch_size, slice(rank * rows, (rank + 1) * rows))


def trainable(method: torch.nn.Module) -> list[torch.nn.Parameter]:
    return [p for p in method.parameters() if p.requires_grad]


def nonfinite_grad(module: torch.nn.Module) -> str | None:
    """Name of the first parameter whose gradient holds a NaN or an infinity."""
    return first_nonfinite({name: p.grad for name, p in module.named_parameters() if p.grad is not None})


def forward_backward(method: torch.nn.Module, batch: dict[str, torch.Tensor], device: torch.device, precision: str,
                     accum_steps: int) -> tuple[torch.Tensor, dict[str, float], str | None]:
    """method.step under autocast and backward on each of `accum_steps` micro-batches: gradients summed, loss
    averaged. Returns (loss, the last micro-batch's logs, a description of the first non-finite loss or None)."""
    loss, logs, bad_loss = 0.0, {}, None
    for i in range(accum_steps):
        micro = {k: v.to(device, non_blocking=True) for k, v in shard(batch, method.batch_dims, i, accum_steps).items()}
        with autocast(device, precision):
            part, logs = method.step(micro)
        if not torch.isfinite(part) and bad_loss is None:
            names = [k for k, v in logs.items() if not math.isfinite(v)]
            bad_loss = "loss" + (f" ({', '.join(names)})" if names else "")
        (part / accum_steps).backward()
        loss = loss + part.detach() / accum_steps
    return loss, logs, bad_loss


@dataclass
class StepResult:
    """What one train_step did."""
    loss: torch.Tensor  # this rank's loss: the mean over the micro-batches, detached
    logs: dict[str, float]  # the method's logs (last micro-batch), plus on_step_end's when the step was applied
    grad_norm: torch.Tensor  # global L2 norm of the gradients, before clipping
    skipped: str | None = None  # the non-finite tensor that kept this step from the weights; None: applied


def train_step(method: torch.nn.Module, opt: torch.optim.Optimizer, batch: dict[str, torch.Tensor], step: int,
               cfg: Config, device: torch.device, params: list[torch.nn.Parameter] | None = None, world: int = 1,
               fsdp: bool = False) -> StepResult:
    """Step `step` (counted from 0) on this rank's collated `batch`: forward and backward over `train.accum_steps`
    micro-batches, gradients averaged over the `world` ranks, clipped to `optim.grad_clip`, the optimiser step,
    then method.on_step_end(step + 1, train.steps). The learning rate is whatever the optimiser holds (the loop
    applies the schedules first).

    A non-finite loss or gradient never reaches the weights: the gradients are dropped, nothing else happens and
    `skipped` names the tensor; every rank reaches the same verdict. `params` are the trainable parameters (found
    when not given). With `train.compile` the method's blocks are compiled at the first call (train/compile.py).
    `train.precision` must be resolved (bf16 or fp32: the loop resolves `auto`, train/precision.py)."""
    if cfg.train.precision not in ("bf16", "fp32"):
        raise ValueError(f"train_step needs a resolved train.precision (bf16 or fp32), got "
                         f"{cfg.train.precision!r}: resolve it with openjepa.train.precision.resolve_precision")
    if cfg.train.compile:
        compile_blocks(method)  # the first step compiles; later calls find every block compiled
    params = trainable(method) if params is None else params
    opt.zero_grad(set_to_none=True)
    loss, logs, bad_loss = forward_backward(method, batch, device, cfg.train.precision, cfg.train.accum_steps)
    if not fsdp:  # FSDP reduce-scatters (averages) the gradients during backward
        all_reduce_grads(params, world)
    grads = [p.grad for p in params if p.grad is not None]
    norm = grad_norm(grads, world, fsdp)
    culprit = None
    if any_rank(bad_loss is not None, world, device):
        culprit = bad_loss or "loss (on another rank)"
    elif not torch.isfinite(norm):  # checked before clipping, which would spread the NaN
        culprit = f"gradient of {nonfinite_grad(method)}"
    if culprit is not None:
        opt.zero_grad(set_to_none=True)
        return StepResult(loss, logs, norm, culprit)
    if cfg.optim.grad_clip > 0:
        torch._foreach_mul_([local(g) for g in grads], torch.clamp(cfg.optim.grad_clip / (norm + 1e-6), max=1.0))
    opt.step()
    if fsdp:
        reshard(method)  # the EMA works on shards
    logs.update(method.on_step_end(step + 1, cfg.train.steps))
    return StepResult(loss, logs, norm)
