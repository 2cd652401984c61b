"""`openjepa plan`: load a world-model checkpoint, run MPC episodes in an env, summarise, draw.

The result dict has {"env", "planner", "episodes", "success_rate", "mean_final_distance", "seconds_per_step"}
plus the settings used. Pictures: `picture` draws the executed path of up to 6 episodes next to what the first
plan of each intended (its actions integrated from the start in free space, walls ignored); `gif` animates the
first episode (env.render(), upscaled 4x) with Pillow; `energy_landscape` plots the planning cost over a grid
of first actions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from PIL import Image

from openjepa.data.envs import make_env
from openjepa.planning.mpc import PLANNERS, SEARCH_PLANNERS, latent_cost, obs_tensor, run_mpc


def build_planner(name: str, env, horizon: int, samples: int = 200, iters: int = 10, **settings):
    """A planner of PLANNERS (samples and iters per plan) or SEARCH_PLANNERS (its own defaults); `settings` set
    other fields of the planner (e.g. recall=0.5 for search)."""
    if name not in PLANNERS and name not in SEARCH_PLANNERS:
        raise ValueError(f"unknown planner {name!r}; choose from {sorted(PLANNERS | SEARCH_PLANNERS)}")
    low = torch.as_tensor(env.action_space.low, dtype=torch.float32)
    high = torch.as_tensor(env.action_space.high, dtype=torch.float32)
    if name in SEARCH_PLANNERS:
        return SEARCH_PLANNERS[name](horizon=horizon, action_low=low, action_high=high, max_norm=float(env.cfg.max_step),
                                     **settings)
    kw = {"elites": max(2, samples // 10)} if name == "cem" else {}
    return PLANNERS[name](horizon=horizon, action_low=low, action_high=high, samples=samples, iters=iters,
                          max_norm=float(env.cfg.max_step), **(kw | settings))


def load_world_model(checkpoint: str | Path):
    from openjepa.train.checkpoint import load_method

    path = Path(checkpoint)
    if path.is_dir() and (path / "checkpoints" / "last.pt").is_file():
        path = path / "checkpoints" / "last.pt"  # a run's best.pt follows the online RankMe, not planning success
    model, cfg, _ = load_method(path)
    if not model.has_actions:
        raise ValueError(f"{checkpoint} holds a {cfg.train.method!r} model; planning needs a world_model checkpoint")
    return model, cfg


def plan_episodes(checkpoint, env_name: str = "two_rooms", overrides=(), planner: str = "mppi", episodes: int = 20,
                  horizon: int | None = None, samples: int = 200, iters: int = 10, replan_every: int = 1,
                  cost: str = "sum", seed: int = 1000, parallel: int = 0, picture: str | None = None,
                  gif: str | None = None, model=None, threads: int = 0, settings: dict | None = None) -> dict:
    """MPC episodes seeded seed, seed + 1, ...; `threads` > 0 sets torch's CPU threads (planning is many small
    ops: on a busy 2-core machine 1 thread is several times faster than an oversubscribed 2); `settings`: other
    planner fields (build_planner)."""
    if episodes < 1:
        raise ValueError(f"--episodes must be >= 1, got {episodes}")
    # horizon and replan_every count planned actions; with a frameskip-k model each is held for k env steps
    if threads:
        torch.set_num_threads(threads)
    if model is None:
        model, cfg = load_world_model(checkpoint)
        horizon = horizon or cfg.world.frames - 1
    horizon = horizon or 16
    envs = [make_env(env_name, overrides) for _ in range(episodes)]
    plan_cls = build_planner(planner, envs[0], horizon, samples, iters, **(settings or {}))
    batch = parallel or episodes
    g = torch.Generator().manual_seed(seed)
    results = []
    for lo in range(0, episodes, batch):
        part = list(range(lo, min(lo + batch, episodes)))
        results.append(run_mpc(model, [envs[i] for i in part], [seed + i for i in part], plan_cls,
                               replan_every=replan_every, cost=cost, generator=g, record_frames=bool(gif) and lo == 0))
    success = sum((r.success for r in results), [])
    dist = sum((r.final_distance for r in results), [])
    steps = sum(sum(r.steps) for r in results)
    sps = sum(r.seconds_per_step * sum(r.steps) for r in results) / max(steps, 1)  # amortised over `batch` envs
    out = {"env": env_name, "planner": planner, "episodes": episodes, "success_rate": float(np.mean(success)),
           "mean_final_distance": float(np.mean(dist)), "seconds_per_step": round(float(sps), 4),
           "seconds_per_replan": round(float(np.mean([r.seconds_per_replan for r in results])), 4),
           "horizon": horizon, "action_repeat": model.action_repeat, "samples": samples,
           "iters": iters, "replan_every": replan_every, "cost": cost, "parallel": batch,
           "env_overrides": list(overrides), "seed": seed}
    if picture:
        draw_paths(results[0], envs[0], picture)
        out["picture"] = str(picture)
    if gif:
        write_gif(results[0].frames, gif)
        out["gif"] = str(gif)
    return out


def draw_paths(res, env, path: str | Path, n: int = 6) -> None:
    """Executed paths (solid) and each episode's first plan integrated in free space (dashed) over the layout."""
    k = min(n, len(res.paths))
    fig = Figure(figsize=(3 * k, 3.2))
    axes = np.atleast_1d(fig.subplots(1, k))
    walls = env._walls
    for e, ax in enumerate(axes):
        ax.imshow(walls, cmap="Greys", vmin=0, vmax=2, origin="upper")
        p = np.array(res.paths[e])
        ax.plot(p[:, 0], p[:, 1], "-", color="tab:blue", lw=1.5, label="executed")
        if res.plans and res.plans[e]:
            start, acts = res.plans[e][0]
            acts = np.repeat(acts, res.action_repeat, axis=0)  # each planned action is held action_repeat steps
            planned = start + np.cumsum(np.vstack([np.zeros(2), acts]), axis=0)
            ax.plot(planned[:, 0], planned[:, 1], "--", color="tab:orange", lw=1.2, label="first plan")
        ax.plot(*p[0], "o", color="tab:blue", ms=5)
        ax.plot(*res.goals[e], "*", color="tab:green", ms=10)
        ax.set_title(f"{'success' if res.success[e] else 'fail'}, d={res.final_distance[e]:.1f}", fontsize=9)
        ax.set_xticks([]), ax.set_yticks([])
    axes[0].legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)


