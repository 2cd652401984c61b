"""Matched possible / impossible driving clips for violation-of-expectation tests (IntPhys-style quadruplets).

    make_quadruplet(kind, seed, cfg, frames=24) -> Quadruplet   possible (A, B), impossible (C, D): rgb uint8
                                                               (T, H, W, 3) each, T = frames
    plan_quadruplet(kind, seed, cfg, frames) -> Plan            the edited drives and the clip, before drawing
    test_quadruplets(n, cfg, frames, seed, kinds) -> list        n per kind, seeds seed .. seed + n - 1
    write_quadruplets(root, n, cfg, ...) -> root                 the same as .npy clips for `openjepa surprise`
                                                               (`openjepa data violations`)

Kinds (`KINDS`), each built from one simulated drive (world.simulate) whose states are edited (`without`,
`moved`) and drawn by the renderer (render.render):

    teleport      A: the drive as simulated. B: the same drive with one vehicle moved `jump` metres (6 to 10, drawn)
                  along its lane at every frame, checked free of every other vehicle and of the ego. C = A[:s] +
                  B[s:]: the vehicle jumps `jump` metres forward between frames s - 1 and s; D = B[:s] + A[s:]:
                  it jumps back. The vehicle is in view in A and B at frames s - 1 and s.
    vanish        A: the drive. B: the same drive without one vehicle. C = A[:s] + B[s:]: the vehicle, in clear
                  view (>= 90% of its pixels visible, none outside the image) at frames s - 2 .. s + 1 of A,
                  disappears at s with nothing in front of it; D = B[:s] + A[s:]: it appears there from nothing.
    pass_through  vehicle F overtakes G in the next lane, both in view, closing at >= MIN_CLOSING m/s. A: F
                  drives in G's lane (moved across by the lanes' distance) and, from frame s on, brakes at BRAKE
                  m/s^2 to stop FOLLOW metres behind G, then keeps G's speed (brake lights on while it slows).
                  B: the same with G moved into F's lane. C: as A, but F does not brake: it keeps its simulated
                  speed and drives through G (their footprints intersect from frame `violation` on, at least 4
                  frames before the clip ends, and to its end). D: as B without the braking. Checked: no other
                  contact with any vehicle or the ego in any of the four, and both bodies in view where they meet
                  in C and D.

Matching. For teleport and vanish the impossible clips are splices of the possible ones at the same frame s
(Riochet et al. 2018, as data/physics.py): every frame of C and D is the frame of A or B with the same index, so
no single frame tells the pairs apart and a scorer blind to dynamics ties on every quadruplet; only the change
from frame s - 1 to s is impossible (a frame-difference detector sees it: nothing hides the event). No splice can
do this for pass_through: the frames in which two bodies interpenetrate appear in no possible drive. Its pairs are
matched instead: C is A and D is B up to frame s, bit for bit, and each pair shows the same two vehicles in the
same lane with the same look, so both pairs show the same occlusion between them until F reaches G; A, C show
their lane and B, D the other. Where the bodies intersect the renderer's z-buffer draws the nearer surface per
pixel, so they merge into one shape. (Lane-swapped possible twins, the two vehicles side by side, were tried
first: a same-lane pair hides more of itself, so a copy-last scorer found the impossible pair the less surprising
in all 3 quadruplets of a 16 x 16 px smoke run; with the braking twins it scored 6 of 16 at 64 x 64, near chance.)

Selection. The drive is simulate(cfg, seed, DRIVE_FRAMES) (the quadruplet's seed is the drive's seed; a drive
with no usable event is replaced by a longer one from the same seed). Its first WARMUP frames are skipped (the
traffic settles). Every (clip, vehicle) that passes the checks on the drive as simulated is a candidate; the
candidates are tried in an order drawn from numpy.random.default_rng([seed, kind index]) until one passes the
checks on the edited drive too. Pixel thresholds scale with the frame's area (MIN_AREA of it), so small test
frames work too. Everything is a pure function of (kind, seed, cfg, frames).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from openjepa.data.driving.render import _Camera, render, render_frame
from openjepa.data.driving.world import EGO_LENGTH, ROAD_STEP, DriveScene, DrivingConfig, road_at, simulate

KINDS = ("teleport", "vanish", "pass_through")
DRIVE_FRAMES = 400  # frames of the drive a quadruplet is cut from (40 s at 10 Hz)
WARMUP = 20  # first frames of a drive no clip starts in
MIN_AREA = 24 / 4096  # a vehicle "in view" covers at least this share of the frame (24 px of 64 x 64)
CLEAR = 0.9  # "in clear view": at least this share of its pixels visible, and none outside the image
JUMP = (6.0, 10.0)  # teleport distance in metres, drawn in this range
GAP = 0.5  # metres of free road an edited vehicle keeps to every other vehicle (and the ego) in a possible drive
EGO_WIDTH = 1.8  # the ego's footprint width (it is never drawn, but nothing may be placed on the camera)
MAX_TRIES = 40  # edited candidates checked per drive before a longer drive is tried
MAX_LOOKS = 400  # candidates whose visibility is checked per drive (rendering the frames they need)
BRAKE = 6.0  # m/s^2: a pass-through's possible twin brakes this hard (a firm stop; emergency braking is ~8)
FOLLOW = 1.0  # metres: bumper gap the braking vehicle ends at behind the other
MIN_CLOSING = 1.5  # m/s: a pass-through's overtaking vehicle closes on the other at least this fast
COARSE = 8  # road_coords' first guess: every COARSE-th centre-line sample (4 m apart)


@dataclass
class Plan:
    """What a quadruplet is drawn from: `scenes` (A, B) for the spliced kinds (C = A[:s] + B[s:], D = B[:s] +
    A[s:]), (A, B, C, D) for pass_through, drawn at drive frames `clip`. In every kind C[:s] = A[:s] and D[:s] =
    B[:s], s = `splice`; `violation` is the first clip frame where an impossible clip shows the violation (s for
    the spliced kinds, the first frame the bodies intersect for pass_through); `tracks` the edited vehicles' track
    ids (F, G for pass_through); `jump` the teleport's distance in metres (signed along the lane; else 0)."""
    kind: str
    seed: int
    scenes: tuple[DriveScene, ...]
    clip: range
    splice: int
    violation: int
    tracks: tuple[int, ...]
    jump: float = 0.0


