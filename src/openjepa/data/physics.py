"""Procedural intuitive-physics videos (numpy, seeded, generated on the fly; no files).

Scenes: a floor, a background (colour plus a vertical gradient), optional inner walls, opaque occluders in
front, and one or two balls that are thrown, fall, bounce on the floor, on the frame's sides and on walls,
roll, collide (equal masses, elastic) and pass behind occluders. Colours, sizes, speeds, gravity and
backgrounds are drawn from a seeded `numpy.random.Generator`, so a video is a pure function of its seed.

Coordinates are resolution-free: the world is the unit square, x to the right, y up, the floor's top at
`floor_y`; one time unit is one frame. The same scene renders at 32x32 or 64x64 (`size`) in RGB or grey
(`channels`), as uint8 (T, H, W, C).

Matched possible/impossible quadruplets follow the IntPhys construction (Riochet et al. 2018): two possible
videos A and B share a scene and, for a few frames while the ball is hidden behind an occluder, are pixel-
identical; the impossible videos splice them at such a frame s: C = A[:s] + B[s:] and D = B[:s] + A[s:].
Every frame of C and D is therefore a frame of A or B at the same time index, so no single frame gives a
violation away: only the dynamics do. Properties (`PROPERTIES`):

    gravity      a tall occluder; A: a ball thrown high peaks behind it and comes out slowly falling; B: a low
                 hop with the same horizontal motion lands behind it and comes out bouncing up. C: the ball
                 near its apex comes out low and rising fast (it fell and rebounded faster than gravity
                 allows); D: a ball falling onto the floor comes out high, hovering near an apex.
    permanence   A: a ball rolls behind an occluder and out again; B: the same scene without a ball.
                 C: the ball vanishes behind the occluder; D: a ball appears from behind it.
    continuity   two occluders; A: the ball rolls behind both (visible in the gap); B: the same ball one
                 occluder spacing ahead. C: it leaves the first occluder's shadow straight from the second
                 (teleport forwards, never crossing the gap); D: it jumps back from the second to the first.
    solidity     a tall wall whose foot is hidden by an occluder; A: a ball rolls in from the left and bounces
                 back off the wall; B: the mirror image from the right. C, D: the ball passes through the wall.
    inertia      one occluder, no wall; A: a ball rolls left to right through; B: right to left. C, D: the
                 ball reverses direction while hidden, with nothing to bounce off.

Train/test disjointness: training videos (`train_video`, the `physics` dataset) use seeds [0, 10**9) and
ball hues from the first half of every hue sextant; test quadruplets use seeds >= 10**9 (`TEST_SEED`) and
ball hues from the second halves, so no test video shares a seed or a ball colour with a training one.
Training videos are all physically possible.

Looks: every generator takes `style`, a family of data/physics_styles.py: `plain` (the look described above, the
default), `train` (randomised textures, shapes, colours, camera noise; what training with
video.physics_style=random draws) or `heldout` (a disjoint family, refused for training videos). A style is drawn
from its own random stream keyed by the scene's seed, so a seed's trajectories are the same in every style.

Resolution and frame rate (opt-in; the defaults leave every video as above): `render_scale` k renders a video at
k * size and box-downsamples it (`downsample`: the exact mean of each k x k block, rounded) to size, like a user's
high-resolution clip shrunk to the model's input (softer edges; camera noise, drawn at the render resolution, is
attenuated). `fps_scale` f films the same physical scene at 1/f of the frame rate (`simulate`): per-frame velocities
x f, gravity per frame^2 x f^2, the same bounces and collisions. `train_videos` draws k and f per video from
`render_scales` and `fps_scales`, each from its own stream keyed by the seed (`video_scales`), apart from the
physics and style streams; test quadruplets take a render_scale (they stay exact splices) but never an fps_scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from openjepa.data import physics_styles
from openjepa.data.physics_colours import background_colours, ball_colour, occluder_colour, pixel_grid, to_uint8

PROPERTIES = ("gravity", "permanence", "continuity", "solidity", "inertia")
TEST_SEED = 10**9  # test quadruplet seeds start here; training seeds lie below


@dataclass
class Scene:
    """Static layout of a video plus the balls' looks. Colours are RGB in [0, 1]."""
    bg: np.ndarray  # (3,) background colour at mid height
    bg_grad: float  # added at the top, subtracted at the bottom (vertical gradient)
    floor_y: float  # world height of the floor's top
    floor_col: np.ndarray  # (3,)
    ball_r: np.ndarray  # (nb,) radii in world units
    ball_col: np.ndarray  # (nb, 3)
    walls: list = field(default_factory=list)  # [(x_centre, half_width, top_y, colour (3,))]
    occluders: list = field(default_factory=list)  # [(x0, x1, y0, y1, colour (3,))]
    style: Any = None  # a physics_styles.Style drawn over the colours above; None: the plain look