def write_gif(frames: list[np.ndarray], path: str | Path, scale: int = 4) -> None:
    if not frames:
        raise ValueError("no frames recorded")
    imgs = [Image.fromarray(f).resize((f.shape[1] * scale, f.shape[0] * scale), Image.NEAREST) for f in frames]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    imgs[0].save(path, save_all=True, append_images=imgs[1:], duration=80, loop=0)


@torch.no_grad()
def energy_landscape(model, env, seed: int, horizon: int = 8, grid: int = 21, cost: str = "sum") -> dict:
    """Planning cost of constant-action plans (the first action repeated `horizon` times) over a grid of first
    actions (dx, dy) in the action box, for one start/goal of `env` -> {"dx", "dy", "cost" (grid, grid), "start",
    "goal", "true_cost"} where true_cost is the real distance to the goal after executing the same plan."""
    obs, info = env.reset(seed=seed)
    m = float(env.cfg.max_step)
    axis = np.linspace(-m, m, grid)
    dx, dy = np.meshgrid(axis, axis)
    acts = torch.tensor(np.stack([dx, dy], -1), dtype=torch.float32).view(1, grid * grid, 1, 2).expand(-1, -1, horizon, -1)
    s0 = model.encode_state(obs_tensor([obs]))
    sg = model.encode_goal(obs_tensor([env.goal_obs()]))
    c = latent_cost(model, s0, sg, cost)(acts.contiguous()).view(grid, grid).numpy()
    true = np.zeros((grid, grid))
    repeat = model.action_repeat  # env steps per planned action
    for i in range(grid):
        for j in range(grid):
            env.reset(seed=seed)
            for _ in range(horizon * repeat):
                env.step([dx[i, j], dy[i, j]])
            true[i, j] = env.distance()
    # latent distance to the goal with the agent placed at every free position (the goal fixed)
    xs = np.arange(0, env.cfg.size, 2.0)
    pts = np.array([[x, y] for y in xs for x in xs])
    free = np.array([not env.blocked(p) for p in pts])
    env.reset(seed=seed)
    z = model.encode_goal(obs_tensor([env.obs_at(p) for p in pts[free]]))
    dmap = np.full(len(pts), np.nan)
    dmap[free] = (z - sg).norm(dim=-1).numpy()
    return {"dx": axis, "dy": axis, "cost": c, "true_distance": true, "start": info["pos"], "goal": info["goal"],
            "map_xs": xs, "latent_distance_map": dmap.reshape(len(xs), len(xs))}


def plot_landscape(land: dict, path: str | Path, title: str = "") -> None:
    fig = Figure(figsize=(12, 3.6))
    ax1, ax2, ax3 = fig.subplots(1, 3)
    ext = [land["dx"][0], land["dx"][-1], land["dy"][-1], land["dy"][0]]
    for ax, key, name in ((ax1, "cost", "latent planning cost"), (ax2, "true_distance", "true distance after plan")):
        im = ax.imshow(land[key], extent=ext, cmap="viridis")
        i = np.unravel_index(np.argmin(land[key]), land[key].shape)
        ax.plot(land["dx"][i[1]], land["dy"][i[0]], "r*", ms=10)
        ax.set_xlabel("first action dx"), ax.set_ylabel("dy")
        ax.set_title(name, fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.046)
    xs = land["map_xs"]
    im = ax3.imshow(land["latent_distance_map"], extent=[xs[0], xs[-1], xs[-1], xs[0]], cmap="viridis")
    ax3.plot(*land["goal"], "r*", ms=10)
    ax3.plot(*land["start"], "wo", ms=5)
    ax3.set_title("latent distance to the goal, agent at (x, y)", fontsize=9)
    fig.colorbar(im, ax=ax3, fraction=0.046)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
