"""Exponential moving average of weights (BYOL / I-JEPA target encoder).

    target <- m * target + (1 - m) * online        for every parameter (buffers are copied)

computed as target += (1 - m) * (online - target) with one `torch._foreach_lerp_` over all parameters: one pass
over the weights instead of two (a multiply, then an add), the same update to float rounding.

The target stays in the online encoder's dtype (fp32): a bf16 copy would lose the update, since with m >= 0.996
the step (1 - m) * (online - target) is below half a bf16 ulp of the weight (2^-9 to 2^-8 of it) whenever the
two differ by less than about half the weight, so most weights would never move (checked: weights 10% apart,
m = 0.996, a bf16 lerp moves none of 10,000).

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
    torch._foreach_lerp_(t_params, o_params, 1.0 - momentum)
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