@dataclass
class Quadruplet:
    """Two possible and two impossible clips of one drive, rgb uint8 (T, H, W, 3) each (see the module
    docstring); `plan` holds the drives and the clip they come from."""
    kind: str
    seed: int
    possible: tuple[np.ndarray, np.ndarray]
    impossible: tuple[np.ndarray, np.ndarray]
    splice: int
    violation: int
    plan: Plan


# --------------------------------------------------------------------------------------------- editing drives
def road_coords(road: np.ndarray, x: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Road coordinates (s, d) of world points (x, z) (...) near the road: the nearest of every COARSE-th
    centre-line sample, then Newton steps along the tangent (the inverse of world.simulate's placement
    x = x_c + d cos psi_c, z = z_c - d sin psi_c; bends of >= 20 m radius converge from COARSE samples away)."""
    x, z = np.asarray(x, dtype=np.float64), np.asarray(z, dtype=np.float64)
    coarse = road[::COARSE]
    near = np.argmin((coarse[:, 0] - x[..., None]) ** 2 + (coarse[:, 1] - z[..., None]) ** 2, axis=-1)
    s = near * COARSE * ROAD_STEP
    for _ in range(4):
        p = road_at(road, s)
        s = s + (x - p[..., 0]) * np.sin(p[..., 2]) + (z - p[..., 1]) * np.cos(p[..., 2])
    p = road_at(road, s)
    return s, (x - p[..., 0]) * np.cos(p[..., 2]) - (z - p[..., 1]) * np.sin(p[..., 2])


def _rows(scene: DriveScene, track: int) -> tuple[np.ndarray, np.ndarray]:
    """Frames and slots at which `track` is on the road."""
    return np.nonzero(scene.track == track)


def without(scene: DriveScene, track: int) -> DriveScene:
    """The drive with vehicle `track` taken off the road at every frame (everything else as it was)."""
    t, v = _rows(scene, track)
    tr = scene.track.copy()
    tr[t, v] = -1
    return dataclasses.replace(scene, track=tr)


def moved(scene: DriveScene, track: int, ds: float | np.ndarray = 0.0, dd: float = 0.0,
          braking: np.ndarray | None = None) -> DriveScene:
    """The drive with vehicle `track` moved `ds` metres along the road (a number, or one per drive frame, (T,))
    and `dd` metres to the right of it; its heading turns with the road's, so it keeps its angle to its lane.
    Frames it is not moved at keep their states bit for bit. `braking` (T,) bool: frames its brake lights go on."""
    t, v = _rows(scene, track)
    ds = np.broadcast_to(np.asarray(ds, dtype=np.float64), (scene.frames,))[t]
    move = (ds != 0) | (dd != 0)
    t, v, ds = t[move], v[move], ds[move]
    cars = scene.cars.copy()
    x, z, psi = cars[t, v].T
    s, d = road_coords(scene.road, x, z)
    p0, p1 = road_at(scene.road, s), road_at(scene.road, s + ds)
    d = d + dd
    cars[t, v] = np.stack([p1[:, 0] + d * np.cos(p1[:, 2]), p1[:, 1] - d * np.sin(p1[:, 2]),
                           psi - p0[:, 2] + p1[:, 2]], axis=1)
    brakes = scene.braking
    if braking is not None:
        t, v = _rows(scene, track)
        brakes = brakes.copy()
        brakes[t, v] |= braking[t]
    return dataclasses.replace(scene, cars=cars, braking=brakes)


def braking_shift(sf: np.ndarray, sg: np.ndarray, tb: int, end: int, dt: float, decel: float = BRAKE
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Vehicle F (arc lengths sf (T,)) closing on G ahead of it in its lane (sg (T,)) brakes from frame tb to
    frame `end` (exclusive): its closing speed falls by `decel` m/s^2 to 0, after which it keeps G's speed.
    -> (ds (T,): F's shift along the road, 0 before tb and held after end; braking (T,) bool: the frames it
    decelerates in)."""
    new, brake = sf.copy(), np.zeros(len(sf), dtype=bool)
    closing = (sf[tb] - sf[tb - 1]) - (sg[tb] - sg[tb - 1])  # metres per frame at the onset
    for t in range(tb, min(end, len(sf))):
        left = closing - decel * dt * dt * (t - tb)  # closing speed at the start of frame t (metres per frame)
        new[t] = new[t - 1] + (sg[t] - sg[t - 1]) + max(left - decel * dt * dt, 0.0)
        brake[t] = left > 0
    ds = np.zeros(len(sf))
    ds[tb:end] = (new - sf)[tb:end]
    ds[end:] = ds[end - 1]
    return ds, brake


# ------------------------------------------------------------------------------------------------ geometry
def footprints(scene: DriveScene, t: int) -> dict[int, np.ndarray]:
    """Ground footprints at frame t: {track: (4, 2) corners in world x, z}; the ego is track -1 (EGO_LENGTH x
    EGO_WIDTH, centred on the camera)."""
    out = {}
    live = np.flatnonzero(scene.track[t] >= 0)
    for v in live:
        k = int(scene.track[t, v])
        _, w, l = scene.track_dims[k]
        out[k] = _rect(*scene.cars[t, v], l, w)
    out[-1] = _rect(*scene.ego[t], EGO_LENGTH, EGO_WIDTH)
    return out


def _rect(x: float, z: float, psi: float, length: float, width: float) -> np.ndarray:
    fwd = np.array([np.sin(psi), np.cos(psi)])  # heading psi faces +z, turning towards +x
    right = np.array([np.cos(psi), -np.sin(psi)])
    c = np.array([x, z])
    return np.array([c + a * fwd * length / 2 + b * right * width / 2 for a, b in ((1, 1), (1, -1), (-1, -1), (-1, 1))])


def separation(a: np.ndarray, b: np.ndarray) -> float:
    """Signed distance between two convex polygons (4, 2) along the best separating axis of their edges: > 0
    apart (a lower bound of the gap), <= 0 they intersect (minus the depth of the least overlap)."""
    best = -np.inf
    for poly in (a, b):
        for i in range(len(poly)):
            e = poly[(i + 1) % len(poly)] - poly[i]
            n = np.array([-e[1], e[0]]) / np.hypot(*e)
            pa, pb = a @ n, b @ n
            best = max(best, pb.min() - pa.max(), pa.min() - pb.max())
    return float(best)


def _clearance(scene: DriveScene, tracks: tuple[int, ...], frames: range, skip: tuple[int, ...] = ()) -> float:
    """Smallest separation over `frames` between each of `tracks` and every other vehicle and the ego (pairs
    with a track in `skip` are left out)."""
    gap = np.inf
    for t in frames:
        fp = footprints(scene, t)
        for k in tracks:
            if k not in fp:
                continue
            for j, poly in fp.items():
                if j != k and j not in skip:
                    gap = min(gap, separation(fp[k], poly))
    return gap


# ------------------------------------------------------------------------------------------------- visibility
class _Views:
    """Per frame of a drive, rendered on first use: each track's visible pixels `px`, visible share `vis` and
    in-image share `inside` ((K,) each; 0 where the track is not labelled in that frame)."""

    def __init__(self, scene: DriveScene):
        self.scene, self.cam, self.cache = scene, _Camera.build(scene.cfg), {}
        self.min_px = max(2, int(round(MIN_AREA * scene.cfg.height * scene.cfg.width)))

    def __call__(self, t: int) -> dict[str, np.ndarray]:
        if t not in self.cache:
            f = render_frame(self.scene, t, self.cam)
            K, lab = len(self.scene.track_type), f["labels"]
            vis, inside = np.zeros(K), np.zeros(K)
            vis[lab["track"]], inside[lab["track"]] = lab["visible"], 1 - lab["truncated"]
            self.cache[t] = {"px": np.bincount(np.clip(f["ids"].ravel(), 0, None), minlength=K + 1)[1:],
                             "vis": vis, "inside": inside}
        return self.cache[t]

    def in_view(self, frames, k: int, share: float = 1.0) -> bool:
        """Track k shows at least share x MIN_AREA of the frame at each of `frames`."""
        return all(self(int(t))["px"][k] >= share * self.min_px for t in frames)

    def clear(self, frames, k: int) -> bool:
        """In view, >= CLEAR of its pixels visible and none outside the image, at each of `frames`."""
        return self.in_view(frames, k) and all(self(int(t))["vis"][k] >= CLEAR and self(int(t))["inside"][k] >= 1
                                               for t in frames)


def _cone(scene: DriveScene) -> np.ndarray:
    """(T, K) bool: track k's bottom centre lies ahead of the camera, inside its horizontal field of view and
    nearer than max_depth at frame t (a cheap first filter before anything is rendered)."""
    cfg = scene.cfg
    out = np.zeros((scene.frames, len(scene.track_type)), dtype=bool)
    t, v = np.nonzero(scene.track >= 0)
    ex, ez, epsi = scene.ego[t].T
    dx, dz = scene.cars[t, v, 0] - ex, scene.cars[t, v, 1] - ez
    x, z = np.cos(epsi) * dx - np.sin(epsi) * dz, np.sin(epsi) * dx + np.cos(epsi) * dz
    half_fov = cfg.width / 2 / (cfg.focal * cfg.width)
    out[t, scene.track[t, v]] = (z > 2.0) & (z < cfg.max_depth) & (np.abs(x) < z * half_fov)
    return out


# --------------------------------------------------------------------------------------------------- planning
def _splice_frame(frames: int, rng: np.random.Generator) -> int:
    """s near the clip's middle, so windows before and after it see the clip as it was and as it became."""
    return int(rng.integers(frames // 2 - 2, frames // 2 + 3))


def _try_spliced(kind: str, scene: DriveScene, frames: int, rng: np.random.Generator, seed: int) -> Plan | None:
    s = _splice_frame(frames, rng)
    jump = float(rng.uniform(*JUMP)) * rng.choice([-1.0, 1.0]) if kind == "teleport" else 0.0
    need = np.arange(s - 2, s + 2) if kind == "vanish" else np.arange(s - 1, s + 1)
    cone, view = _cone(scene), _Views(scene)
    starts = np.arange(WARMUP, scene.frames - frames + 1)
    t0s, ks = np.nonzero(np.all(cone[starts[:, None] + need], axis=1))  # in the cone at every needed frame
    tries = 0
    for i in rng.permutation(len(t0s))[:MAX_LOOKS]:
        t0, k = int(starts[t0s[i]]), int(ks[i])
        if not (view.clear(t0 + need, k) if kind == "vanish" else view.in_view(t0 + need, k)):
            continue
        clip = range(t0, t0 + frames)
        if kind == "vanish":
            return Plan(kind, seed, (scene, without(scene, k)), clip, s, s, (k,))
        tries += 1
        if tries > MAX_TRIES:
            break
        b = moved(scene, k, ds=jump)
        if _clearance(b, (k,), clip) >= GAP and _Views(b).in_view(t0 + need, k):
            return Plan(kind, seed, (scene, b), clip, s, s, (k,), jump)
    return None


def _road_tracks(scene: DriveScene) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per track: (s, d) of its bottom centre at every frame, nan where it is not on the road, (T,) each, and
    its length."""
    live = scene.track >= 0
    s_all, d_all = np.full(scene.track.shape, np.nan), np.full(scene.track.shape, np.nan)
    s_all[live], d_all[live] = road_coords(scene.road, scene.cars[..., 0][live], scene.cars[..., 1][live])
    out = {}
    for k in np.unique(scene.track[live]):
        t, v = _rows(scene, int(k))
        s, d = np.full(scene.frames, np.nan), np.full(scene.frames, np.nan)
        s[t], d[t] = s_all[t, v], d_all[t, v]
        out[int(k)] = (s, d, scene.track_dims[k, 2])
    return out


def _onset(sf: np.ndarray, sg: np.ndarray, half: float, tm: int, s: int, frames: int, dt: float) -> int | None:
    """The latest frame before tm from which F, braking at BRAKE, stays >= FOLLOW metres behind G (bumper to
    bumper; `half` is their half lengths summed) until the clip that has the onset at clip frame s ends."""
    for tb in range(tm - 1, max(tm - 30, 1), -1):
        end = tb - s + frames
        if end > len(sf) or np.isnan(sf[tb - 1:end]).any() or np.isnan(sg[tb - 1:end]).any():
            return None
        ds, _ = braking_shift(sf, sg, tb, end, dt)
        if (sg - sf - ds - half)[tb:end].min() >= FOLLOW:
            return tb
    return None


def _first_contact(scene: DriveScene, f: int, g: int, clip: range) -> int | None:
    """The clip frame from which the footprints of f and g intersect to the clip's end (None: they never do, or
    come apart again)."""
    inside = [separation(*(footprints(scene, t)[k] for k in (f, g))) < 0 for t in clip]
    if not inside[-1]:
        return None
    return len(inside) - inside[::-1].index(False) if False in inside else 0


def _try_pass_through(scene: DriveScene, frames: int, rng: np.random.Generator, seed: int) -> Plan | None:
    cfg = scene.cfg
    s = int(rng.integers(frames // 3, frames // 2 + 1))  # F brakes (A, B) or does not (C, D) from clip frame s
    road, cone, view = _road_tracks(scene), _cone(scene), _Views(scene)
    cands = []
    for f, (sf, df, lf) in road.items():
        for g, (sg, dg, lg) in road.items():
            rel = sf - sg  # < 0: F behind G
            touch = np.abs(rel) < (lf + lg) / 2
            for tm in np.flatnonzero(touch[1:] & ~touch[:-1] & (rel[:-1] < 0)) + 1:
                if f == g or (rel[tm] - rel[tm - 1]) / cfg.dt < MIN_CLOSING or not (cone[tm, f] and cone[tm, g]):
                    continue
                tb = _onset(sf, sg, (lf + lg) / 2, int(tm), s, frames, cfg.dt)
                if tb is None or tb - s < WARMUP or tm - (tb - s) > frames - 4:
                    continue  # no room to brake in the drive, or under 4 frames of the bodies intersecting
                clip = slice(tb - s, tb - s + frames)
                if np.ptp(df[clip]) > 0.05 or np.ptp(dg[clip]) > 0.05:
                    continue  # a lane change during the clip
                dd = float(dg[clip].mean() - df[clip].mean())
                if abs(dd) >= 0.8 * cfg.lane_width and cone[tb, f] and cone[tb, g]:
                    cands.append((tb - s, tb, int(tm), f, g, dd))
    tries = 0
    for i in rng.permutation(len(cands))[:MAX_LOOKS]:
        t0, tb, tm, f, g, dd = cands[i]
        if not all(view.in_view([t], k, share=0.5) for t in (tb, tm) for k in (f, g)):
            continue  # a first filter on the drive as simulated; the clips are checked below
        tries += 1
        if tries > MAX_TRIES:
            break
        clip = range(t0, t0 + frames)
        ds, brake = braking_shift(road[f][0], road[g][0], tb, t0 + frames, cfg.dt)
        a = moved(scene, f, ds=ds, dd=dd, braking=brake)  # F brakes behind G in G's lane
        b = moved(moved(scene, g, dd=-dd), f, ds=ds, braking=brake)  # ... in F's lane
        c, d = moved(scene, f, dd=dd), moved(scene, g, dd=-dd)  # F drives on through G, in G's lane / in F's
        if min(_clearance(x, (f, g), clip) for x in (a, b)) < GAP:
            continue  # the possible drives must be possible
        if min(_clearance(x, (f, g), clip, skip=(f, g)) for x in (c, d)) < GAP:
            continue  # in C and D the only contact is F with G
        meet = [_first_contact(x, f, g, clip) for x in (c, d)]
        if None in meet or not s < min(meet) <= max(meet) <= frames - 4:
            continue
        # both bodies show around the frame they meet in C and D (neither hidden inside or behind the other)
        if all(_Views(x).in_view(range(t0 + mx - 1, t0 + mx + 3), k, share=0.5)
               for x, mx in zip((c, d), meet) for k in (f, g)):
            return Plan("pass_through", seed, (a, b, c, d), clip, s, min(meet), (f, g))
    return None


def plan_quadruplet(kind: str, seed: int, cfg: DrivingConfig, frames: int = 24) -> Plan:
    """The drives and clip of the `kind` quadruplet for `seed` (see the module docstring)."""
    if kind not in KINDS:
        raise ValueError(f"unknown violation {kind!r}; choose from {KINDS}")
    if frames < 16:
        raise ValueError(f"frames must be >= 16 (a pass-through needs ~7 frames from the braking onset to contact, "
                         f"after a third of the clip, and 4 more after it), got {frames}")
    rng = np.random.default_rng([seed, KINDS.index(kind)])
    for attempt in range(5):
        scene = simulate(cfg, seed, DRIVE_FRAMES * 2 ** attempt)
        got = _try_pass_through(scene, frames, rng, seed) if kind == "pass_through" else \
            _try_spliced(kind, scene, frames, rng, seed)
        if got is not None:
            return got
    raise RuntimeError(f"no usable {kind} event in the drives of seed {seed} (frames={frames}, {cfg.height}x"
                       f"{cfg.width}, {cfg.vehicles} vehicles)")


def make_quadruplet(kind: str, seed: int, cfg: DrivingConfig, frames: int = 24) -> Quadruplet:
    """The matched quadruplet of `kind` for `seed`: possible (A, B) and impossible (C, D) clips of `frames`
    frames, rgb uint8 (T, H, W, 3)."""
    plan = plan_quadruplet(kind, seed, cfg, frames)
    rgb = [render(sc, plan.clip)["rgb"] for sc in plan.scenes]
    if len(rgb) == 4:
        A, B, C, D = rgb
    else:
        A, B = rgb
        s = plan.splice
        C, D = np.concatenate([A[:s], B[s:]]), np.concatenate([B[:s], A[s:]])
    return Quadruplet(kind, seed, (A, B), (C, D), plan.splice, plan.violation, plan)


def write_quadruplets(root: str | Path, n: int, cfg: DrivingConfig, frames: int = 24, seed: int = 0,
                      kinds: tuple[str, ...] = KINDS, progress: bool = False) -> Path:
    """n quadruplets per kind as files `openjepa surprise` reads: ROOT/<kind>_<seed>/possible_A.npy, possible_B.npy,
    impossible_C.npy, impossible_D.npy (uint8 (T, H, W, 3)) and info.json (splice, violation, drive frames, tracks,
    jump)."""
    root = Path(root)
    for kind in kinds:
        for i in range(n):
            q = make_quadruplet(kind, seed + i, cfg, frames)
            d = root / f"{kind}_{q.seed}"
            d.mkdir(parents=True, exist_ok=True)
            for name, clip in zip(("possible_A", "possible_B", "impossible_C", "impossible_D"),
                                  (*q.possible, *q.impossible)):
                np.save(d / f"{name}.npy", clip)
            p = q.plan
            info = {"kind": kind, "seed": q.seed, "splice": q.splice, "violation": q.violation,
                    "tracks": list(p.tracks), "jump": p.jump, "drive_frames": [p.clip.start, p.clip.stop],
                    "height": cfg.height, "width": cfg.width, "focal": cfg.focal}
            (d / "info.json").write_text(json.dumps(info, indent=1) + "\n")
            if progress:
                print(f"{d}: splice {q.splice}, violation at frame {q.violation}", flush=True)
    return root


def test_quadruplets(n: int, cfg: DrivingConfig, frames: int = 24, seed: int = 0, kinds: tuple[str, ...] = KINDS
                     ) -> list[Quadruplet]:
    """n quadruplets per kind from seeds seed .. seed + n - 1 (kind-major order)."""
    return [make_quadruplet(k, seed + i, cfg, frames) for k in kinds for i in range(n)]


test_quadruplets.__test__ = False  # not a pytest test