def _scene_base(rng: np.random.Generator) -> tuple[np.ndarray, float, float, np.ndarray]:
    bg, floor_col = background_colours(rng)
    return bg, float(rng.uniform(-0.08, 0.08)), float(rng.uniform(0.08, 0.16)), floor_col


# ----------------------------------------------------------------------------------------------- rendering
def render(scene: Scene, pos: np.ndarray, present: np.ndarray, size: int = 32, channels: int = 3) -> np.ndarray:
    """Frames of a scene: pos (T, nb, 2) ball centres (x, y) in world units, present (T, nb) bool ->
    uint8 (T, size, size, channels). Draw order: background, walls, balls (anti-aliased, one pixel soft edge),
    occluders, floor. Grey is the luminance (0.299, 0.587, 0.114) of the RGB frame. A scene with a style is drawn
    by it (physics_styles.Style.render)."""
    if scene.style is not None:
        return scene.style.render(scene, pos, present, size, channels)
    T, nb = present.shape
    px, X, Y = pixel_grid(size)  # X, Y (H, W): pixel centres in world units
    base = scene.bg[None, None, :] + scene.bg_grad * (2 * Y[..., None] - 1)  # (H, W, 3)
    for xc, hw, top, col in scene.walls:
        m = (np.abs(X - xc) <= hw) & (Y <= top)
        base[m] = col
    frames = np.repeat(base[None], T, axis=0)  # (T, H, W, 3)
    for b in range(nb):
        d = np.hypot(X[None] - pos[:, b, 0, None, None], Y[None] - pos[:, b, 1, None, None])  # (T, H, W)
        alpha = np.clip((scene.ball_r[b] - d) / px + 0.5, 0.0, 1.0) * present[:, b, None, None]
        frames = frames * (1 - alpha[..., None]) + alpha[..., None] * scene.ball_col[b]
    for x0, x1, y0, y1, col in scene.occluders:
        m = (X >= x0) & (X <= x1) & (Y >= y0) & (Y <= y1)
        frames[:, m] = col
    frames[:, Y <= scene.floor_y] = scene.floor_col
    frames = np.clip(frames, 0.0, 1.0)
    return to_uint8(frames, channels)


