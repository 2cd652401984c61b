"""Push-T: push a T-shaped block to a goal pose with a round pusher, seen from above in pixels (our own task,
modelled on PushT of Diffusion Policy / gym-pusht as used by DINO-WM; pymunk 2-D physics, numpy drawing).

The table is `size` x `size` pixels (64) closed by a border wall `border` px thick. The T is a top bar of
`bar_length` x `bar_width` px and a stem `bar_width` px wide and `stem_length` px long; the pusher is a disc of
radius `agent_radius` px. An action a = (dx, dy) is the pusher's displacement in pixels, its norm clipped to
`max_step` (2.5 px); the pusher is a kinematic body (infinite mass, as in PushT) moved there over `substeps`
physics steps of 0.01 s, kept `agent_radius` px inside the border. A push that would press the block into the
border (or sink the pusher into a block held there) stops for the rest of that step: the infinitely strong
kinematic pusher would otherwise squeeze the block through the wall, and the block does not slide along the wall
as a real one might. The table's friction is quasi-static (PushT simulates it with zero damping): the block moves
only while it is pushed, and its velocity is cleared after every env step, so the state (pusher position, block
pose) is visible in one frame.

Task (success as DINO-WM scores PushT): the block's centre within `success_pos` px of the goal's and its angle
within `success_angle` rad (20 degrees) of the goal angle. DINO-WM also counts the pusher in its position error
(20 px of a 512 px table = 2.5 px of our 64 px one) and draws its goals from expert demonstrations 25 steps
ahead; here the pusher is not scored and goals come from `goal_mode`:

- "rollout" (default, DINO-WM-like): the pose a scripted push (go behind a random side of the block, push
  through it) reaches after `goal_steps` (25) steps from the start, redrawn until the block moved
  `min_goal_distance` px (`distance()`); the goal image shows the pusher where that push ended.
- "random": a goal pose drawn like the start pose, independent of it (gym-pusht's task is one fixed goal pose
  with success at 95% area overlap: harder than either).

`distance()` is the task's distance: the mean displacement (px) of the T's eight outline corners between the
block's pose and the goal pose, so position and orientation errors count in one unit.

Observation: uint8 (channels, size, size), channels first, anti-aliased by `supersample`^2 samples per pixel.
One channel: border 64, block 150, pusher 255 on black; three channels: `render()` without the goal. `render()`
is RGB (size, size, 3) with the goal pose drawn as a green T under the block. `goal_obs()` is the observation
of the goal configuration (block at the goal pose, pusher at `goal_agent`).

State / info: `pos` (2,) pusher (x, y) in px (x = column, y = row); `block` (3,) block (x, y, angle) with the
centre its centre of mass and angle in radians; `goal` (2,) goal block centre (pictures plot it);
`goal_pose` (3,); `info = {"pos", "block", "goal", "goal_pose", "distance", "success"}`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import pymunk
from gymnasium import spaces

from openjepa.config import check_env as check
from openjepa.data.envs.two_rooms import check_action

GOAL_MODES = ("rollout", "random")
DT = 0.01  # seconds per physics step (PushT simulates at 100 Hz)


@dataclass
class PushTConfig:
    size: int = 64  # table side in pixels (observations are size x size)
    channels: int = 1  # 1: grey levels; 3: RGB
    border: float = 2.0  # border wall thickness in pixels
    bar_length: float = 16.0  # the T's top bar, pixels
    bar_width: float = 4.0  # thickness of the bar and the stem, pixels
    stem_length: float = 12.0  # the stem below the bar, pixels
    agent_radius: float = 2.5  # the pusher disc, pixels
    max_step: float = 2.5  # largest pusher displacement per step (action norm is clipped to it)
    substeps: int = 10  # physics steps (0.01 s each) per env step
    supersample: int = 4  # anti-aliasing: supersample x supersample samples per pixel
    margin: float = 14.0  # start / random-goal block centres keep this distance from the border
    goal_mode: str = "rollout"  # rollout | random (module docstring)
    goal_steps: int = 25  # rollout goals: steps of the scripted push from the start
    min_goal_distance: float = 4.0  # goals whose distance() from the start is below this are redrawn
    success_pos: float = 2.5  # success: block centre within this many px of the goal centre ...
    success_angle: float = math.pi / 9  # ... and its angle within this many radians of the goal angle
    max_steps: int = 100  # episode truncation

    def __post_init__(self) -> None:
        check(self.size >= 32, "size", f"must be >= 32, got {self.size}")
        check(self.channels in (1, 3), "channels", f"must be 1 or 3, got {self.channels}")
        check(self.border >= 1, "border", f"must be >= 1, got {self.border}")
        for key in ("bar_length", "bar_width", "stem_length", "agent_radius", "max_step", "success_pos",
                    "success_angle"):
            check(getattr(self, key) > 0, key, f"must be > 0, got {getattr(self, key)}")
        check(self.bar_length > self.bar_width, "bar_length", "must exceed bar_width (else it is no T)")
        check(self.substeps >= 1, "substeps", "must be >= 1")
        check(self.supersample >= 1, "supersample", "must be >= 1")
        radius = t_radius(self)
        check(radius <= self.margin < self.size / 2 - self.border, "margin",
              f"must be in [{radius:.1f}, {self.size / 2 - self.border}) so that a block placed there fits "
              f"on the table, got {self.margin}")
        check(self.goal_mode in GOAL_MODES, "goal_mode", f"must be one of {GOAL_MODES}, got {self.goal_mode!r}")
        check(self.goal_steps >= 1, "goal_steps", "must be >= 1")
        check(self.min_goal_distance >= 0, "min_goal_distance", "must be >= 0")
        check(self.max_steps >= 1, "max_steps", "must be >= 1")


def t_polygons(c: PushTConfig) -> tuple[np.ndarray, np.ndarray]:
    """The T's bar and stem as (4, 2) corner arrays in the block's frame (origin at the centre of mass, the bar at
    negative y, the stem along +y)."""
    L, w, S = c.bar_length, c.bar_width, c.stem_length
    cy = (L * w * (w / 2) + w * S * (w + S / 2)) / (L * w + w * S)  # centre of mass below the bar's top edge
    bar = np.array([[-L / 2, 0], [L / 2, 0], [L / 2, w], [-L / 2, w]]) - [0, cy]
    stem = np.array([[-w / 2, w], [w / 2, w], [w / 2, w + S], [-w / 2, w + S]]) - [0, cy]
    return bar, stem


def t_radius(c: PushTConfig) -> float:
    """The T's reach (px): its farthest corner from the centre of mass."""
    return float(np.linalg.norm(np.vstack(t_polygons(c)), axis=1).max())


