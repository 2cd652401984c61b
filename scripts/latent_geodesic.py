"""Does a world model's latent distance to the goal follow the path through the door, or the straight line?

For a few Two-Rooms start/goal draws, place the agent at every free pixel (every 3rd), encode it, and correlate
its latent distance to the goal's latent with (a) the geodesic distance (shortest 8-connected path on the free
pixel grid, i.e. through the door) and (b) the Euclidean distance, over all points and over the points in the
other room only (where the two disagree). A greedy latent cost hugs the wall when (b) wins there.
Usage: python scripts/latent_geodesic.py RUN_OR_CHECKPOINT [--draws 5] [--env.door_y=20 ...]
"""
from __future__ import annotations

import argparse
import heapq

import numpy as np
import torch

from openjepa.data.envs import make_env
from openjepa.planning.mpc import obs_tensor
from openjepa.planning.run import load_world_model


def geodesic(free: np.ndarray, start: tuple[int, int]) -> np.ndarray:
    """Shortest-path length (Dijkstra, 8 neighbours) from `start` to every free cell of `free` (rows, cols)."""
    dist = np.full(free.shape, np.inf)
    dist[start] = 0.0
    heap = [(0.0, start)]
    while heap:
        d, (i, j) = heapq.heappop(heap)
        if d > dist[i, j]:
            continue
        for di in (-1, 0, 1):
            for dj in (-1, 0, 1):
                a, b = i + di, j + dj
                if (di or dj) and 0 <= a < free.shape[0] and 0 <= b < free.shape[1] and free[a, b]:
                    nd = d + float(np.hypot(di, dj))
                    if nd < dist[a, b]:
                        dist[a, b] = nd
                        heapq.heappush(heap, (nd, (a, b)))
    return dist


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint")
    p.add_argument("--draws", type=int, default=5)
    args, env_over = p.parse_known_args()
    torch.set_num_threads(1)
    model, _ = load_world_model(args.checkpoint)
    env = make_env("two_rooms", env_over)
    rows = []
    for seed in range(args.draws):
        env.reset(seed=100 + seed)
        n = env.cfg.size
        free = np.array([[not env.blocked(np.array([x, y], dtype=float)) for x in range(n)] for y in range(n)])
        gx, gy = np.round(env.goal).astype(int)
        geo = geodesic(free, (gy, gx))  # (rows = y, cols = x)
        pts = np.array([(x, y) for y in range(0, n, 3) for x in range(0, n, 3) if free[y, x] and np.isfinite(geo[y, x])])
        z = model.encode_goal(obs_tensor([env.obs_at(q) for q in pts.astype(float)]))  # (P, D)
        lat = (z - model.encode_goal(obs_tensor([env.goal_obs()]))).norm(dim=-1).numpy()  # (P,)
        g = geo[pts[:, 1], pts[:, 0]]
        e = np.hypot(pts[:, 0] - env.goal[0], pts[:, 1] - env.goal[1])
        other = np.array([env.room(q) != env.room(env.goal) for q in pts.astype(float)])
        rows.append([np.corrcoef(lat, g)[0, 1], np.corrcoef(lat, e)[0, 1],
                     np.corrcoef(lat[other], g[other])[0, 1], np.corrcoef(lat[other], e[other])[0, 1]])
    r = np.mean(rows, 0)
    print(f"{args.draws} goals: corr(latent distance, geodesic) {r[0]:.2f}, (.., euclidean) {r[1]:.2f}; "
          f"other room only: geodesic {r[2]:.2f}, euclidean {r[3]:.2f}")


if __name__ == "__main__":
    main()
