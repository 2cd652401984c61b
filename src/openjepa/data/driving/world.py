"""The driving world: its config, the road, the traffic and the roadside, simulated into per-frame states.

    simulate(cfg, seed, frames) -> DriveScene   states only (no pixels); render.py draws them

Road: a curvature profile kappa(s) along the arc length s (straight and curved segments of 40-150 m joined by
20 m linear ramps, i.e. clothoids), integrated every ROAD_STEP metres into a centre line (x, z, psi). `lanes`
lanes of `lane_width` metres, all driven in the same direction; road coordinates are (s, d), d the signed
distance to the right of the centre line.

Traffic: the ego vehicle (agent 0) and `vehicles` others follow the road with a simple car-following law (IDM,
Treiber et al. 2000) towards a desired speed; the others brake now and then (their desired speed drops for a
few seconds), all change lanes (a half-cosine lateral move over 2.5-4 s, only into a free gap). A vehicle that
falls 30 m behind the ego or 140 m ahead is replaced, out of sight, by a new one (a new track id, look and
size) ahead or behind. The ego's camera is at the ego's road position; its heading is the road's plus the
lane-change angle, so its yaw rate follows the curvature profile.

Roadside: trees (a trunk box and a canopy box), poles and buildings along both sides, static.

Frames: the world frame is camera 0 at frame 0 (KITTI odometry): x right, y down, z forward, the road surface
is the plane y = camera_height. A heading psi is a rotation about y: psi = 0 faces +z, psi > 0 turns towards
+x (a right turn). Positive curvature turns right. One frame is `dt` seconds (KITTI: 10 Hz).

Everything is drawn from one `numpy.random.Generator(seed)`, so a scene is a pure function of (cfg, seed,
frames). The states in `DriveScene` are plain arrays: edit them (teleport a vehicle, remove it for some frames)
and hand the scene to `render` to draw the edited drive.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from openjepa.config import check_env as check

VEHICLE_TYPES = ("Car", "Van", "Truck")  # KITTI object types; DriveScene.track_type indexes this tuple
VEHICLE_SHARE = (0.75, 0.15, 0.10)
# (h, w, l) ranges in metres per vehicle type
VEHICLE_DIMS = {"Car": ((1.4, 1.6), (1.6, 1.85), (3.8, 4.8)),
                "Van": ((1.9, 2.4), (1.8, 2.0), (4.5, 5.5)),
                "Truck": ((2.8, 3.6), (2.3, 2.55), (7.0, 11.0))}
PROP_KINDS = ("trunk", "canopy", "pole", "building")  # DriveScene.prop_kind indexes this tuple
ROAD_STEP = 0.5  # metres between centre-line samples
EGO_LENGTH = 4.5  # the ego vehicle's length in the car-following gaps (it is never drawn)
START_S = 60.0  # the ego's arc length at frame 0 (room behind it for vehicles that overtake)
BEHIND, AHEAD = 30.0, 140.0  # a vehicle outside [s_ego - BEHIND, s_ego + AHEAD] is replaced


@dataclass
class DrivingConfig:
    height: int = 64  # image rows
    width: int = 192  # image columns
    focal: float = 0.581  # focal length in pixels / image width (KITTI: 721.5 px at 1242 px)
    horizon: float = 0.461  # principal point row / image height (KITTI: 172.9 of 375 rows)
    camera_height: float = 1.65  # metres above the road (KITTI's camera 0)
    cam2_offset: float = 0.06  # the rendered colour camera 2 sits this far left of camera 0 (KITTI's P2)
    max_depth: float = 80.0  # depth of the sky and cap of every depth (metres); nothing farther is drawn
    dt: float = 0.1  # seconds per frame (KITTI records at 10 Hz)
    lanes: int = 3  # lanes, all in the driving direction
    lane_width: float = 3.5  # metres
    vehicles: int = 8  # other vehicles on the road at any time
    ego_speed: tuple[float, float] = (8.0, 16.0)  # the ego's desired speed is drawn in this range (m/s)
    traffic_speed: tuple[float, float] = (6.0, 20.0)  # the others' desired speeds (m/s)
    max_curvature: float = 0.01  # largest |curvature| of a bend (1/m; 0.01 = a 100 m radius)
    straight_share: float = 0.4  # share of straight road segments
    lane_change_rate: float = 0.03  # lane changes started per other vehicle and second
    ego_lane_change_rate: float = 0.01  # lane changes started by the ego per second
    brake_rate: float = 0.03  # braking events per other vehicle and second
    tree_spacing: float = 10.0  # mean metres between trees on each side (0: no trees)
    pole_spacing: float = 25.0  # mean metres between poles on each side (0: none)
    building_spacing: float = 30.0  # mean metres between buildings on each side (0: none)
    min_pixels: int = 3  # a vehicle gets a label in a frame when at least this many of its pixels are visible

    def __post_init__(self) -> None:
        check(self.height >= 8, "height", f"must be >= 8, got {self.height}")
        check(self.width >= 8, "width", f"must be >= 8, got {self.width}")
        check(0.1 <= self.focal <= 5, "focal", f"must lie in [0.1, 5], got {self.focal}")
        check(0.05 <= self.horizon <= 0.95, "horizon", f"must lie in [0.05, 0.95], got {self.horizon}")
        check(0.3 <= self.camera_height <= 10, "camera_height", f"must lie in [0.3, 10], got {self.camera_height}")
        check(abs(self.cam2_offset) <= 1, "cam2_offset", f"must lie in [-1, 1], got {self.cam2_offset}")
        check(5 <= self.max_depth <= 255, "max_depth", f"must lie in [5, 255] (uint16 depth PNGs hold < 256 m), "
                                                       f"got {self.max_depth}")
        check(self.dt > 0, "dt", f"must be > 0, got {self.dt}")
        check(1 <= self.lanes <= 6, "lanes", f"must lie in [1, 6], got {self.lanes}")
        check(2 <= self.lane_width <= 6, "lane_width", f"must lie in [2, 6], got {self.lane_width}")
        check(0 <= self.vehicles <= 64, "vehicles", f"must lie in [0, 64], got {self.vehicles}")
        for key in ("ego_speed", "traffic_speed"):
            lo, hi = getattr(self, key)
            check(0 < lo <= hi <= 40, key, f"must satisfy 0 < lo <= hi <= 40 m/s, got {getattr(self, key)}")
        check(0 <= self.max_curvature <= 0.05, "max_curvature", f"must lie in [0, 0.05], got {self.max_curvature}")
        check(0 <= self.straight_share <= 1, "straight_share", f"must lie in [0, 1], got {self.straight_share}")
        for key in ("lane_change_rate", "ego_lane_change_rate", "brake_rate"):
            check(0 <= getattr(self, key) <= 1, key, f"must lie in [0, 1] per second, got {getattr(self, key)}")
        for key in ("tree_spacing", "pole_spacing", "building_spacing"):
            v = getattr(self, key)
            check(v == 0 or v >= 2, key, f"must be 0 (none) or >= 2 metres, got {v}")
        check(self.min_pixels >= 1, "min_pixels", f"must be >= 1, got {self.min_pixels}")

    @property
    def half_road(self) -> float:
        return self.lanes * self.lane_width / 2

    def lane_centre(self, lane: np.ndarray | int) -> np.ndarray | float:
        """d of a lane's centre; lane 0 is the leftmost."""
        return (np.asarray(lane) + 0.5) * self.lane_width - self.half_road


