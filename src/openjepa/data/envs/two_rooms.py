"""Two-Rooms: the point-mass navigation task of PLDM (Sobal et al. 2025) and EB-JEPA, DINO-WM's "Wall".

A point agent moves in a square arena of `size` x `size` pixels (65 by default) closed by a border wall and
split by a vertical wall `wall_width` px wide at column `wall_x`, pierced by one door of `door_size` px centred
at row `door_y`. An action is a 2-D displacement a = (dx, dy) in pixels; its norm is clipped to `max_step`
(2.45 px, as in PLDM). The move is taken in `substeps` equal parts; a part that would enter a wall slides
along it (x or y alone) or is dropped. The episode succeeds when the agent is within `success_radius` (4.5 px)
of the goal and is truncated after `max_steps` (200) steps.

Observation: uint8 (1, size, size), channels first: walls at 128, the agent a Gaussian dot (sigma
`dot_sigma` px, peak 255) drawn over them. `render()` returns the same picture as RGB (size, size, 3) with the
goal shown as a green dot. `goal_obs()` is the observation with the agent at the goal.

Layouts: with `layout="fixed"` (the default) `wall_x`, `wall_width`, `door_y`, `door_size` fix the layout;
`door_y_range` (lo, hi) draws the door centre per episode instead. With `layout="train" | "heldout" | "any"`
every reset draws a new layout from `LAYOUT_RANGES` (wall column, wall width, door row, door size, and with
probability `second_door_prob` a second door in the same wall). Each parameter has a held-out band
(`HELDOUT_BANDS`, the PLDM layout's wall column 32 and door row 32 among them): "train" layouts have no
parameter in its band, "heldout" layouts at least one, so every held-out layout shows a wall column, wall
width, door row or door size that no training layout has. `layout_of(layout)` names the split of a layout.
The planner never sees these parameters: only the observation, where the walls are drawn. `start_goal` is
"different_rooms" (the PLDM test task), "same_room" or "any".

State / info: `pos` (2,) float (x, y) in pixels, `goal` (2,), `info = {"pos", "goal", "distance", "success"}`;
the current layout is `env.layout` ({"wall_x", "wall_width", "door_size", "doors": [row, ...]}).
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from openjepa.config import check_env as check

START_GOAL = ("different_rooms", "same_room", "any")
LAYOUTS = ("fixed", "train", "heldout", "any")
# Per-episode layout draws (pixels, for the 65 px arena): uniform in each range ...
LAYOUT_RANGES = {"wall_x": (20.0, 44.0), "wall_width": (2.0, 5.0), "door_y": (12.0, 52.0), "door_size": (5.0, 10.0)}
# ... and the bands no training layout enters (a "heldout" layout has at least one parameter inside its band).
HELDOUT_BANDS = {"wall_x": (29.0, 35.0), "wall_width": (3.25, 3.75), "door_y": (28.0, 36.0), "door_size": (7.0, 8.0)}
MIN_DOOR_GAP = 6.0  # wall between two doors, pixels


def layout_split(layout: dict) -> str:
    """"heldout" if any parameter of a layout (or any of its door rows) lies in its HELDOUT_BANDS band, else "train"."""
    def inside(key: str, v: float) -> bool:
        lo, hi = HELDOUT_BANDS[key]
        return lo <= v <= hi
    keys = [("wall_x", layout["wall_x"]), ("wall_width", layout["wall_width"]), ("door_size", layout["door_size"])]
    keys += [("door_y", y) for y in layout["doors"]]
    return "heldout" if any(inside(k, v) for k, v in keys) else "train"


@dataclass
class TwoRoomsConfig:
    size: int = 65  # arena side in pixels (observations are size x size)
    border: int = 2  # border wall thickness in pixels
    wall_x: float = 32.0  # centre column of the dividing wall
    wall_width: float = 3.0  # dividing wall thickness in pixels
    door_y: float = 32.0  # centre row of the door (ignored when door_y_range is set)
    door_y_range: tuple[float, float] | None = None  # draw the door centre uniformly in [lo, hi] per episode
    door_size: float = 6.0  # door height in pixels
    max_step: float = 2.45  # largest displacement per step (action norm is clipped to it)
    substeps: int = 4  # collision checks per step
    dot_sigma: float = 1.3  # std of the agent's Gaussian dot in pixels
    success_radius: float = 4.5  # success when |pos - goal| < success_radius
    max_steps: int = 200  # episode truncation
    start_goal: str = "different_rooms"  # different_rooms | same_room | any
    margin: float = 3.0  # starts and goals keep this distance from walls
    layout: str = "fixed"  # fixed | train | heldout | any: draw a layout per episode (module docstring)
    second_door_prob: float = 0.25  # layout != fixed: probability of a second door in the dividing wall

    def __post_init__(self) -> None:
        check(self.size >= 16, "size", f"must be >= 16, got {self.size}")
        check(self.border >= 1, "border", f"must be >= 1, got {self.border}")
        lo, hi = self.border + self.margin, self.size - 1 - self.border - self.margin
        check(lo + self.wall_width < self.wall_x < hi - self.wall_width, "wall_x",
              f"{self.wall_x} leaves no room on one side (arena interior {lo}..{hi})")
        check(self.wall_width > 0, "wall_width", "must be > 0")
        check(self.door_size > 0, "door_size", "must be > 0")
        for y in ([self.door_y] if self.door_y_range is None else list(self.door_y_range)):
            check(self.border + self.door_size / 2 <= y <= self.size - 1 - self.border - self.door_size / 2,
                  "door_y", f"door centre {y} puts the door outside the arena")
        if self.door_y_range is not None:
            check(self.door_y_range[0] <= self.door_y_range[1], "door_y_range", "must satisfy lo <= hi")
        check(self.max_step > 0, "max_step", "must be > 0")
        check(self.substeps >= 1, "substeps", "must be >= 1")
        check(self.success_radius > 0, "success_radius", "must be > 0")
        check(self.max_steps >= 1, "max_steps", "must be >= 1")
        check(self.start_goal in START_GOAL, "start_goal", f"must be one of {START_GOAL}, got {self.start_goal!r}")
        check(self.layout in LAYOUTS, "layout", f"must be one of {LAYOUTS}, got {self.layout!r}")
        check(self.layout == "fixed" or self.size == 65, "layout",
              f"random layouts are drawn for the 65 px arena (LAYOUT_RANGES); got size={self.size}")
        check(self.layout == "fixed" or self.door_y_range is None, "door_y_range",
              "is for fixed layouts; random layouts draw the door from LAYOUT_RANGES")
        check(0.0 <= self.second_door_prob <= 1.0, "second_door_prob", f"must be in [0, 1], got {self.second_door_prob}")


def check_action(action, shape: tuple[int, ...]) -> np.ndarray:
    """The action as float64 with `shape`; a wrong shape or a non-finite entry raises ValueError."""
    a = np.asarray(action, dtype=np.float64)
    if a.shape != shape:
        raise ValueError(f"action must have shape {shape}, got {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"action must be finite, got {a.tolist()}")
    return a


class TwoRoomsEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, config: TwoRoomsConfig | None = None, render_mode: str | None = "rgb_array", **kwargs):
        self.cfg = config if config is not None else TwoRoomsConfig(**kwargs)
        if config is not None and kwargs:
            raise ValueError("give either config or keyword arguments, not both")
        c = self.cfg
        self.render_mode = render_mode
        self.observation_space = spaces.Box(0, 255, (1, c.size, c.size), np.uint8)
        self.action_space = spaces.Box(-c.max_step, c.max_step, (2,), np.float32)
        self.pos = np.zeros(2)
        self.goal = np.zeros(2)
        self.layout = self._fixed_layout(float(c.door_y))
        self.steps = 0
        grid = np.arange(c.size, dtype=np.float64)
        self._xx, self._yy = np.meshgrid(grid, grid)  # (size, size) each: column (x), row (y)
        self._walls = self._wall_image()

    # --- layouts ----------------------------------------------------------------------------------------
    @property
    def door_y(self) -> float:
        """Row of the (first) door."""
        return self.layout["doors"][0]

    def _fixed_layout(self, door_y: float) -> dict:
        c = self.cfg
        return {"wall_x": float(c.wall_x), "wall_width": float(c.wall_width), "door_size": float(c.door_size),
                "doors": [float(door_y)]}

    def _draw_layout(self) -> dict:
        """A random layout of the config's split (rejection sampling over LAYOUT_RANGES)."""
        rng, want = self.np_random, self.cfg.layout
        for _ in range(10_000):
            lay = {k: float(rng.uniform(*LAYOUT_RANGES[k])) for k in ("wall_x", "wall_width", "door_size")}
            doors = [float(rng.uniform(*LAYOUT_RANGES["door_y"]))]
            if rng.random() < self.cfg.second_door_prob:
                y2 = float(rng.uniform(*LAYOUT_RANGES["door_y"]))
                if abs(y2 - doors[0]) >= lay["door_size"] + MIN_DOOR_GAP:  # else: one door this time
                    doors.append(y2)
            lay["doors"] = doors
            if want == "any" or layout_split(lay) == want:
                return lay
        raise RuntimeError(f"no {want!r} layout found")  # cannot happen with the module's ranges

    # --- geometry ---------------------------------------------------------------------------------------
    def blocked_xy(self, x, y):
        """Whether points (x, y) (arrays or floats) lie inside a wall: border, or dividing wall outside the doors."""
        c, lay = self.cfg, self.layout
        border = (x < c.border) | (y < c.border) | (x > c.size - 1 - c.border) | (y > c.size - 1 - c.border)
        in_door = np.zeros_like(np.asarray(x, dtype=bool))
        for door in lay["doors"]:
            in_door = in_door | (np.abs(y - door) <= lay["door_size"] / 2)
        wall = (np.abs(x - lay["wall_x"]) <= lay["wall_width"] / 2) & ~in_door
        return border | wall

    def blocked(self, p: np.ndarray) -> bool:
        """Whether point p = (x, y) lies inside a wall."""
        return bool(self.blocked_xy(p[0], p[1]))

    def room(self, p: np.ndarray) -> int:
        """0 left of the dividing wall, 1 right of it."""
        return int(p[0] > self.layout["wall_x"])

    def _wall_image(self) -> np.ndarray:
        return self.blocked_xy(self._xx, self._yy)  # (size, size) bool, [row, column]

    def _sample_point(self, room: int | None) -> np.ndarray:
        """Uniform over the free space of `room` (any room if None), `margin` px away from every wall."""
        c = self.cfg
        lo, hi = c.border + c.margin, c.size - 1 - c.border - c.margin
        ring = np.array([[1, 0], [-1, 0], [0, 1], [0, -1], [1, 1], [-1, -1], [1, -1], [-1, 1]])
        # the point and rings at margin / 2 and margin: a wall thinner than the margin cannot slip between them
        offsets = np.vstack([[0, 0], c.margin * ring, c.margin / 2 * ring])
        for _ in range(10_000):
            p = self.np_random.uniform(lo, hi, size=2)
            near = p + offsets  # (17, 2): the point and its margin neighbourhood
            if (room is None or self.room(p) == room) and not self.blocked_xy(near[:, 0], near[:, 1]).any():
                return p
        raise ValueError(f"no free point in room {room} of this layout (env.margin={c.margin} too large?)")

    def goal_room(self, start_room: int) -> int:
        """The room the goal is drawn from in the different_rooms task."""
        return 1 - start_room

    n_rooms = 2

    # --- gymnasium API ----------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """options may fix "start" and/or "goal" ((x, y) pixels), "door_y", or a whole "layout" (env.layout's keys)."""
        super().reset(seed=seed)
        c = self.cfg
        options = options or {}
        if "layout" in options:
            self.layout = {k: float(options["layout"][k]) for k in ("wall_x", "wall_width", "door_size")}
            self.layout["doors"] = [float(y) for y in options["layout"]["doors"]]
        elif "door_y" in options:
            self.layout = self._fixed_layout(float(options["door_y"]))
        elif c.layout != "fixed":
            self.layout = self._draw_layout()
        elif c.door_y_range is not None:
            self.layout = self._fixed_layout(float(self.np_random.uniform(*c.door_y_range)))
        else:
            self.layout = self._fixed_layout(float(c.door_y))
        self._walls = self._wall_image()
        start_room = None if c.start_goal == "any" else int(self.np_random.integers(self.n_rooms))
        goal_room = {"any": None, "same_room": start_room,
                     "different_rooms": None if start_room is None else self.goal_room(start_room)}[c.start_goal]
        self.pos = np.asarray(options["start"], dtype=np.float64) if "start" in options else self._sample_point(start_room)
        self.goal = np.asarray(options["goal"], dtype=np.float64) if "goal" in options else self._sample_point(goal_room)
        for name, p in (("start", self.pos), ("goal", self.goal)):
            if p.shape != (2,) or self.blocked(p):
                raise ValueError(f"reset: {name} {p.tolist()} is not a free (x, y) point of this layout")
        self.steps = 0
        return self._obs(), self._info()

    def step(self, action):
        a = check_action(action, (2,))
        c = self.cfg
        norm = np.linalg.norm(a)
        if norm > c.max_step:
            a = a * (c.max_step / norm)
        d = a / c.substeps
        for _ in range(c.substeps):
            for move in (d, np.array([d[0], 0.0]), np.array([0.0, d[1]])):
                if not self.blocked(self.pos + move):
                    self.pos = self.pos + move
                    break
        self.steps += 1
        info = self._info()
        terminated = bool(info["success"])
        truncated = self.steps >= c.max_steps and not terminated
        reward = -float(info["distance"])
        return self._obs(), reward, terminated, truncated, info

    def render(self) -> np.ndarray:
        """RGB (size, size, 3) uint8: walls grey, agent white, goal green."""
        img = np.repeat(self._draw(self.pos)[0][..., None], 3, axis=2)
        goal = self._dot(self.goal)
        img[..., 1] = np.maximum(img[..., 1], (goal * 255).astype(np.uint8))
        return img

    # --- observations and the task ----------------------------------------------------------------------
    def _dot(self, p: np.ndarray) -> np.ndarray:
        s = self.cfg.dot_sigma
        return np.exp(-((self._xx - p[0]) ** 2 + (self._yy - p[1]) ** 2) / (2 * s * s))  # (size, size) in [0, 1]

    def _draw(self, p: np.ndarray) -> np.ndarray:
        img = np.where(self._walls, 128.0, 0.0)
        img = np.maximum(img, self._dot(p) * 255.0)
        return np.round(img).astype(np.uint8)[None]  # (1, size, size)

    def _obs(self) -> np.ndarray:
        return self._draw(self.pos)

    def obs_at(self, p) -> np.ndarray:
        """The observation with the agent at p (no state change)."""
        return self._draw(np.asarray(p, dtype=np.float64))

    def goal_obs(self) -> np.ndarray:
        """The observation with the agent at the goal: uint8 (1, size, size)."""
        return self._draw(self.goal)

    def distance(self) -> float:
        return float(np.linalg.norm(self.pos - self.goal))

    def is_success(self) -> bool:
        return self.distance() < self.cfg.success_radius

    def _info(self) -> dict:
        return {"pos": self.pos.copy(), "goal": self.goal.copy(), "distance": self.distance(),
                "success": self.is_success()}

    def reachable(self, a: np.ndarray, b: np.ndarray, cell: float = 1.0) -> bool:
        """Whether free point b can be reached from a (4-connected flood fill over a `cell`-pixel grid of free
        points); used to check that random layouts are solvable."""
        n = int(np.ceil(self.cfg.size / cell))
        axis = np.arange(n) * cell
        xx, yy = np.meshgrid(axis, axis)
        free = ~self.blocked_xy(xx, yy)  # [row (y), column (x)]
        start = (int(round(a[1] / cell)), int(round(a[0] / cell)))
        goal = (int(round(b[1] / cell)), int(round(b[0] / cell)))
        if not (free[start] and free[goal]):
            return False
        seen = np.zeros_like(free)
        seen[start] = True
        stack = [start]
        while stack:
            r, q = stack.pop()
            if (r, q) == goal:
                return True
            for dr, dq in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                rr, qq = r + dr, q + dq
                if 0 <= rr < n and 0 <= qq < n and free[rr, qq] and not seen[rr, qq]:
                    seen[rr, qq] = True
                    stack.append((rr, qq))
        return False
