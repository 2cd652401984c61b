"""Cross-entropy method over action sequences, batched over problems (Rubinstein 1999; as used by PlaNet,
DINO-WM and V-JEPA 2-AC for latent planning).

    cost_fn(actions (B, N, H, A)) -> costs (B, N)      B independent problems, N candidate sequences each
    mean, std (B, H, A): sample N sequences ~ N(mean, std), clip to the action box (and to `max_norm` per
    action), keep the `elites` cheapest, refit mean and std to them; repeat `iters` times.

Returns the final mean (B, H, A) and the cost of the best sequence seen (B,). Randomness comes from a
`torch.Generator`, so a plan is reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

CostFn = Callable[[torch.Tensor], torch.Tensor]


def project(a: torch.Tensor, low: torch.Tensor, high: torch.Tensor, max_norm: float | None) -> torch.Tensor:
    """Actions (..., A) clipped to the box [low, high] and, with max_norm, rescaled to norm <= max_norm."""
    a = torch.maximum(torch.minimum(a, high), low)
    if max_norm is not None:
        n = a.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        a = a * torch.clamp(max_norm / n, max=1.0)
    return a


def initial_distribution(batch: int, horizon: int, low: torch.Tensor, high: torch.Tensor,
                         init_mean: torch.Tensor | None, init_std: float | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Sampling mean (B, H, A): zeros or init_mean (a warm start); std: init_std, or half the action range."""
    mean = torch.zeros(batch, horizon, low.shape[0]) if init_mean is None else init_mean.clone().float()
    std = torch.full_like(mean, init_std) if init_std is not None else torch.full_like(mean, 0.5) * (high - low)
    return mean, std


def sample_candidates(mean: torch.Tensor, std: torch.Tensor, samples: int, low: torch.Tensor, high: torch.Tensor,
                      max_norm: float | None, generator: torch.Generator | None) -> torch.Tensor:
    """(B, N, H, A) sequences ~ N(mean, std) projected to the feasible set; candidate 0 is the projected mean."""
    B, H, A = mean.shape
    noise = torch.randn(B, samples, H, A, generator=generator)
    cand = project(mean[:, None] + std[:, None] * noise, low, high, max_norm)  # (B, N, H, A)
    cand[:, 0] = project(mean, low, high, max_norm)  # keep the current mean as a candidate
    return cand


@dataclass
class CEM:
    horizon: int  # H
    action_low: torch.Tensor  # (A,)
    action_high: torch.Tensor  # (A,)
    samples: int = 200  # N candidate sequences per iteration
    elites: int = 20
    iters: int = 10
    init_std: float | None = None  # default: half the action range
    min_std: float = 1e-3
    max_norm: float | None = None  # per-action norm limit (e.g. Two-Rooms' max_step)

    def __post_init__(self) -> None:
        if not 1 <= self.elites <= self.samples:
            raise ValueError(f"need 1 <= elites <= samples, got elites={self.elites}, samples={self.samples}")
        if self.horizon < 1 or self.iters < 1:
            raise ValueError(f"horizon and iters must be >= 1, got {self.horizon} and {self.iters}")

    def plan(self, cost_fn: CostFn, batch: int = 1, init_mean: torch.Tensor | None = None,
             generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        low, high = self.action_low.float(), self.action_high.float()
        A = low.shape[0]
        mean, std = initial_distribution(batch, self.horizon, low, high, init_mean, self.init_std)
        best_cost = torch.full((batch,), float("inf"))
        best = mean.clone()
        for _ in range(self.iters):
            cand = sample_candidates(mean, std, self.samples, low, high, self.max_norm, generator)  # (B, N, H, A)
            cost = cost_fn(cand)  # (B, N)
            top = cost.topk(self.elites, dim=1, largest=False)
            elite = torch.gather(cand, 1, top.indices[:, :, None, None].expand(-1, -1, self.horizon, A))  # (B, E, H, A)
            mean, std = elite.mean(1), elite.std(1, unbiased=False).clamp_min(self.min_std)
            better = top.values[:, 0] < best_cost
            best_cost = torch.where(better, top.values[:, 0], best_cost)
            best[better] = elite[better, 0]
        return best, best_cost