@dataclass
class DriveScene:
    """Per-frame states of one drive (T frames, V vehicle slots, K tracks, N props), all in the world frame."""
    cfg: DrivingConfig
    road: np.ndarray  # (S, 3) centre line x, z, psi at s = 0, ROAD_STEP, 2 ROAD_STEP, ...
    ego: np.ndarray  # (T, 3) camera 0 x, z, psi
    ego_s: np.ndarray  # (T,) the ego's arc length (a first guess when the renderer maps pixels to the road)
    speed: np.ndarray  # (T,) ego speed along the road (m/s)
    cars: np.ndarray  # (T, V, 3) bottom centre x, z and heading psi of each vehicle slot
    track: np.ndarray  # (T, V) track id of the vehicle in each slot (-1: slot empty in that frame)
    braking: np.ndarray  # (T, V) bool, brake lights on
    track_type: np.ndarray  # (K,) index into VEHICLE_TYPES
    track_dims: np.ndarray  # (K, 3) h, w, l in metres
    track_colour: np.ndarray  # (K, 3) RGB in [0, 1]
    props: np.ndarray  # (N, 3) bottom centre x, z and heading psi of each roadside box
    prop_base: np.ndarray  # (N,) height of the box's bottom above the road (a canopy sits on its trunk)
    prop_dims: np.ndarray  # (N, 3) h, w, l
    prop_colour: np.ndarray  # (N, 3)
    prop_kind: np.ndarray  # (N,) index into PROP_KINDS
    look: dict  # the drive's colours and light: see _draw_look

    @property
    def frames(self) -> int:
        return len(self.ego)

    @property
    def yaw_rate(self) -> np.ndarray:
        """(T,) ego yaw rate in rad/s (central differences of psi; one-sided at the ends)."""
        if len(self.ego) < 2:
            return np.zeros(len(self.ego))
        return np.gradient(np.unwrap(self.ego[:, 2]), self.cfg.dt)


