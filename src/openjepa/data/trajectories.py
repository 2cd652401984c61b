"""Offline trajectory datasets for world models: exploration policies, collection, on-disk format, loading.

On-disk format (a directory, written by `openjepa data collect ENV --episodes N --out DIR`):

    DIR/meta.json          {"format": "openjepa-trajectories/1", "env", "env_config", "policy", "episodes",
                            "steps", "seed", "shards": [file names], "obs_shape": [C, H, W], "action_dim"}
    DIR/shard_00000.npz    obs     uint8   (n, T + 1, C, H, W)   observations, obs[:, 0] after reset
                           actions float32 (n, T, A)             actions[:, t] takes obs[:, t] to obs[:, t + 1]
                           pos     float32 (n, T + 1, 2)         agent position (diagnostics, probes)

T = `steps` per episode; episodes are independent (fresh start, same layout sampling as the env config).

Policies (PLDM-style exploration, no reward): `random_walk` keeps a heading and a speed for a while, turns with
probability `turn_prob` per step, and draws a new heading when a wall stopped it ("bounces"); `uniform` draws
every action uniformly in the action box; `push` (manipulation, Push-T) goes behind a random side of the block
and pushes through it, with random-walk stretches in between (`pos` is then the pusher's position).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

FORMAT = "openjepa-trajectories/1"
SHARD_EPISODES = 1000


def uniform_policy(env, rng: np.random.Generator):
    def act(obs, info) -> np.ndarray:
        return rng.uniform(env.action_space.low, env.action_space.high).astype(np.float32)
    return act


def random_walk_policy(env, rng: np.random.Generator, turn_prob: float = 0.15):
    """Persistent random heading and speed; a new heading with probability `turn_prob` or after being blocked."""
    max_step = float(env.action_space.high[0])
    state = {"heading": rng.uniform(0, 2 * math.pi), "speed": rng.uniform(0.3, 1.0) * max_step, "last": None}

    def act(obs, info) -> np.ndarray:
        pos = info["pos"]
        blocked = state["last"] is not None and np.linalg.norm(pos - state["last"][0]) < 0.5 * state["last"][1]
        if blocked or rng.random() < turn_prob:
            state["heading"] = rng.uniform(0, 2 * math.pi)
            state["speed"] = rng.uniform(0.3, 1.0) * max_step
        a = state["speed"] * np.array([math.cos(state["heading"]), math.sin(state["heading"])])
        state["last"] = (pos.copy(), state["speed"])
        return a.astype(np.float32)
    return act


def push_policy(env, rng: np.random.Generator, random_prob: float = 0.25, segment: tuple[int, int] = (5, 20)):
    """Manipulation exploration (Push-T): segments of `segment` steps that each pick a random direction and side
    offset, go behind the block and push through it (`push_action` of envs/pusht.py, at 0.5-1 x max_step); with
    probability `random_prob` a segment is a random-walk stretch instead, so that free pusher motion is seen too."""
    from openjepa.data.envs.pusht import push_action

    if not hasattr(env, "block_radius"):
        raise ValueError(f"policy 'push' needs an env with a block to push (pusht), not {type(env).__name__}")
    max_step = float(env.action_space.high[0])
    walk = random_walk_policy(env, rng)
    state = {"left": 0, "walk": False, "dir": np.zeros(2), "offset": 0.0, "speed": max_step, "pushing": False}

    def act(obs, info) -> np.ndarray:
        if state["left"] <= 0:
            phi = rng.uniform(-math.pi, math.pi)
            state.update(left=int(rng.integers(segment[0], segment[1] + 1)), walk=bool(rng.random() < random_prob),
                         dir=np.array([math.cos(phi), math.sin(phi)]), pushing=False,
                         offset=float(rng.uniform(-0.6, 0.6) * env.block_radius),
                         speed=float(rng.uniform(0.5, 1.0) * max_step))
        state["left"] -= 1
        if state["walk"]:
            return walk(obs, info)
        a, state["pushing"] = push_action(info["pos"], info["block"], state["dir"], state["offset"], env.push_reach,
                                          state["speed"], state["pushing"])
        return a.astype(np.float32)
    return act


POLICIES = {
    "random_walk": random_walk_policy,
    "uniform": uniform_policy,
    "push": push_policy,
}


def free_start(env, rng: np.random.Generator) -> np.ndarray:
    """A start drawn uniformly over the free space of the current layout (doorway included)."""
    c = env.cfg
    while True:
        p = rng.uniform(c.border, c.size - 1 - c.border, size=2)
        if not env.blocked(p):
            return p


def collect(env_name: str, episodes: int, steps: int, out: str | Path, policy: str = "random_walk", seed: int = 0,
            env_kwargs: dict | None = None, progress: bool = True) -> Path:
    """Roll out `episodes` episodes of `steps` actions with an exploration policy into `out` (see module doc)."""
    from dataclasses import asdict

    from openjepa.data.envs import ENVS

    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; choose from {sorted(POLICIES)}")
    if episodes < 1 or steps < 1:
        raise ValueError(f"episodes and steps must be >= 1, got {episodes} and {steps}")
    env_cls, cfg_cls = ENVS[env_name]
    env = env_cls(cfg_cls(**(env_kwargs or {})))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    shards = []
    bar = tqdm(total=episodes, unit="episode", desc=f"collect {env_name}", disable=not progress)
    for first in range(0, episodes, SHARD_EPISODES):
        n = min(SHARD_EPISODES, episodes - first)
        obs = np.zeros((n, steps + 1, *env.observation_space.shape), np.uint8)
        acts = np.zeros((n, steps, env.action_space.shape[0]), np.float32)
        pos = np.zeros((n, steps + 1, 2), np.float32)
        for i in range(n):
            ep_seed = int(rng.integers(2**31 - 1))
            env.reset(seed=ep_seed)
            o, info = env.reset(seed=ep_seed, options={"start": free_start(env, rng)})
            act = POLICIES[policy](env, rng)
            obs[i, 0], pos[i, 0] = o, info["pos"]
            for t in range(steps):
                a = act(o, info)
                o, _, _, _, info = env.step(a)
                obs[i, t + 1], acts[i, t], pos[i, t + 1] = o, a, info["pos"]
            bar.update(1)
        name = f"shard_{len(shards):05d}.npz"
        np.savez(out / name, obs=obs, actions=acts, pos=pos)
        shards.append(name)
    bar.close()
    meta = {"format": FORMAT, "env": env_name, "env_config": asdict(env.cfg), "policy": policy, "episodes": episodes,
            "steps": steps, "seed": seed, "shards": shards, "obs_shape": list(env.observation_space.shape),
            "action_dim": int(env.action_space.shape[0])}
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return out


def load_trajectories(path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """A collected dataset -> ({"obs": uint8 (N, T+1, C, H, W), "a": float32 (N, T, A), "pos": (N, T+1, 2)}, meta)."""
    root = Path(path)
    meta_file = root / "meta.json"
    if not meta_file.is_file():
        raise FileNotFoundError(f"{root} is not a trajectory dataset (no meta.json); create one with "
                                f"`openjepa data collect two_rooms --episodes 3000 --steps 80 --out {root}`")
    meta = json.loads(meta_file.read_text())
    if meta.get("format") != FORMAT:
        raise ValueError(f"{meta_file}: unknown format {meta.get('format')!r}, expected {FORMAT!r}")
    parts = {"obs": [], "a": [], "pos": []}
    for name in meta["shards"]:
        with np.load(root / name) as z:
            parts["obs"].append(torch.from_numpy(z["obs"]))
            parts["a"].append(torch.from_numpy(z["actions"]))
            parts["pos"].append(torch.from_numpy(z["pos"]))
    return {k: torch.cat(v) for k, v in parts.items()}, meta
