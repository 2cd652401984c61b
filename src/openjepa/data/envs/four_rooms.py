"""Four-Rooms: a maze of four rooms (Sutton, Precup & Singh 1999's layout, PLDM's point-mass dynamics).

The arena and agent are Two-Rooms' (`two_rooms.py`: 65x65 observations, actions = displacements with norm <=
`max_step`, success within `success_radius` px), with a cross of walls `wall_width` px thick: a vertical one at
column `wall_x` with a door in its upper half (centre row `door_up_y`) and one in its lower half
(`door_down_y`), and a horizontal one at row `wall_y` with doors at columns `door_left_x` and `door_right_x`.
Rooms are numbered 0 (top left), 1 (top right), 2 (bottom left), 3 (bottom right); the `different_rooms` task
puts the goal in the room diagonally opposite the start, so every path passes two doors and a greedy
straight line always hits a wall.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from openjepa.data.envs.two_rooms import TwoRoomsConfig, TwoRoomsEnv


@dataclass
class FourRoomsConfig(TwoRoomsConfig):
    wall_y: float = 32.0  # centre row of the horizontal wall
    door_up_y: float = 16.0  # door of the vertical wall's upper half (row)
    door_down_y: float = 46.0  # door of its lower half
    door_left_x: float = 18.0  # door of the horizontal wall's left half (column)
    door_right_x: float = 48.0  # door of its right half
    max_steps: int = 300  # two doors to pass

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.layout != "fixed":
            raise ValueError(f"env.layout: Four-Rooms has fixed layouts (its door keys); got {self.layout!r}")
        h = self.door_size / 2 + self.wall_width / 2
        for key, val, lo, hi in (("door_up_y", self.door_up_y, self.border, self.wall_y),
                                 ("door_down_y", self.door_down_y, self.wall_y, self.size - 1 - self.border),
                                 ("door_left_x", self.door_left_x, self.border, self.wall_x),
                                 ("door_right_x", self.door_right_x, self.wall_x, self.size - 1 - self.border)):
            if not lo + h <= val <= hi - h:
                raise ValueError(f"env.{key}: door centre {val} must lie in [{lo + h}, {hi - h}] (its half of the wall)")


class FourRoomsEnv(TwoRoomsEnv):
    n_rooms = 4

    def __init__(self, config: FourRoomsConfig | None = None, render_mode: str | None = "rgb_array", **kwargs):
        super().__init__(config if config is not None else FourRoomsConfig(**kwargs), render_mode)

    def blocked_xy(self, x, y):
        c = self.cfg
        border = (x < c.border) | (y < c.border) | (x > c.size - 1 - c.border) | (y > c.size - 1 - c.border)
        half = c.door_size / 2
        vdoor = (np.abs(y - c.door_up_y) <= half) | (np.abs(y - c.door_down_y) <= half)
        hdoor = (np.abs(x - c.door_left_x) <= half) | (np.abs(x - c.door_right_x) <= half)
        vwall = (np.abs(x - c.wall_x) <= c.wall_width / 2) & ~vdoor
        hwall = (np.abs(y - c.wall_y) <= c.wall_width / 2) & ~hdoor
        return border | vwall | hwall

    def room(self, p: np.ndarray) -> int:
        return int(p[0] > self.cfg.wall_x) + 2 * int(p[1] > self.cfg.wall_y)

    def goal_room(self, start_room: int) -> int:
        return 3 - start_room
