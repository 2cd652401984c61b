"""Graph search over imagined states: best-first search in latent space with a world model (planner "search").

Sampling planners (CEM, MPPI) minimise the latent distance to the goal along a sampled action sequence; behind
a wall that cost is lowest right at the wall, so they stall there. Search does not need the cost to see past
walls. From the current state it expands the world model one planned action at a time over a fixed action set
(`directions` headings x `magnitudes` fractions of the largest action), and keeps an imagined state only if it
moved (a blocked move leaves the state where it was) and lies farther than `merge` from every state already
found, so the graph covers the reachable space once and flows around walls through the doors:

    nodes: s0 (D,) -> children P(s, a) (K, D) for the K actions -> ...      one batched model call per round
    each round expands the `beam` open nodes nearest to the goal (latent L2), up to `rounds` rounds or until a
    node is within `goal_radius` of the goal; the plan is the action path to the node nearest to the goal
    (ties: the shallower), zero-padded to the horizon.

Distances are measured in units of one full move: `step` = the largest latent move among the root's children
(free directions move by about one step, blocked ones by ~0), so `merge`, `goal_radius` and `min_move` are
fractions of it and the search needs no per-model tuning. Paths are at most `horizon` planned actions deep.

Surprise memory: a learned model can still imagine a move through a wall it misreads, and MPC would then repeat
the same blocked action forever (or slide along the wall and back). With `keys` (one per episode), `plan`
compares the state it is called from with what it imagined the last first action would lead to: if that action
barely moved the state (< `min_move` step), ended more than `surprise` steps away from the imagined state, or
led back to a state the episode had already left (a cycle: sliding along a wall and back), the (state, action)
is remembered and every later search drops that action from states within `recall` steps of it (0.75 by default,
chosen on validation layouts: docs/world-models-planning.md; None: the `merge` radius).
`reset()` forgets (run_mpc calls it at the start of every batch of episodes).

Batched over problems by running one search per problem (searches differ in size); `plan` returns (B, H, A).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch


@dataclass
class GraphSearch:
    horizon: int  # deepest path, in planned actions
    action_low: torch.Tensor  # (A,)
    action_high: torch.Tensor  # (A,)
    max_norm: float | None = None  # largest action norm (the env's max_step)
    directions: int = 8  # headings, evenly spaced
    magnitudes: tuple[float, ...] = (1.0, 0.4)  # fractions of the largest action
    beam: int = 16  # open nodes expanded per round
    rounds: int = 24  # expansion rounds per plan
    merge: float = 0.35  # new states closer than merge * step to a known one are dropped
    min_move: float = 0.2  # children that moved less than min_move * step are blocked moves, dropped
    goal_radius: float = 0.3  # stop when a node is within goal_radius * step of the goal
    surprise: float = 0.4  # an executed move ending farther than surprise * step from the imagined one is remembered
    remember: bool = True  # the surprise memory (off: every plan from scratch)
    recall: float | None = 0.75  # a remembered move is dropped from states within recall * step (None: merge)
    memory: dict = field(default_factory=dict, repr=False)  # key -> [(state (D,), blocked action index)]
    last: dict = field(default_factory=dict, repr=False)  # key -> (state planned from, first action, imagined, step)
    visited: dict = field(default_factory=dict, repr=False)  # key -> states planned from, in order

    def reset(self) -> None:
        """Forget the blocked moves seen (a new batch of episodes)."""
        self.memory, self.last, self.visited = {}, {}, {}

    def __post_init__(self) -> None:
        if self.horizon < 1 or self.directions < 1 or self.beam < 1 or self.rounds < 1:
            raise ValueError("horizon, directions, beam and rounds must be >= 1")
        if self.action_low.shape != (2,):
            raise ValueError(f"search plans 2-D actions (headings), got action shape {tuple(self.action_low.shape)}")
        if not self.magnitudes or not all(0 < m <= 1 for m in self.magnitudes):
            raise ValueError(f"magnitudes must be fractions in (0, 1], got {self.magnitudes}")

    @property
    def recall_radius(self) -> float:
        return self.merge if self.recall is None else self.recall

    def actions(self) -> torch.Tensor:
        """The action set (K, 2): every heading at every magnitude, inside the action box and norm limit."""
        reach = self.max_norm if self.max_norm is not None else float(self.action_high.abs().max())
        out = []
        for m in self.magnitudes:
            for k in range(self.directions):
                ang = 2 * math.pi * k / self.directions
                out.append([m * reach * math.cos(ang), m * reach * math.sin(ang)])
        a = torch.tensor(out, dtype=torch.float32)
        return torch.maximum(torch.minimum(a, self.action_high), self.action_low)  # (K, 2)

    @torch.no_grad()
    def plan(self, step_fn, s0: torch.Tensor, s_goal: torch.Tensor, keys: list | None = None
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """step_fn(states (M, D), actions (M, A)) -> next states (M, D); s0, s_goal (B, D) -> plans (B, H, A) and
        the remaining latent distance of each plan's end node in units of `step` (B,). `keys` (B,) name the
        episodes for the surprise memory (module docstring); None: no memory."""
        plans, left = [], []
        for b in range(s0.shape[0]):
            key = None if keys is None or not self.remember else keys[b]
            blocked = self._remember(key, s0[b])
            p, d, first, step = self._search(step_fn, s0[b], s_goal[b], blocked)
            if key is not None and first is not None:
                self.last[key] = (s0[b].clone(), *first, step)
            plans.append(p)
            left.append(d)
        return torch.stack(plans), torch.tensor(left)

    def _remember(self, key, s: torch.Tensor) -> list:
        """Remember the last first action of episode `key` if it did not move the state or ended far from what was
        imagined; returns the episode's memory [(state, action index, step)]."""
        if key is None:
            return []
        mem = self.memory.setdefault(key, [])
        seen = self.visited.setdefault(key, [])
        if key in self.last:
            prev, k, imagined, step = self.last[key]
            back = any(float((s - v).norm()) < self.merge * step for v in seen[:-1])
            if (float((s - prev).norm()) < self.min_move * step or float((s - imagined).norm()) > self.surprise * step
                    or back):
                mem.append((prev, k, step))
        seen.append(s.clone())
        return mem

    def _search(self, step_fn, s0: torch.Tensor, goal: torch.Tensor, blocked: list = ()
                ) -> tuple[torch.Tensor, float, int | None, float]:
        acts = self.actions()  # (K, A)
        K = acts.shape[0]
        states = [s0.float()]  # node states (D,)
        parent, action, depth = [-1], [-1], [0]
        dist = [float((s0 - goal).norm())]
        open_ = {0}
        step = None
        for _ in range(self.rounds):
            if not open_:
                break
            sel = sorted(open_, key=lambda i: (dist[i], depth[i]))[: self.beam]
            open_.difference_update(sel)
            src = torch.stack([states[i] for i in sel])  # (S, D)
            nxt = step_fn(src.repeat_interleave(K, 0), acts.repeat(len(sel), 1)).float()  # (S*K, D)
            moved = (nxt - src.repeat_interleave(K, 0)).norm(dim=-1)  # (S*K,)
            if step is None:  # the unit of distance: the root's longest move
                step = float(moved.max().clamp_min(1e-8))
            known = torch.stack(states)  # (M, D)
            far = torch.cdist(nxt, known).min(1).values >= self.merge * step  # (S*K,) new w.r.t. known nodes
            ok = far & (moved >= self.min_move * step)
            for m_state, m_k, m_step in blocked:  # moves seen blocked: dropped from states near where they failed
                near = (src - m_state).norm(dim=-1) < self.recall_radius * m_step  # (S,)
                ok[near.nonzero().flatten() * K + m_k] = False
            ok &= torch.tensor([depth[sel[j // K]] < self.horizon for j in range(nxt.shape[0])])
            cand = ok.nonzero().flatten().tolist()
            to_goal = (nxt - goal).norm(dim=-1).tolist()  # (S*K,)
            pair = torch.cdist(nxt[cand], nxt[cand]) if cand else None  # (C, C) among this round's children
            kept: list[int] = []
            for c, j in enumerate(cand):
                if kept and pair[c, kept].min() < self.merge * step:
                    continue  # a sibling already found this state
                kept.append(c)
                i, k = sel[j // K], j % K
                states.append(nxt[j])
                parent.append(i)
                action.append(k)
                depth.append(depth[i] + 1)
                dist.append(to_goal[j])
                open_.add(len(states) - 1)
            if min(dist) < self.goal_radius * step:
                break
        best = min(range(len(states)), key=lambda i: (dist[i], depth[i]))
        if best == 0 and len(states) > 1:  # nothing nearer than here: still move (the nearest child), never stall
            best = min(range(1, len(states)), key=lambda i: (dist[i], depth[i]))
        path, first_node = [], best
        while parent[best] >= 0:
            path.append(action[best])
            first_node, best = best, parent[best]
        plan = torch.zeros(self.horizon, acts.shape[1])
        for h, k in enumerate(reversed(path)):
            plan[h] = acts[k]
        first = (path[-1], states[first_node]) if path else None  # (action index, its imagined state)
        return plan, min(dist) / (step or 1.0), first, (step or 1.0)