def road_at(road: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Centre line (..., 3) x, z, psi at arc lengths s (...), linearly interpolated; clamped at the table's ends."""
    i = np.asarray(s, dtype=np.float64) / ROAD_STEP
    i0 = np.clip(np.floor(i).astype(np.int64), 0, len(road) - 2)
    f = np.clip(i - i0, 0.0, 1.0)[..., None]
    return road[i0] * (1 - f) + road[i0 + 1] * f


def _road(cfg: DrivingConfig, length: float, rng: np.random.Generator) -> np.ndarray:
    """(S, 3) centre line from a random curvature profile (see the module docstring)."""
    n = int(np.ceil(length / ROAD_STEP)) + 2
    s = np.arange(n) * ROAD_STEP
    knots, values, at = [0.0], [0.0], 0.0
    while at < length:
        seg = rng.uniform(40, 150)
        k = 0.0 if rng.random() < cfg.straight_share else rng.choice([-1, 1]) * rng.uniform(0.25, 1) * cfg.max_curvature
        knots += [at + 20.0, at + seg]  # a 20 m ramp into the segment's constant curvature
        values += [k, k]
        at += seg
    kappa = np.interp(s, knots, values)
    psi = np.concatenate([[0.0], np.cumsum((kappa[1:] + kappa[:-1]) / 2 * ROAD_STEP)])
    mid = (psi[1:] + psi[:-1]) / 2
    x = np.concatenate([[0.0], np.cumsum(np.sin(mid) * ROAD_STEP)])
    z = np.concatenate([[0.0], np.cumsum(np.cos(mid) * ROAD_STEP)])
    return np.stack([x, z, psi], axis=1)


def _draw_look(rng: np.random.Generator) -> dict:
    """The drive's colours and light: sky gradient, road, verge, lane paint, sun direction, gain, haze."""
    overcast = rng.random() < 0.3
    top = rng.uniform([0.55, 0.58, 0.6], [0.7, 0.72, 0.75]) if overcast else \
        rng.uniform([0.15, 0.3, 0.6], [0.45, 0.6, 0.95])
    horizon = np.clip(top + rng.uniform(0.15, 0.35), 0, 1)
    grey = rng.uniform(0.22, 0.45)
    sun = np.array([rng.uniform(-1, 1), -rng.uniform(0.3, 1.0), rng.uniform(-1, 1)])  # towards the sun (y up < 0)
    return {
        "sky_top": top, "sky_horizon": horizon,
        "road": np.array([grey, grey, grey * rng.uniform(0.95, 1.08)]),
        "verge": rng.uniform([0.2, 0.35, 0.1], [0.45, 0.55, 0.25]),
        "shoulder": np.full(3, rng.uniform(0.4, 0.55)),
        "paint": np.array([1.0, 1.0, rng.uniform(0.75, 1.0)]) * rng.uniform(0.8, 1.0),
        "sun": sun / np.linalg.norm(sun),
        "ambient": rng.uniform(0.45, 0.7) if not overcast else rng.uniform(0.7, 0.85),
        "gain": rng.uniform(0.7, 1.2),
        "haze": rng.uniform(0.2, 0.7),
    }


def _vehicle_look(rng: np.random.Generator) -> tuple[int, np.ndarray, np.ndarray]:
    kind = int(rng.choice(len(VEHICLE_TYPES), p=VEHICLE_SHARE))
    dims = np.array([rng.uniform(*r) for r in VEHICLE_DIMS[VEHICLE_TYPES[kind]]])
    if rng.random() < 0.4:  # white, grey, black cars are common
        colour = np.full(3, rng.choice([0.08, 0.45, 0.7, 0.92])) + rng.uniform(-0.03, 0.03, 3)
    else:
        colour = rng.uniform(0.05, 0.9, 3)
    return kind, dims, np.clip(colour, 0, 1)


def _props(cfg: DrivingConfig, road: np.ndarray, length: float, rng: np.random.Generator) -> dict:
    """Roadside boxes along both sides: trees (trunk + canopy), poles, buildings."""
    rows = []  # (s, d, yaw offset, base, h, w, l, kind, r, g, b)
    for side in (-1, 1):
        for kind, spacing in (("tree", cfg.tree_spacing), ("pole", cfg.pole_spacing),
                              ("building", cfg.building_spacing)):
            if spacing == 0:
                continue
            s = rng.uniform(0, spacing)
            while s < length:
                if kind == "tree":
                    d = side * (cfg.half_road + rng.uniform(2.0, 7.0))
                    th, cw, ch = rng.uniform(1.8, 3.0), rng.uniform(2.0, 4.0), rng.uniform(2.0, 4.5)
                    yaw = rng.uniform(0, np.pi / 2)
                    rows.append((s, d, yaw, 0.0, th, 0.35, 0.35, 0,
                                 *rng.uniform([0.25, 0.15, 0.08], [0.4, 0.28, 0.15])))
                    rows.append((s, d, yaw, 0.8 * th, ch, cw, cw * rng.uniform(0.8, 1.2), 1,
                                 *rng.uniform([0.1, 0.25, 0.05], [0.3, 0.5, 0.2])))
                elif kind == "pole":
                    d = side * (cfg.half_road + rng.uniform(0.8, 1.6))
                    rows.append((s, d, 0.0, 0.0, rng.uniform(6, 8), 0.22, 0.22, 2, *np.full(3, rng.uniform(0.4, 0.7))))
                else:
                    w, l = rng.uniform(6, 15), rng.uniform(8, 20)
                    d = side * (cfg.half_road + rng.uniform(9, 20) + w / 2)
                    base = rng.choice([[0.75, 0.68, 0.55], [0.6, 0.3, 0.22], [0.6, 0.6, 0.62], [0.85, 0.82, 0.75]])
                    rows.append((s, d, 0.0, 0.0, rng.uniform(4, 14), w, l, 3,
                                 *np.clip(base + rng.uniform(-0.08, 0.08, 3), 0, 1)))
                s += rng.exponential(spacing) + (1.0 if kind != "building" else 15.0)
    a = np.array(rows, dtype=np.float64).reshape(-1, 11)
    c = road_at(road, a[:, 0])  # (N, 3)
    x = c[:, 0] + a[:, 1] * np.cos(c[:, 2])
    z = c[:, 1] - a[:, 1] * np.sin(c[:, 2])
    return {"props": np.stack([x, z, c[:, 2] + a[:, 2]], axis=1), "prop_base": a[:, 3], "prop_dims": a[:, 4:7],
            "prop_kind": a[:, 7].astype(np.int64), "prop_colour": a[:, 8:11]}


class _Traffic:
    """Agents in road coordinates; agent 0 is the ego. One `step` advances every agent by dt."""

    def __init__(self, cfg: DrivingConfig, rng: np.random.Generator):
        self.cfg, self.rng = cfg, rng
        n = cfg.vehicles + 1
        self.s, self.d, self.v = np.zeros(n), np.zeros(n), np.zeros(n)
        self.v_des, self.length = np.zeros(n), np.full(n, EGO_LENGTH)
        self.lane = np.zeros(n, dtype=np.int64)  # target lane (the current one when not changing)
        self.change = np.full((n, 3), np.nan)  # d0, d1, progress in [0, 1) of a lane change; nan: none
        self.change_time = np.ones(n)
        self.brake_until, self.brake_speed = np.zeros(n), np.zeros(n)
        self.dd = np.zeros(n)  # lateral speed (m/s)
        self.track = np.full(n, -1, dtype=np.int64)
        self.types, self.dims, self.colours = [], [], []
        self.t = 0.0
        self.braking = np.zeros(n, dtype=bool)
        self.lane[0] = rng.integers(cfg.lanes)
        self.s[0], self.d[0] = START_S, cfg.lane_centre(self.lane[0])
        self.v_des[0] = rng.uniform(*cfg.ego_speed)
        self.v[0] = self.v_des[0]
        self.next_ego_speed = rng.uniform(5, 15)
        for i in range(1, n):
            self._spawn(i, lo=-BEHIND + 8, hi=AHEAD - 40, initial=True)

    def _free(self, i: int, s: float, lane: int, gap: float) -> bool:
        """No other agent within `gap` metres (bumper to bumper, roughly) of s in `lane`."""
        others = [j for j in range(len(self.s)) if j != i and (self.track[j] >= 0 or j == 0)]
        for j in others:
            in_lane = self.lane[j] == lane or abs(self.d[j] - self.cfg.lane_centre(lane)) < self.cfg.lane_width * 0.8
            if in_lane and abs(self.s[j] - s) < gap + (self.length[j] + self.length[i]) / 2:
                return False
        return True

    def _spawn(self, i: int, lo: float, hi: float, initial: bool = False) -> None:
        """A new vehicle (new track) in slot i at s_ego + U(lo, hi), in a random lane with room for it."""
        cfg, rng = self.cfg, self.rng
        kind, dims, colour = _vehicle_look(rng)
        self.track[i] = -1
        self.length[i] = dims[2]
        for _ in range(8):
            lane = int(rng.integers(cfg.lanes))
            s = self.s[0] + rng.uniform(lo, hi)
            if self._free(i, s, lane, 10.0 if initial else 15.0):
                break
        else:  # no room: park the slot far ahead, out of sight; it is tried again next frame
            self.s[i], self.v[i], self.track[i] = self.s[0] + AHEAD + 50, 0.0, -1
            return
        self.s[i], self.d[i], self.lane[i] = s, cfg.lane_centre(lane), lane
        v_ego = self.v[0]
        if initial:
            self.v_des[i] = rng.uniform(*cfg.traffic_speed)
        elif s > self.s[0]:  # ahead: slower than the ego, so it comes into view
            self.v_des[i] = max(cfg.traffic_speed[0], min(rng.uniform(*cfg.traffic_speed), v_ego - 1.0))
        else:  # behind: faster, so it overtakes
            self.v_des[i] = min(cfg.traffic_speed[1] + 4, max(rng.uniform(*cfg.traffic_speed), v_ego + 2.0))
        self.v[i] = self.v_des[i]
        self.change[i] = np.nan
        self.dd[i], self.brake_until[i] = 0.0, 0.0
        self.track[i] = len(self.types)
        self.types.append(kind)
        self.dims.append(dims)
        self.colours.append(colour)

    def _events(self) -> None:
        cfg, rng, dt = self.cfg, self.rng, self.cfg.dt
        if self.t >= self.next_ego_speed:  # the ego's desired speed wanders
            self.v_des[0] = rng.uniform(*cfg.ego_speed)
            self.next_ego_speed = self.t + rng.uniform(5, 15)
        for i in range(len(self.s)):
            if i and self.track[i] < 0:
                continue
            if i and rng.random() < cfg.brake_rate * dt and self.t >= self.brake_until[i]:
                self.brake_until[i] = self.t + rng.uniform(1.5, 4.0)
                self.brake_speed[i] = self.v[i] * rng.uniform(0.2, 0.6)
            rate = cfg.ego_lane_change_rate if i == 0 else cfg.lane_change_rate
            if np.isnan(self.change[i, 0]) and cfg.lanes > 1 and rng.random() < rate * dt:
                lane = int(self.lane[i] + rng.choice([-1, 1]))
                if 0 <= lane < cfg.lanes and self._free(i, self.s[i], lane, max(8.0, 1.2 * self.v[i])):
                    self.change[i] = (self.d[i], cfg.lane_centre(lane), 0.0)
                    self.change_time[i] = rng.uniform(2.5, 4.0)
                    self.lane[i] = lane

    def step(self) -> None:
        cfg, dt = self.cfg, self.cfg.dt
        self._events()
        live = np.array([i == 0 or self.track[i] >= 0 for i in range(len(self.s))])
        a_max, b_comf = 1.5, 3.0
        acc = np.zeros(len(self.s))
        for i in np.flatnonzero(live):
            v0 = self.brake_speed[i] if self.t < self.brake_until[i] else self.v_des[i]
            free = 1 - (self.v[i] / max(v0, 0.1)) ** 4
            same = live & (np.abs(self.d - self.d[i]) < cfg.lane_width * 0.8) & (self.s > self.s[i])
            same[i] = False
            inter = 0.0
            if same.any():
                j = np.flatnonzero(same)[np.argmin(self.s[same])]
                gap = max(self.s[j] - self.s[i] - (self.length[i] + self.length[j]) / 2, 0.1)
                want = 2.0 + 1.2 * self.v[i] + self.v[i] * (self.v[i] - self.v[j]) / (2 * np.sqrt(a_max * b_comf))
                inter = (max(want, 0.0) / gap) ** 2
            acc[i] = np.clip(a_max * (free - inter), -9.0, a_max)
        self.v = np.where(live, np.maximum(self.v + acc * dt, 0.0), self.v)
        self.s = np.where(live, self.s + self.v * dt, self.s)
        self.braking = live & ((acc < -1.0) | (self.t < self.brake_until))
        for i in np.flatnonzero(live & ~np.isnan(self.change[:, 0])):
            d0, d1, p = self.change[i]
            p = min(p + dt / self.change_time[i], 1.0)
            self.d[i] = d0 + (d1 - d0) * (1 - np.cos(np.pi * p)) / 2
            self.dd[i] = (d1 - d0) * np.pi / 2 * np.sin(np.pi * p) / self.change_time[i]
            self.change[i] = (d0, d1, p) if p < 1 else (np.nan, np.nan, np.nan)
            if p >= 1:
                self.dd[i] = 0.0
        self.t += dt
        for i in range(1, len(self.s)):  # replace vehicles that left the neighbourhood, out of sight
            rel = self.s[i] - self.s[0]
            if self.track[i] < 0 or rel < -BEHIND or rel > AHEAD:
                ahead = self.rng.random() < 0.6
                self._spawn(i, *((AHEAD - 40, AHEAD - 5) if ahead else (-BEHIND + 5, -BEHIND + 12)))


def simulate(cfg: DrivingConfig, seed: int, frames: int) -> DriveScene:
    """The states of a `frames`-frame drive (see the module docstring); a pure function of (cfg, seed, frames)."""
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    rng = np.random.default_rng(seed)
    look = _draw_look(rng)
    length = START_S + cfg.ego_speed[1] * 1.5 * frames * cfg.dt + AHEAD + 200
    road = _road(cfg, length, rng)
    props = _props(cfg, road, length, rng)
    traffic = _Traffic(cfg, rng)
    V = cfg.vehicles
    s_all, d_all, dd_all = np.zeros((frames, V + 1)), np.zeros((frames, V + 1)), np.zeros((frames, V + 1))
    v_all = np.zeros((frames, V + 1))
    track, braking = np.full((frames, V), -1, dtype=np.int64), np.zeros((frames, V), dtype=bool)
    for t in range(frames):
        if t:
            traffic.step()
        s_all[t], d_all[t], dd_all[t], v_all[t] = traffic.s, traffic.d, traffic.dd, traffic.v
        track[t], braking[t] = traffic.track[1:], traffic.braking[1:]
    c = road_at(road, s_all)  # (T, V+1, 3)
    x = c[..., 0] + d_all * np.cos(c[..., 2])
    z = c[..., 1] - d_all * np.sin(c[..., 2])
    psi = c[..., 2] + np.arctan2(dd_all, np.maximum(v_all, 0.5))
    states = np.stack([x, z, psi], axis=-1)  # (T, V+1, 3)
    # re-express everything in the frame of camera 0 at frame 0 (KITTI odometry's world frame)
    x0, z0, psi0 = states[0, 0]
    co, si = np.cos(psi0), np.sin(psi0)

    def to_world(a: np.ndarray) -> np.ndarray:
        dx, dz = a[..., 0] - x0, a[..., 1] - z0
        return np.stack([co * dx - si * dz, si * dx + co * dz, a[..., 2] - psi0], axis=-1)

    ego = to_world(states[:, 0])
    ego[0] = 0.0  # exactly the identity pose
    nk = len(traffic.types)
    return DriveScene(
        cfg=cfg, road=to_world(road), ego=ego, ego_s=s_all[:, 0], speed=v_all[:, 0], cars=to_world(states[:, 1:]),
        track=track, braking=braking, track_type=np.array(traffic.types, dtype=np.int64).reshape(nk),
        track_dims=np.array(traffic.dims).reshape(nk, 3), track_colour=np.array(traffic.colours).reshape(nk, 3),
        props=to_world(props["props"]), prop_base=props["prop_base"], prop_dims=props["prop_dims"],
        prop_colour=props["prop_colour"], prop_kind=props["prop_kind"], look=look)
