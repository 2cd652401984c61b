"""Model-predictive path integral control over action sequences, batched over problems (Williams et al. 2017;
the planner of EB-JEPA's Two-Rooms results).

    cost_fn(actions (B, N, H, A)) -> costs (B, N)
    each iteration: N sequences ~ mean + std * eps (clipped), weights w = softmax(-(cost - min cost) / temperature),
    mean <- sum_n w_n a_n, std <- sqrt(sum_n w_n (a_n - mean)^2) (kept >= min_std); repeat `iters` times.

Returns the final mean (B, H, A) and the cost of the best sequence seen (B,).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from openjepa.planning.cem import CostFn, initial_distribution, project, sample_candidates


@dataclass
class MPPI:
    horizon: int
    action_low: torch.Tensor  # (A,)
    action_high: torch.Tensor  # (A,)
    samples: int = 200
    iters: int = 10
    temperature: float = 0.2  # relative to the spread of costs (costs are divided by their std per problem)
    init_std: float | None = None  # default: half the action range
    min_std: float = 1e-3
    max_norm: float | None = None

    def __post_init__(self) -> None:
        if self.horizon < 1 or self.iters < 1 or self.samples < 2:
            raise ValueError("need horizon >= 1, iters >= 1 and samples >= 2")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")

    def plan(self, cost_fn: CostFn, batch: int = 1, init_mean: torch.Tensor | None = None,
             generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        low, high = self.action_low.float(), self.action_high.float()
        mean, std = initial_distribution(batch, self.horizon, low, high, init_mean, self.init_std)
        best_cost = torch.full((batch,), float("inf"))
        best = mean.clone()
        for _ in range(self.iters):
            cand = sample_candidates(mean, std, self.samples, low, high, self.max_norm, generator)  # (B, N, H, A)
            cost = cost_fn(cand)  # (B, N)
            scale = cost.std(1, keepdim=True).clamp_min(1e-8)
            w = torch.softmax(-(cost - cost.min(1, keepdim=True).values) / (self.temperature * scale), dim=1)  # (B, N)
            mean = (w[:, :, None, None] * cand).sum(1)  # (B, H, A)
            std = (w[:, :, None, None] * (cand - mean[:, None]) ** 2).sum(1).sqrt().clamp_min(self.min_std)
            i = cost.argmin(1)
            c = cost.gather(1, i[:, None])[:, 0]
            better = c < best_cost
            best_cost = torch.where(better, c, best_cost)
            best[better] = cand[better, i[better]]
        return project(mean, low, high, self.max_norm), best_cost