def t_outline(c: PushTConfig) -> np.ndarray:
    """The T's eight outline corners (8, 2) in the block's frame (distance() compares them)."""
    bar, stem = t_polygons(c)
    # clockwise from the bar's top-left: the bar's right end, down into the stem, back up to the bar's left end
    return np.array([bar[0], bar[1], bar[2], stem[1], stem[2], stem[3], stem[0], bar[3]])


def rotate(v: np.ndarray, angle: float) -> np.ndarray:
    """Points (..., 2) rotated by `angle` radians (pymunk's convention: body frame -> world frame)."""
    ca, sa = math.cos(angle), math.sin(angle)
    return np.stack([ca * v[..., 0] - sa * v[..., 1], sa * v[..., 0] + ca * v[..., 1]], -1)


def angle_diff(a: float, b: float) -> float:
    """|a - b| folded into [0, pi]."""
    return abs((a - b + math.pi) % (2 * math.pi) - math.pi)


def push_action(pos: np.ndarray, block: np.ndarray, direction: np.ndarray, offset: float, reach: float,
                max_step: float, pushing: bool) -> tuple[np.ndarray, bool]:
    """One step of the scripted push: go to the point `reach` px behind the block centre (against the unit vector
    `direction`, `offset` px to its side), then push along `direction`. Returns (action, pushing)."""
    side = np.array([-direction[1], direction[0]])
    behind = block[:2] - reach * direction + offset * side
    if not pushing:
        gap = behind - pos
        dist = float(np.linalg.norm(gap))
        if dist > 0.5:
            return gap * min(1.0, max_step / dist), False
    return direction * max_step, True


class PushTEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, config: PushTConfig | None = None, render_mode: str | None = "rgb_array", **kwargs):
        self.cfg = config if config is not None else PushTConfig(**kwargs)
        if config is not None and kwargs:
            raise ValueError("give either config or keyword arguments, not both")
        c = self.cfg
        self.render_mode = render_mode
        self.observation_space = spaces.Box(0, 255, (c.channels, c.size, c.size), np.uint8)
        self.action_space = spaces.Box(-c.max_step, c.max_step, (2,), np.float32)
        self._bar, self._stem = t_polygons(c)
        self._outline = t_outline(c)
        self.block_radius = t_radius(c)
        self.push_reach = self.block_radius + c.agent_radius + 1.0  # scripted pushes start this far behind the centre
        # sample coordinates, supersample per pixel side: pixel (row r, column q) covers [q, q+1) x [r, r+1)
        s = c.supersample
        sub = (np.arange(c.size * s) + 0.5) / s  # (size * s,)
        self._sub = sub
        xx, yy = np.meshgrid(sub, sub)
        b = c.border
        self._border_cov = self._pool(((xx < b) | (yy < b) | (xx > c.size - b) | (yy > c.size - b)).astype(np.float64))
        self._walls = self._border_cov > 0.5  # (size, size) bool, for pictures
        self.goal_pose = np.zeros(3)
        self.goal_agent = np.zeros(2)
        self.steps = 0
        self._build(np.array([c.size / 2, c.size / 2]), np.array([c.size / 2, c.size / 2 - 10, 0.0]))

    # --- physics ----------------------------------------------------------------------------------------
    def _build(self, agent: np.ndarray, block: np.ndarray) -> None:
        """A fresh pymunk space with the pusher at `agent` (x, y) and the block at `block` (x, y, angle)."""
        c = self.cfg
        space = pymunk.Space()
        space.gravity = (0.0, 0.0)
        space.damping = 0.0  # quasi-static table: no sliding after a push (PushT's setting)
        lo, hi, t = 0.0, float(c.size), float(c.border)
        for x0, y0, x1, y1 in ((lo, lo, hi, t), (lo, hi - t, hi, hi), (lo, lo, t, hi), (hi - t, lo, hi, hi)):
            wall = pymunk.Poly(space.static_body, [(x0, y0), (x1, y0), (x1, y1), (x0, y1)])
            wall.friction = 1.0
            space.add(wall)
        self.agent = pymunk.Body(body_type=pymunk.Body.KINEMATIC)
        self.agent.position = (float(agent[0]), float(agent[1]))
        disc = pymunk.Circle(self.agent, c.agent_radius)
        disc.friction = 1.0
        self.block = pymunk.Body()
        parts = [pymunk.Poly(self.block, [tuple(map(float, p)) for p in poly]) for poly in (self._bar, self._stem)]
        for part in parts:
            part.density = 1.0  # by area, so that the centre of gravity is the body origin (the T's centroid)
            part.friction = 1.0
        self.block.position = (float(block[0]), float(block[1]))
        self.block.angle = float(block[2])
        space.add(self.agent, disc, self.block, *parts)  # after placing: adding caches the shapes' world pose
        self._block_shapes = parts
        self.space = space

    @property
    def pos(self) -> np.ndarray:
        """The pusher's (x, y), pixels."""
        return np.array(self.agent.position, dtype=np.float64)

    @property
    def block_pose(self) -> np.ndarray:
        """The block's (x, y, angle): centre of mass in pixels, angle in radians."""
        return np.array([*self.block.position, self.block.angle], dtype=np.float64)

    @property
    def goal(self) -> np.ndarray:
        """The goal block centre (x, y) (what the planning pictures mark as the goal)."""
        return self.goal_pose[:2].copy()

    def _move(self, a: np.ndarray) -> None:
        c = self.cfg
        lo, hi = c.border + c.agent_radius, c.size - c.border - c.agent_radius
        target = np.clip(self.pos + a, lo, hi)
        start = self.pos
        self.agent.velocity = tuple(map(float, (target - start) / (c.substeps * DT)))
        for i in range(c.substeps):
            before = (self.agent.position, self.block.position, self.block.angle)
            self.space.step(DT)
            if self._squeezed():
                # an infinitely strong pusher would squeeze the block through the border (or sink into a block held
                # by it): the move stops here
                self.agent.position, self.block.position, self.block.angle = before
                self.space.reindex_shapes_for_body(self.block)  # blocked() queries the shapes' cached pose
                target = self.pos
                break
        self.agent.velocity = (0.0, 0.0)
        self.agent.position = (float(target[0]), float(target[1]))  # exact, free of float drift
        self.block.velocity = (0.0, 0.0)  # quasi-static: the state is the poses alone
        self.block.angular_velocity = 0.0

    def _squeezed(self, tol: float = 0.3) -> bool:
        """Whether a corner of the block lies more than `tol` px inside the border wall, or the pusher deeper in
        the block than a free push ever takes it (the contact is resolved one physics step late: up to two
        steps of pusher motion plus `tol`)."""
        c = self.cfg
        corners = rotate(self._outline, self.block.angle) + np.array(self.block.position)
        if (corners < c.border - tol).any() or (corners > c.size - c.border + tol).any():
            return True
        return self._gap(self.pos) < -self._sink_tol

    @property
    def _sink_tol(self) -> float:
        return 2 * self.cfg.max_step / self.cfg.substeps + 0.3

    def blocked(self, p: np.ndarray, clearance: float = 0.5) -> bool:
        """Whether the pusher cannot stand at p = (x, y): in the border or less than `clearance` px from the block
        (negative: overlapping it by more than that; a pusher in contact overlaps by the physics' slop)."""
        c = self.cfg
        lo, hi = c.border + c.agent_radius, c.size - c.border - c.agent_radius
        if not (lo <= p[0] <= hi and lo <= p[1] <= hi):
            return True
        return self._gap(p) < clearance

    def _gap(self, p: np.ndarray) -> float:
        """Distance (px) between a pusher at p and the block; negative where they overlap."""
        q = (float(p[0]), float(p[1]))
        return min(s.point_query(q).distance for s in self._block_shapes) - self.cfg.agent_radius

    # --- gymnasium API ----------------------------------------------------------------------------------
    def _random_block(self) -> np.ndarray:
        c = self.cfg
        xy = self.np_random.uniform(c.border + c.margin, c.size - c.border - c.margin, size=2)
        return np.array([xy[0], xy[1], self.np_random.uniform(-math.pi, math.pi)])

    def _random_agent(self) -> np.ndarray:
        c = self.cfg
        lo, hi = c.border + c.agent_radius, c.size - c.border - c.agent_radius
        for _ in range(10_000):
            p = self.np_random.uniform(lo, hi, size=2)
            if not self.blocked(p):
                return p
        raise RuntimeError("no free pusher position")  # cannot happen: the block covers a small part of the table

    def _rollout_goal(self, agent: np.ndarray, block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Scripted pushes from (agent, block) for goal_steps steps until the block moved min_goal_distance."""
        c = self.cfg
        for _ in range(100):
            self._build(agent, block)
            phi = self.np_random.uniform(-math.pi, math.pi)
            direction = np.array([math.cos(phi), math.sin(phi)])
            offset = self.np_random.uniform(-0.5, 0.5) * self.block_radius
            pushing = False
            for _ in range(c.goal_steps):
                a, pushing = push_action(self.pos, self.block_pose, direction, offset, self.push_reach, c.max_step,
                                          pushing)
                self._move(a)
            if self._pose_distance(self.block_pose, block) >= c.min_goal_distance:
                return self.block_pose, self.pos
        raise RuntimeError(f"no rollout goal moved the block {c.min_goal_distance} px "
                           f"(env.goal_steps={c.goal_steps} too small?)")

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """options may fix "start" (pusher (x, y)), "block" (x, y, angle), "goal" (block goal (x, y, angle)) and
        "goal_agent" (the pusher in the goal image; default: where the rollout ended, else the start)."""
        super().reset(seed=seed)
        c = self.cfg
        options = options or {}
        block = np.asarray(options["block"], np.float64) if "block" in options else self._random_block()
        if block.shape != (3,):
            raise ValueError(f"reset: block must be (x, y, angle), got {block.tolist()}")
        self._build(np.array([c.size / 2, c.size / 2]), block)
        agent = np.asarray(options["start"], np.float64) if "start" in options else self._random_agent()
        if agent.shape != (2,) or self.blocked(agent, clearance=-self._sink_tol - 0.1):
            raise ValueError(f"reset: start {agent.tolist()} is not a free pusher position")
        goal_agent = agent
        if "goal" in options:
            goal = np.asarray(options["goal"], np.float64)
            if goal.shape != (3,):
                raise ValueError(f"reset: goal must be (x, y, angle), got {goal.tolist()}")
        elif c.goal_mode == "rollout":
            goal, goal_agent = self._rollout_goal(agent, block)
        else:
            for _ in range(10_000):
                goal = self._random_block()
                if self._pose_distance(goal, block) >= c.min_goal_distance:
                    break
        self.goal_pose = goal.copy()
        self.goal_agent = np.asarray(options.get("goal_agent", goal_agent), np.float64).copy()
        self._build(agent, block)
        self.steps = 0
        return self._obs(), self._info()

    def step(self, action):
        a = check_action(action, (2,))
        c = self.cfg
        norm = np.linalg.norm(a)
        if norm > c.max_step:
            a = a * (c.max_step / norm)
        self._move(a)
        self.steps += 1
        info = self._info()
        terminated = bool(info["success"])
        truncated = self.steps >= c.max_steps and not terminated
        return self._obs(), -float(info["distance"]), terminated, truncated, info

    # --- drawing ------------------------------------------------------------------------------------------
    def _pool(self, fine: np.ndarray) -> np.ndarray:
        """(size * s, size * s) samples -> (size, size) pixel coverage in [0, 1]."""
        n, s = self.cfg.size, self.cfg.supersample
        return fine.reshape(n, s, n, s).mean(axis=(1, 3))

    def _coverage(self, inside, centre: np.ndarray, radius: float) -> np.ndarray:
        """Pixel coverage (size, size) of a shape given as inside(dx, dy) over sample offsets from `centre`,
        evaluated only in the shape's bounding box (radius px round the centre)."""
        c = self.cfg
        s = c.supersample
        out = np.zeros((c.size * s, c.size * s))
        lo = np.clip(np.floor((centre - radius) * s).astype(int), 0, c.size * s)
        hi = np.clip(np.ceil((centre + radius) * s).astype(int) + 1, 0, c.size * s)
        if (hi > lo).all():
            dx, dy = np.meshgrid(self._sub[lo[0]:hi[0]] - centre[0], self._sub[lo[1]:hi[1]] - centre[1])
            out[lo[1]:hi[1], lo[0]:hi[0]] = inside(dx, dy)
        return self._pool(out)

    def _block_cov(self, pose: np.ndarray) -> np.ndarray:
        ca, sa = math.cos(pose[2]), math.sin(pose[2])
        (bx0, by0), (bx1, by1) = self._bar[0], self._bar[2]
        (sx0, sy0), (sx1, sy1) = self._stem[0], self._stem[2]

        def inside(dx, dy):
            lx, ly = ca * dx + sa * dy, -sa * dx + ca * dy  # world offsets -> the block's frame
            bar = (lx >= bx0) & (lx <= bx1) & (ly >= by0) & (ly <= by1)
            stem = (lx >= sx0) & (lx <= sx1) & (ly >= sy0) & (ly <= sy1)
            return bar | stem
        return self._coverage(inside, pose[:2], self.block_radius + 1)

    def _agent_cov(self, p: np.ndarray) -> np.ndarray:
        r = self.cfg.agent_radius
        return self._coverage(lambda dx, dy: dx * dx + dy * dy <= r * r, p, r + 1)

    def _draw(self, agent: np.ndarray, block: np.ndarray, goal: np.ndarray | None = None,
              rgb: bool = False) -> np.ndarray:
        """The picture with the pusher at `agent` and the block at `block`: grey (size, size) or RGB (size, size, 3)
        floats in [0, 255]; `goal` draws the goal pose as a green T under the block."""
        layers = [(self._border_cov, (64, 64, 64), 64)]
        if goal is not None:
            layers.append((0.6 * self._block_cov(goal), (40, 200, 60), 0))
        layers += [(self._block_cov(block), (150, 150, 190), 150), (self._agent_cov(agent), (70, 140, 255), 255)]
        img = np.zeros((self.cfg.size, self.cfg.size, 3 if rgb else 1))
        for cov, colour, grey in layers:
            col = np.array(colour if rgb else [grey], np.float64)
            img = img * (1 - cov[..., None]) + cov[..., None] * col
        return img

    def _picture(self, agent: np.ndarray, block: np.ndarray) -> np.ndarray:
        img = self._draw(agent, block, rgb=self.cfg.channels == 3)
        return np.round(img).astype(np.uint8).transpose(2, 0, 1)  # (C, size, size)

    def _obs(self) -> np.ndarray:
        return self._picture(self.pos, self.block_pose)

    def obs_at(self, p) -> np.ndarray:
        """The observation with the pusher at p and the block where it is (no state change)."""
        return self._picture(np.asarray(p, np.float64), self.block_pose)

    def goal_obs(self) -> np.ndarray:
        """The observation of the goal configuration: uint8 (C, size, size)."""
        return self._picture(self.goal_agent, self.goal_pose)

    def render(self) -> np.ndarray:
        """RGB (size, size, 3) uint8: border grey, block lavender, pusher blue, goal pose green."""
        return np.round(self._draw(self.pos, self.block_pose, goal=self.goal_pose, rgb=True)).astype(np.uint8)

    # --- the task -------------------------------------------------------------------------------------------
    def _pose_distance(self, a: np.ndarray, b: np.ndarray) -> float:
        pa = rotate(self._outline, a[2]) + a[:2]
        pb = rotate(self._outline, b[2]) + b[:2]
        return float(np.linalg.norm(pa - pb, axis=1).mean())

    def distance(self) -> float:
        """Mean displacement (px) of the T's outline corners between the block pose and the goal pose."""
        return self._pose_distance(self.block_pose, self.goal_pose)

    def is_success(self) -> bool:
        b, g = self.block_pose, self.goal_pose
        return bool(np.linalg.norm(b[:2] - g[:2]) < self.cfg.success_pos
                    and angle_diff(b[2], g[2]) < self.cfg.success_angle)

    def _info(self) -> dict:
        return {"pos": self.pos, "block": self.block_pose, "goal": self.goal, "goal_pose": self.goal_pose.copy(),
                "distance": self.distance(), "success": self.is_success()}