def downsample(frames: np.ndarray, k: int) -> np.ndarray:
    """uint8 (T, k*H, k*W, C) -> uint8 (T, H, W, C): the exact mean of each k x k block, rounded to the nearest
    integer (half to even), frame by frame (a frame's result depends on that frame alone)."""
    if k == 1:
        return frames
    T, kH, kW, C = frames.shape
    if kH % k or kW % k:
        raise ValueError(f"frames of {kH}x{kW} pixels do not split into {k}x{k} blocks")
    s = frames.reshape(T, kH // k, k, kW // k, k, C).sum((2, 4), dtype=np.int64)  # (T, H, W, C)
    return np.round(s / (k * k)).astype(np.uint8)


def render_scaled(scene: Scene, pos: np.ndarray, present: np.ndarray, size: int = 32, channels: int = 3,
                  render_scale: int = 1) -> np.ndarray:
    """`render` at render_scale * size, box-downsampled to size: uint8 (T, size, size, channels). A style's camera
    noise is drawn at the render resolution, so the downsample attenuates it like a real downscale."""
    if render_scale < 1 or int(render_scale) != render_scale:
        raise ValueError(f"render_scale must be an integer >= 1, got {render_scale}")
    k = int(render_scale)
    return downsample(render(scene, pos, present, k * size, channels), k)


# ------------------------------------------------------------------------------------------------ dynamics
def simulate(scene: Scene, state: np.ndarray, T: int, g: float, restitution: float = 0.8,
             side_walls: bool = True, substeps: int = 8, fps_scale: float = 1.0) -> np.ndarray:
    """Ball centres (T, nb, 2) from initial states (nb, 4) = (x, y, vx, vy) at frame 0 (velocities per frame).

    Semi-implicit Euler with `substeps` per frame: gravity g (world units / frame^2), bounces on the floor
    (vertical speed x restitution; slow bounces settle into rolling), on the frame's sides (`side_walls`,
    elastic) and on inner walls (elastic), and elastic collisions between equal-mass balls.

    `fps_scale` f: the same scene filmed at 1/f of the frame rate (state velocities and g stay in units of the
    base frame; the output's frames are f base frames apart). Per output frame, velocities are x f and gravity
    x f^2; the settle speed (2.5 g per base frame) keeps its physical value; the substeps per output frame become
    ceil(substeps * f), so a substep never spans more time than at f = 1. Where substeps * f is a whole number the
    substeps are the base ones, and the output is the base trajectory sampled every f base frames (up to rounding)."""
    f = float(fps_scale)
    if not f > 0:
        raise ValueError(f"fps_scale must be > 0, got {fps_scale}")
    settle = 2.5 * g * f  # the base threshold 2.5 g (per base frame) in output-frame units
    g = g * f * f
    substeps = max(1, math.ceil(substeps * f - 1e-9))
    s = state.astype(np.float64).copy()
    s[:, 2:] *= f
    r = scene.ball_r
    dt = 1.0 / substeps
    out = np.empty((T, len(s), 2))
    for t in range(T):
        out[t] = s[:, :2]
        for _ in range(substeps):
            s[:, 3] -= g * dt
            s[:, :2] += s[:, 2:] * dt
            low = s[:, 1] < scene.floor_y + r
            s[low, 1] = scene.floor_y + r[low]
            up = low & (s[:, 3] < 0)
            s[up, 3] = -s[up, 3] * restitution
            s[up & (s[:, 3] < settle), 3] = 0.0  # settles: rolls on the floor
            if side_walls:
                left, right = (s[:, 0] < r) & (s[:, 2] < 0), (s[:, 0] > 1 - r) & (s[:, 2] > 0)
                s[left | right, 2] *= -1
            for xc, hw, top, _ in scene.walls:
                hit = (np.abs(s[:, 0] - xc) < hw + r) & (s[:, 1] - r < top)
                towards = np.sign(xc - s[:, 0]) * s[:, 2] > 0
                s[hit & towards, 2] *= -1
            for i in range(len(s)):
                for j in range(i + 1, len(s)):
                    d = s[j, :2] - s[i, :2]
                    dist = np.hypot(*d)
                    if 0 < dist < r[i] + r[j]:
                        n = d / dist
                        rel = (s[i, 2:] - s[j, 2:]) @ n
                        if rel > 0:  # approaching: swap the normal components
                            s[i, 2:] -= rel * n
                            s[j, 2:] += rel * n
    return out


# ---------------------------------------------------------------------------------------- training videos
def train_video(seed: int, T: int = 32, size: int = 32, channels: int = 3, split: str = "train",
                ball_scale: float = 1.0, style: str = "plain", render_scale: int = 1, fps_scale: float = 1.0
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One physically possible video -> (frames uint8 (T, size, size, channels), pos (T, nb, 2),
    vel (T, nb, 2)) (state per frame, world units). Kind drawn from the seed: throw, fall, roll, collide;
    0-2 occluders, sometimes an inner wall, sometimes open sides (balls leave the frame). `ball_scale`
    multiplies the drawn ball radii (every other draw unchanged). `style`: the look's family (module docstring).
    `render_scale`: drawn at that multiple of size and box-downsampled (`render_scaled`); `fps_scale`: the same scene
    filmed at 1/fps_scale of the frame rate (`simulate`; T frames span T * fps_scale base frames). No draw depends
    on either: every other choice of the video is the same."""
    rng = np.random.default_rng(seed)
    bg, grad, floor_y, floor_col = _scene_base(rng)
    kind = rng.choice(["throw", "fall", "roll", "collide"], p=[0.35, 0.2, 0.25, 0.2])
    nb = 2 if kind == "collide" else 1
    r = rng.uniform(0.045, 0.075, nb) * ball_scale
    occ_cols = [occluder_colour(rng, bg) for _ in range(2)]
    cols = []
    for _ in range(nb):
        cols.append(ball_colour(rng, split, [bg, *occ_cols]))
    scene = Scene(bg, grad, floor_y, floor_col, r, np.array(cols),
                  style=physics_styles.draw_style(style, (seed,), split))
    if rng.random() < 0.25:
        scene.walls.append((float(rng.uniform(0.2, 0.8)), float(rng.uniform(0.015, 0.03)),
                            float(rng.uniform(0.4, 1.0)), occluder_colour(rng, bg)))
    for k in range(rng.choice(3, p=[0.3, 0.45, 0.25])):
        w = rng.uniform(0.18, 0.32)
        x0 = rng.uniform(0.0, 1.0 - w)
        y1 = 1.0 if rng.random() < 0.5 else rng.uniform(floor_y + 0.25, 0.9)
        scene.occluders.append((x0, x0 + w, floor_y, y1, occ_cols[k]))
    g = rng.uniform(0.004, 0.009)
    state = np.zeros((nb, 4))
    ground = floor_y + r
    if kind == "throw":
        state[0] = [rng.uniform(0.05, 0.4), rng.uniform(ground[0], 0.4), rng.uniform(0.01, 0.04),
                    rng.uniform(0.04, 0.09)]
    elif kind == "fall":
        state[0] = [rng.uniform(0.15, 0.85), rng.uniform(0.6, 0.9), rng.uniform(-0.015, 0.015), rng.uniform(-0.01, 0.02)]
    elif kind == "roll":
        state[0] = [rng.uniform(0.05, 0.4), ground[0], rng.uniform(0.02, 0.045), 0.0]
    else:
        air = rng.random() < 0.3
        y = rng.uniform(0.4, 0.7, 2) if air else ground
        state[0] = [rng.uniform(0.05, 0.3), y[0], rng.uniform(0.02, 0.045), rng.uniform(0.0, 0.04) * air]
        state[1] = [rng.uniform(0.65, 0.95), y[1], -rng.uniform(0.0, 0.045), rng.uniform(0.0, 0.04) * air]
    if rng.random() < 0.5:  # mirror
        state[:, 0], state[:, 2] = 1.0 - state[:, 0], -state[:, 2]
    pos = simulate(scene, state, T + 1, g, restitution=float(rng.uniform(0.6, 0.9)),
                   side_walls=bool(rng.random() < 0.6), fps_scale=fps_scale)
    vel = pos[1:] - pos[:-1]
    pos = pos[:-1]
    present = np.ones((T, nb), bool)
    return render_scaled(scene, pos, present, size, channels, render_scale), pos, vel


def _mirror(scene: Scene, *tracks: np.ndarray) -> tuple[np.ndarray, ...]:
    """Mirror a video left-right: the scene's occluders and walls in place, and copies of ball tracks (T, nb, 2)."""
    scene.occluders = [(1 - x1, 1 - x0, y0, y1, c) for x0, x1, y0, y1, c in scene.occluders]
    scene.walls = [(1 - xc, hw, top, c) for xc, hw, top, c in scene.walls]
    out = tuple(p.copy() for p in tracks)
    for p in out:
        p[..., 0] = 1 - p[..., 0]
    return out


OCCLUSION_KINDS = ("cross", "cross2", "arc", "wall", "empty")
OCCLUSION_WEIGHTS = (0.3, 0.2, 0.2, 0.2, 0.1)  # default share of each kind


def _kind_p(kinds: tuple[float, ...]) -> np.ndarray:
    """Relative weights of OCCLUSION_KINDS -> probabilities."""
    w = np.asarray(kinds, dtype=np.float64)
    if w.shape != (len(OCCLUSION_KINDS),) or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"occlusion kind weights must be {len(OCCLUSION_KINDS)} non-negative numbers "
                         f"({', '.join(OCCLUSION_KINDS)}) with a positive sum, got {list(kinds)}")
    return w / w.sum()


def occlusion_video(seed: int, T: int = 32, size: int = 32, channels: int = 3, split: str = "train",
                    ball_scale: float = 1.0, kinds: tuple[float, ...] = OCCLUSION_WEIGHTS, swap: float = 0.0,
                    style: str = "plain", render_scale: int = 1, fps_scale: float = 1.0
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One physically possible video built around an occlusion, the situations the test quadruplets probe
    (same return as `train_video`; random stream independent of train_video's for the same seed). Kinds:
    cross (a ball rolls behind one occluder and out), cross2 (behind two, seen in the gap), arc (a ball thrown
    over the floor arcs or hops behind a tall occluder, bouncing), wall (a ball rolls against a wall whose foot
    an occluder hides and bounces back), empty (occluders, no ball). Either direction; the ball is hidden at a
    random frame of the video. Ball hues from the split's half sextants, like `train_video`. `kinds`: relative
    weights of OCCLUSION_KINDS (normalised). `swap`: the share of cross and wall scenes whose occluder heights are
    swapped (cross: a low occluder the ball rolls behind and on; wall: a tall foot occluder below a full-height
    wall), so that the occluder's height no longer tells whether the ball comes back: only the wall does (no
    extra draws when 0: the default videos are unchanged). `style`: the look's family (module docstring).
    `render_scale`, `fps_scale`: as in `train_video`, with one difference: the drawn frame times (when the ball is
    hidden, when an arc peaks) stay frames of the clip, so the clip is the same scene filmed at 1/fps_scale of the
    frame rate from another start time (a rolling ball starts further out; an arc is launched fewer frames before
    its apex) and the occlusion still happens inside the clip."""
    rng = np.random.default_rng([seed, 7])
    bg, grad, floor_y, floor_col = _scene_base(rng)
    occ_cols = [occluder_colour(rng, bg) for _ in range(2)]
    r = float(rng.uniform(0.04, 0.075)) * ball_scale
    scene = Scene(bg, grad, floor_y, floor_col, np.array([r]), ball_colour(rng, split, [bg, *occ_cols])[None],
                  style=physics_styles.draw_style(style, (seed, 7), split))
    kind = OCCLUSION_KINDS[rng.choice(len(OCCLUSION_KINDS), p=_kind_p(kinds))]
    ground = floor_y + r
    g = float(rng.uniform(0.004, 0.009))
    t_hide = float(rng.uniform(4, T - 4))  # when the ball is behind the (first) occluder's centre
    v = float(rng.uniform(0.015, 0.04))
    vf = v * fps_scale  # the rolling speed per frame of the clip: where a ball starts to be hidden at t_hide
    xc = float(rng.uniform(0.3, 0.7))
    present = np.ones((T, 1), bool)
    side_walls = bool(rng.random() < 0.3)
    swapped = swap > 0 and rng.random() < swap
    if kind in ("cross", "empty"):
        w = float(rng.uniform(0.2, 0.38))
        top = floor_y + float(rng.uniform(0.15, 0.35)) if swapped else float(rng.uniform(0.4, 1.0))
        scene.occluders.append((xc - w / 2, xc + w / 2, floor_y, top, occ_cols[0]))
        state = [xc - vf * t_hide, ground, v, 0.0]
        present[:] = kind == "cross"
    elif kind == "cross2":
        w, gap = float(rng.uniform(0.18, 0.27)), float(rng.uniform(0.08, 0.18))
        x1 = float(rng.uniform(0.05, 0.95 - 2 * w - gap))
        for k, x in enumerate((x1, x1 + w + gap)):
            scene.occluders.append((x, x + w, floor_y, float(rng.uniform(0.4, 1.0)), occ_cols[k]))
        state = [x1 + w / 2 - vf * t_hide, ground, v, 0.0]
    elif kind == "arc":
        w = float(rng.uniform(0.22, 0.36))
        scene.occluders.append((xc - w / 2, xc + w / 2, floor_y, 1.0, occ_cols[0]))
        vx = float(rng.uniform(0.015, 0.03))
        t_up = float(rng.uniform(3.0, 13.0))  # base frames to the apex
        t0 = t_hide - t_up / fps_scale  # clip frame of the launch
        state = [xc - vx * t_up, ground + float(rng.uniform(0.0, 0.12)), vx, g * t_up]
        pos = simulate(scene, np.array([state]), T + 1 + max(int(-t0), 0), g, float(rng.uniform(0.6, 0.95)),
                       side_walls=side_walls, fps_scale=fps_scale)[max(int(-t0), 0):]
    else:  # wall
        hw = float(rng.uniform(0.015, 0.03))
        w = float(rng.uniform(0.26, 0.4))
        wall_top = 1.0 if swapped else float(rng.uniform(0.5, 1.0))
        scene.walls.append((xc, hw, wall_top, occ_cols[1]))
        top = float(rng.uniform(0.45, 0.85)) if swapped else floor_y + float(rng.uniform(0.15, 0.35))
        scene.occluders.append((xc - w / 2, xc + w / 2, floor_y, top, occ_cols[0]))
        state = [xc - hw - r - vf * t_hide, ground, v, 0.0]
    if kind != "arc":
        pos = simulate(scene, np.array([state]), T + 1, g, side_walls=side_walls, fps_scale=fps_scale)
    if rng.random() < 0.5:
        pos, = _mirror(scene, pos)
    vel = pos[1:T + 1] - pos[:T]
    pos = pos[:T]
    return render_scaled(scene, pos, present, size, channels, render_scale), pos, vel


SCALE_STREAM = 41  # a training video's render-scale and frame-rate draws: default_rng([seed, 41, 1 or 2])


def video_scales(seed: int, render_scales: tuple[int, ...] = (1,), fps_scales: tuple[float, ...] = (1.0,)
                 ) -> tuple[int, float]:
    """The training video `seed`'s (render_scale, fps_scale): one entry of each list, uniformly, each from its own
    stream keyed by the seed (never the physics or style streams, so they change nothing else about the video; the
    two draws do not depend on each other's list)."""
    if not render_scales or not fps_scales:
        raise ValueError("render_scales and fps_scales need at least one entry each")
    k = render_scales[int(np.random.default_rng([seed, SCALE_STREAM, 1]).integers(len(render_scales)))]
    f = fps_scales[int(np.random.default_rng([seed, SCALE_STREAM, 2]).integers(len(fps_scales)))]
    return int(k), float(f)


def train_videos(n: int, T: int = 32, size: int = 32, channels: int = 3, seed: int = 0,
                 occlusion: float = 0.0, ball_scale: float = 1.0,
                 kinds: tuple[float, ...] = OCCLUSION_WEIGHTS, swap: float = 0.0, style: str = "plain",
                 render_scales: tuple[int, ...] = (1,), fps_scales: tuple[float, ...] = (1.0,)) -> np.ndarray:
    """n training videos, seeds seed..seed+n-1 (all below TEST_SEED): uint8 (n, channels, T, size, size). A share
    `occlusion` of them (drawn per seed) are `occlusion_video`s (kind weights `kinds`, occluder-height swap share
    `swap`), the rest `train_video`s; `ball_scale` multiplies every ball radius; `style`: plain or train (the
    held-out family never makes training videos). Each video draws its render scale from `render_scales` and its
    frame-rate factor from `fps_scales` (`video_scales`); the defaults make every video at the base ones."""
    if seed + n > TEST_SEED:
        raise ValueError(f"training seeds must stay below {TEST_SEED}")
    if style not in ("plain", "train"):
        raise ValueError(f"training videos are drawn in the plain or train style, not {style!r}")
    if not 0.0 <= occlusion <= 1.0:
        raise ValueError(f"occlusion share must lie in [0, 1], got {occlusion}")
    out = np.empty((n, channels, T, size, size), np.uint8)
    for i in range(n):
        occ = occlusion > 0 and np.random.default_rng([seed + i, 8]).random() < occlusion
        kw = {"kinds": kinds, "swap": swap} if occ else {}
        make = occlusion_video if occ else train_video
        k, f = video_scales(seed + i, render_scales, fps_scales)
        out[i] = make(seed + i, T, size, channels, ball_scale=ball_scale, style=style, render_scale=k, fps_scale=f,
                      **kw)[0].transpose(3, 0, 1, 2)
    return out


# ----------------------------------------------------------------------------------------- test quadruplets
@dataclass
class Quadruplet:
    """Two possible and two impossible videos of one scene, each uint8 (T, H, W, C); the impossible ones are
    the possible ones spliced at frame `splice` (C = A[:s] + B[s:], D = B[:s] + A[s:])."""
    prop: str
    seed: int
    possible: tuple[np.ndarray, np.ndarray]
    impossible: tuple[np.ndarray, np.ndarray]
    splice: int
    violation: int  # first frame where an impossible video differs from the possible one it started as


def _hidden_run(a: np.ndarray, b: np.ndarray, lo: int, hi: int) -> list[int]:
    """Frames t in [lo, hi) where a[t] and b[t] are identical (uint8 arrays (T, H, W, C))."""
    return [t for t in range(lo, hi) if np.array_equal(a[t], b[t])]


def _roll(x0: float, v: float, T: int, y: float) -> np.ndarray:
    t = np.arange(T)
    return np.stack([x0 + v * t, np.full(T, y)], 1)[:, None, :]  # (T, 1, 2)


def _quad_scene(rng: np.random.Generator, r: float, look=None) -> tuple[Scene, list[np.ndarray]]:
    bg, grad, floor_y, floor_col = _scene_base(rng)
    occ_cols = [occluder_colour(rng, bg) for _ in range(2)]
    col = ball_colour(rng, "test", [bg, *occ_cols])
    return Scene(bg, grad, floor_y, floor_col, np.array([r]), col[None], style=look), occ_cols


def _try_quadruplet(prop: str, rng: np.random.Generator, T: int, size: int, channels: int, ball_scale: float = 1.0,
                    look=None, render_scale: int = 1):
    """One attempt; returns (A, B, lo, hi) with trajectories rendered (in `look`, a physics_styles.Style or None, at
    render_scale x size, box-downsampled), or None if the draw is unusable."""
    r = float(rng.uniform(0.045, 0.065)) * ball_scale  # scaling after the draw leaves every other draw the same
    scene, occ_cols = _quad_scene(rng, r, look)
    ground = scene.floor_y + r
    one = np.ones((T, 1), bool)
    none = np.zeros((T, 1), bool)
    flip = rng.random() < 0.5
    v = float(rng.uniform(0.022, 0.032))
    mid = T // 2
    if prop in ("permanence", "inertia"):
        w = float(rng.uniform(0.26, 0.34))
        xc = float(rng.uniform(0.4, 0.6))
        scene.occluders.append((xc - w / 2, xc + w / 2, scene.floor_y, float(rng.uniform(0.45, 1.0)), occ_cols[0]))
        x0 = xc - v * mid  # centred behind the occluder at frame T/2
        pa = _roll(x0, v, T, ground)
        if prop == "permanence":
            pb, pres_b = pa, none
        else:
            pb, pres_b = _roll(2 * xc - x0, -v, T, ground), one
        pres_a = one
    elif prop == "continuity":
        w = float(rng.uniform(0.22, 0.27))
        gap = float(rng.uniform(0.1, 0.16))
        x1 = float(rng.uniform(0.08, 0.9 - 2 * w - gap))
        for k, x in enumerate((x1, x1 + w + gap)):
            scene.occluders.append((x, x + w, scene.floor_y, float(rng.uniform(0.45, 1.0)), occ_cols[k]))
        x0 = x1 + w / 2 - v * mid
        pa = _roll(x0, v, T, ground)
        pb = _roll(x0 + w + gap, v, T, ground)
        pres_a = pres_b = one
    elif prop == "solidity":
        xc = float(rng.uniform(0.4, 0.6))
        hw = float(rng.uniform(0.015, 0.03))
        w = float(rng.uniform(0.3, 0.38))
        scene.walls.append((xc, hw, 1.0, occ_cols[1]))
        scene.occluders.append((xc - w / 2, xc + w / 2, scene.floor_y, scene.floor_y + float(rng.uniform(0.2, 0.3)),
                                occ_cols[0]))
        face = xc - hw - r
        x0 = face - v * (mid + 1)
        pa = simulate(scene, np.array([[x0, ground, v, 0.0]]), T, g=0.0)
        pb = pa.copy()
        pb[..., 0] = 2 * xc - pa[..., 0]
        pres_a = pres_b = one
    else:  # gravity
        g = float(rng.uniform(0.005, 0.008))
        w = float(rng.uniform(0.26, 0.34))
        xc = float(rng.uniform(0.42, 0.58))
        scene.occluders.append((xc - w / 2, xc + w / 2, scene.floor_y, 1.0, occ_cols[0]))
        vx = float(rng.uniform(0.018, 0.026))
        t_apex = float(rng.uniform(10.0, 12.0))  # thrown at frame 0 from near the floor
        y0 = ground + float(rng.uniform(0.0, 0.12))
        vy0 = g * t_apex
        x0 = xc - vx * t_apex
        pa = simulate(scene, np.array([[x0, y0, vx, vy0]]), T, g, side_walls=False)
        # B: a low hop from the same spot with the same horizontal speed, landing (and bouncing) while hidden
        t_land = t_apex + float(rng.uniform(-1.0, 1.0))
        pb = simulate(scene, np.array([[x0, ground, vx, g * t_land / 2]]), T, g, side_walls=False,
                      restitution=float(rng.uniform(0.8, 0.95)))
        pres_a = pres_b = one
    if flip:
        pa, pb = _mirror(scene, pa, pb)
    A = render_scaled(scene, pa, pres_a, size, channels, render_scale)
    B = render_scaled(scene, pb, pres_b, size, channels, render_scale)
    run = _hidden_run(A, B, 4, T - 4)
    if not run:
        return None
    return A, B, run


def make_quadruplet(prop: str, seed: int, T: int = 32, size: int = 32, channels: int = 3,
                    ball_scale: float = 1.0, style: str = "plain", render_scale: int = 1) -> Quadruplet:
    """The matched quadruplet of `prop` for `seed` (use seeds >= TEST_SEED for test sets). Draws are retried
    (deterministically) until A and B share at least one identical frame; the splice is the middle one.
    `ball_scale` (a what-if for diagnosis, not used by the benchmark): the same scene with the ball's radius
    multiplied (trajectories follow the new radius: floor contact, wall face). `style`: the look's family (one
    style per quadruplet, kept over retried draws; its camera noise is seeded per frame index, so the four videos
    share each frame's noise and the splices stay frames of the possible videos). `render_scale`: the four videos
    drawn at that multiple of size and box-downsampled frame by frame (the splices stay frames of the possible ones;
    the matching frames are found after the downsample). There is no fps_scale: test scenes keep their timing."""
    if prop not in PROPERTIES:
        raise ValueError(f"unknown property {prop!r}; choose from {PROPERTIES}")
    rng = np.random.default_rng([seed, PROPERTIES.index(prop)])
    look = physics_styles.draw_style(style, (seed, PROPERTIES.index(prop)), "test")
    for _ in range(100):
        got = _try_quadruplet(prop, rng, T, size, channels, ball_scale, look, render_scale)
        if got is None:
            continue
        A, B, run = got
        s = run[len(run) // 2]
        C = np.concatenate([A[:s], B[s:]])
        D = np.concatenate([B[:s], A[s:]])
        if np.array_equal(C, A) or np.array_equal(D, B):
            continue  # the splice changed nothing
        diff = [t for t in range(s, T) if not np.array_equal(C[t], A[t])]
        return Quadruplet(prop, seed, (A, B), (C, D), s, diff[0])
    raise RuntimeError(f"no usable {prop} quadruplet for seed {seed}")  # not reached with the ranges above


def test_quadruplets(n: int, T: int = 32, size: int = 32, channels: int = 3, props=PROPERTIES,
                     seed: int = TEST_SEED, style: str = "plain", render_scale: int = 1) -> list[Quadruplet]:
    """n quadruplets per property from test seeds seed..seed+n-1, in the look family `style`, drawn at render_scale
    x size and box-downsampled."""
    if seed < TEST_SEED:
        raise ValueError(f"test seeds must be >= {TEST_SEED} (disjoint from training)")
    return [make_quadruplet(p, seed + i, T, size, channels, style=style, render_scale=render_scale)
            for p in props for i in range(n)]


test_quadruplets.__test__ = False  # not a pytest test
