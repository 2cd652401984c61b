"""Exponential moving average of weights (BYOL / I-JEPA target encoder).

    target <- m * target + (1 - m) * online        for every parameter (buffers are copied)

`ema_momentum` gives the linear schedule m(step) from `start` to `end` over `total` steps.
"""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, momentum: float) -> None:
    t_params = [p for p in target.parameters()]
    o_params = [p.detach() for p in online.parameters()]
    if len(t_params) != len(o_params):
        raise ValueError("target and online modules have different parameter lists")
    torch._foreach_mul_(t_params, momentum)
    torch._foreach_add_(t_params, o_params, alpha=1.0 - momentum)
    for tb, ob in zip(target.buffers(), online.buffers()):
        tb.copy_(ob)


def ema_momentum(step: int, total: int, start: float, end: float) -> float:
    return start + (end - start) * min(step, total) / max(total, 1)


def ema_step(target: nn.Module | None, online: nn.Module, step: int, total: int, start: float, end: float
             ) -> dict[str, float]:
    """A method's `on_step_end` for an EMA target: update `target` (if any) with the scheduled momentum; logs."""
    if target is None:
        return {}
    m = ema_momentum(step, total, start, end)
    ema_update(target, online, m)
    return {"ema": m}
