"""Model-predictive control with a latent world model: plan toward a goal image, execute k actions, replan.

    s_goal = model.encode_goal(goal obs) (E, D)                        once per episode
    loop:  s0 = model.encode_state(obs) (E, D)
           plan = planner.plan(cost)  over actions (E, N, H, A)        cost = latent_cost(...)
           execute plan[:, :k] in every unfinished env, warm-start the next plan with the rest (shifted)
    until success (env.is_success) or env.cfg.max_steps steps.

Temporal abstraction: a model trained with world.frameskip = k has `action_repeat` = k; each planned action is
then held for k env steps, `replan_every` counts planned actions (k env steps each) and the horizon H spans H k
env steps. Step counts and the step limit are always env steps.

Cost (PLDM / EB-JEPA): the L2 distance between imagined states and the goal state, summed over all H imagined
steps (`cost="sum"`) or taken at the last one (`cost="last"`).

E episodes run side by side (one batched plan for all unfinished ones). `seconds_per_step` is the planning wall
time divided by the env steps executed (amortised over the envs planned together); with E=1 it is the latency
of a single agent. `seconds_per_replan` is the wall time of one batched planning call.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from openjepa.data.transforms import normalize
from openjepa.planning.cem import CEM, CostFn
from openjepa.planning.mppi import MPPI
from openjepa.planning.search import GraphSearch

PLANNERS = {  # sampling planners: plan(cost_fn, ...) over action sequences
    "cem": CEM,
    "mppi": MPPI,
}
SEARCH_PLANNERS = {  # planners that expand the model themselves: plan(step_fn, s0, s_goal)
    "search": GraphSearch,
}


def model_step(model):
    """One planned action of the model: states (M, D), actions (M, A) -> next states (M, D)."""
    return lambda s, a: model.imagine(s, a[:, None])[:, 0]


def latent_cost(model, s0: torch.Tensor, s_goal: torch.Tensor, mode: str = "sum") -> CostFn:
    """Cost of candidate actions (B, N, H, A) -> (B, N) from the states `model.imagine` predicts from s0 (B, D)."""
    if mode not in ("sum", "last"):
        raise ValueError(f"cost mode must be 'sum' or 'last', got {mode!r}")

    def cost(a: torch.Tensor) -> torch.Tensor:
        B, N, H, A = a.shape
        s = model.imagine(s0.repeat_interleave(N, 0), a.reshape(B * N, H, A))  # (B*N, H, D)
        d = (s - s_goal.repeat_interleave(N, 0)[:, None]).norm(dim=-1)  # (B*N, H)
        return (d.sum(1) if mode == "sum" else d[:, -1]).view(B, N)
    return cost


def obs_tensor(obs: list[np.ndarray]) -> torch.Tensor:
    """Env observations uint8 (C, H, W) each -> normalised float (E, C, H, W)."""
    return normalize(torch.from_numpy(np.stack(obs)))


@dataclass
class Episodes:
    """What happened: per-episode outcome and traces for pictures."""
    success: list[bool]
    final_distance: list[float]
    steps: list[int]
    seconds_per_step: float
    seconds_per_replan: float = 0.0
    paths: list[list[np.ndarray]] = field(default_factory=list)  # executed positions per episode
    goals: list[np.ndarray] = field(default_factory=list)
    plans: list[list[tuple[np.ndarray, np.ndarray]]] = field(default_factory=list)  # (position, planned actions (H, A))
    action_repeat: int = 1  # env steps per planned action (the model's frameskip)
    frames: list[np.ndarray] = field(default_factory=list)  # render() of episode 0, one per step

    def summary(self) -> dict:
        return {"episodes": len(self.success), "success_rate": float(np.mean(self.success)),
                "mean_final_distance": float(np.mean(self.final_distance)),
                "seconds_per_step": float(self.seconds_per_step), "mean_steps": float(np.mean(self.steps))}


def run_mpc(model, envs: list, seeds: list[int], planner, replan_every: int = 1, cost: str = "sum",
            generator: torch.Generator | None = None, record_frames: bool = False, max_steps: int | None = None,
            reset_options: list[dict | None] | None = None) -> Episodes:
    """One episode in each env (reset with its seed), all planned together; see the module docstring."""
    E = len(envs)
    if replan_every < 1 or replan_every > planner.horizon:
        raise ValueError(f"replan_every must be in [1, horizon={planner.horizon}], got {replan_every}")
    opts = reset_options or [None] * E
    obs, infos = zip(*[env.reset(seed=s, options=o) for env, s, o in zip(envs, seeds, opts)])
    obs, infos = list(obs), list(infos)
    limit = max_steps or envs[0].cfg.max_steps
    s_goal = model.encode_goal(obs_tensor([env.goal_obs() for env in envs]))  # (E, D)
    done = [bool(i["success"]) for i in infos]
    steps = [0] * E
    paths = [[i["pos"].copy()] for i in infos]
    plans: list[list] = [[] for _ in range(E)]
    frames = [envs[0].render()] if record_frames else []
    A = envs[0].action_space.shape[0]
    repeat = getattr(model, "action_repeat", 1)  # env steps per planned action
    warm = torch.zeros(E, planner.horizon, A)
    if isinstance(planner, GraphSearch):
        planner.reset()  # its memory of blocked moves belongs to these episodes
    plan_seconds, executed, replans = 0.0, 0, 0
    t = 0
    while t < limit and not all(done):
        live = [e for e in range(E) if not done[e]]
        t0 = time.perf_counter()
        s0 = model.encode_state(obs_tensor([obs[e] for e in live]))  # (L, D)
        if isinstance(planner, GraphSearch):
            plan, _ = planner.plan(model_step(model), s0, s_goal[live], keys=live)  # (L, H, A)
        else:
            plan, _ = planner.plan(latent_cost(model, s0, s_goal[live], cost), batch=len(live),
                                   init_mean=warm[live], generator=generator)  # (L, H, A)
        plan_seconds += time.perf_counter() - t0
        replans += 1
        k = min(replan_every, -(-(limit - t) // repeat))  # planned actions to execute now
        for j, e in enumerate(live):
            plans[e].append((infos[e]["pos"].copy(), plan[j].numpy().copy()))
            for i in range(k * repeat):
                if done[e]:
                    break
                obs[e], _, term, trunc, infos[e] = envs[e].step(plan[j, i // repeat].numpy())
                steps[e] += 1
                executed += 1
                paths[e].append(infos[e]["pos"].copy())
                if record_frames and e == 0:
                    frames.append(envs[0].render())
                done[e] = bool(term) or steps[e] >= limit
        shifted = torch.cat([plan[:, k:], torch.zeros(len(live), k, A)], dim=1)
        warm[live] = shifted
        t += k * repeat
    return Episodes(success=[env.is_success() for env in envs], final_distance=[env.distance() for env in envs],
                    steps=steps, seconds_per_step=plan_seconds / max(executed, 1),
                    seconds_per_replan=plan_seconds / max(replans, 1), paths=paths,
                    goals=[env.goal.copy() for env in envs], plans=plans, frames=frames, action_repeat=repeat)


def run_random(envs: list, seeds: list[int], max_steps: int | None = None,
               reset_options: list[dict | None] | None = None) -> Episodes:
    """The random-action baseline: uniform actions in the action box (clipped to the env's max_step)."""
    opts = reset_options or [None] * len(envs)
    success, dist, steps, paths = [], [], [], []
    for env, seed, o in zip(envs, seeds, opts):
        _, info = env.reset(seed=seed, options=o)
        rng = np.random.default_rng(seed + 1)
        path, n, done = [info["pos"].copy()], 0, bool(info["success"])
        while not done and n < (max_steps or env.cfg.max_steps):
            _, _, done, _, info = env.step(rng.uniform(env.action_space.low, env.action_space.high))
            path.append(info["pos"].copy())
            n += 1
        success.append(env.is_success())
        dist.append(env.distance())
        steps.append(n)
        paths.append(path)
    return Episodes(success=success, final_distance=dist, steps=steps, seconds_per_step=0.0, paths=paths,
                    goals=[env.goal.copy() for env in envs])
