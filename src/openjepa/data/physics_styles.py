"""Appearance styles of the procedural physics videos (data/physics.py): what a scene looks like, drawn apart from
what happens in it.

A `Style` fixes the look of every surface (background, floor, occluders, inner walls: a texture kind and two
colours), the balls' drawn shape, fill and colours, and the camera (contrast, brightness, per-frame sensor noise).
It comes from its own random stream, keyed by the scene's seed (`draw_style`), never from the physics stream: a
scene's trajectories are the same whatever its style, and a style is a pure function of its key.

Families (`STYLE_FAMILIES`): `plain` (no Style: physics.render's original look), `train` (what training draws
with video.physics_style=random) and `heldout` (never drawn in training: a test of transfer to an unseen look).
The two families share no texture kind, ball shape, ball fill, noise kind or contrast range (`FAMILIES`,
`CONTRAST`), so the held-out look is a genuine shift, not a recombination of seen parts:

    element       train                                          heldout
    background    flat, vgradient, lgradient, blobs, checker     stripes, grain, bricks
    floor         flat, vgradient, blobs                         planks, bricks
    occluders     flat, vgradient, lgradient, blobs, checker     stripes, grain, bricks, planks
    inner walls   flat, vgradient, blobs                         bricks, stripes
    ball shape    disc, square, triangle                         ring, diamond, plus
    ball fill     solid, shaded                                  striped, two_tone
    camera noise  none, gauss (sigma .01-.03)                    gauss_strong (.04-.06), flicker (per-frame gain)
    contrast      0.8-1.25                                       0.6-0.78

(vgradient / lgradient: vertical / linear gradients at a random angle; blobs: smooth value noise; checker: coarse
cells; stripes: period ~3-5 px at 32 px; grain: a static pixel-scale noise texture.) Shared by both: colour draws
(ball hues keep physics' train / test halves of the hue sextants, whatever the family), brightness (+-0.08) and
the balls' drawn size.

Sizes: a ball's collision radius is physics (drawn by the physics stream, as in the plain look); the style scales
only the drawn shape's half-height within it (`extent`, 0.85-1): a square's or triangle's base and a diamond's
tip sit where the disc's bottom would, so a style never makes a ball overlap the floor or a wall.

Noise: drawn per frame from (the style's noise seed, frame index). The videos of one scene (a quadruplet's four)
get the same noise at the same frame, so a spliced frame is still a frame of a possible video, and the noise does
not give a splice away. Textures are functions of world coordinates, so a scene looks the same at 32 or 64 px.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from openjepa.data.physics_colours import (background_colours, ball_colour, luminance, occluder_colour, pixel_grid,
                                            to_uint8)

STYLE_FAMILIES = ("plain", "train", "heldout")
STYLE_STREAM = 31  # appended to a scene's key: the style's random stream, apart from every physics stream
FAMILIES = {
    "train": {"background": ("flat", "vgradient", "lgradient", "blobs", "checker"),
              "floor": ("flat", "vgradient", "blobs"),
              "occluder": ("flat", "vgradient", "lgradient", "blobs", "checker"),
              "wall": ("flat", "vgradient", "blobs"),
              "shape": ("disc", "square", "triangle"),
              "fill": ("solid", "shaded"),
              "noise": ("none", "gauss")},
    "heldout": {"background": ("stripes", "grain", "bricks"),
                "floor": ("planks", "bricks"),
                "occluder": ("stripes", "grain", "bricks", "planks"),
                "wall": ("bricks", "stripes"),
                "shape": ("ring", "diamond", "plus"),
                "fill": ("striped", "two_tone"),
                "noise": ("gauss_strong", "flicker")},
}
CONTRAST = {"train": (0.8, 1.25), "heldout": (0.6, 0.78)}
SIGMA = {"none": (0.0, 0.0), "gauss": (0.01, 0.03), "gauss_strong": (0.04, 0.06), "flicker": (0.015, 0.03)}
FLICKER = 0.08  # flicker: each frame's gain is 1 +- up to this
EXTENT = (0.85, 1.0)  # drawn half-height / collision radius
BRIGHTNESS = 0.08


@dataclass
class Look:
    """One surface's look: `pattern` in [0, 1] mixes colour c1 (0) and c2 (1)."""
    kind: str
    c1: np.ndarray  # (3,)
    c2: np.ndarray  # (3,)
    params: dict = field(default_factory=dict)

    def paint(self, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """World coordinates X, Y (H, W) -> colours (H, W, 3)."""
        p = pattern(self.kind, self.params, X, Y)[..., None]
        return self.c1 * (1 - p) + self.c2 * p


def _smooth(t: np.ndarray) -> np.ndarray:
    return t * t * (3 - 2 * t)


def pattern(kind: str, q: dict, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Texture `kind` with parameters q at world coordinates X, Y (H, W) (x right, y up, the unit square) ->
    (H, W) in [0, 1]."""
    if kind == "flat":
        return np.zeros_like(X)
    if kind == "vgradient":
        return Y.copy()
    if kind == "lgradient":
        return np.clip(0.5 + (X - 0.5) * np.cos(q["angle"]) + (Y - 0.5) * np.sin(q["angle"]), 0, 1)
    if kind == "blobs":  # value noise: a random lattice, interpolated smoothly
        g = q["grid"]  # (n + 1, n + 1)
        n = g.shape[0] - 1
        gx, gy = np.clip(X, 0, 1) * n, np.clip(Y, 0, 1) * n
        i, j = np.minimum(gx.astype(int), n - 1), np.minimum(gy.astype(int), n - 1)
        fx, fy = _smooth(gx - i), _smooth(gy - j)
        top = g[j + 1, i] * (1 - fx) + g[j + 1, i + 1] * fx
        bot = g[j, i] * (1 - fx) + g[j, i + 1] * fx
        return bot * (1 - fy) + top * fy
    if kind == "checker":
        n = q["cells"]
        return ((np.floor(X * n + q["ox"]) + np.floor(Y * n + q["oy"])) % 2).astype(np.float64)
    if kind == "stripes":
        u = X * np.cos(q["angle"]) + Y * np.sin(q["angle"])
        return np.clip(0.5 + 1.5 * np.sin(2 * np.pi * q["freq"] * u + q["phase"]), 0, 1)
    if kind == "grain":  # a static texture at about the pixel scale of a 32 px frame
        g = q["grid"]  # (L, L)
        L = g.shape[0]
        return g[np.clip((Y * L).astype(int), 0, L - 1), np.clip((X * L).astype(int), 0, L - 1)]
    if kind == "bricks":  # mortar lines (1) between bricks of slightly varying shade; rows offset by half a brick
        h, w, m = q["h"], q["w"], q["mortar"]
        row = np.floor(Y / h)
        xs = X + q["ox"] + (row % 2) * w / 2
        col = np.floor(xs / w)
        mortar = ((xs % w) < m) | ((Y % h) < m)
        shade = q["jitter"][(row % 8).astype(int), (col % 8).astype(int)]
        return np.where(mortar, 1.0, 0.3 * shade)
    if kind == "planks":  # boards side by side: dark seams (1) and a faint wavy grain
        w = q["w"]
        seam = ((X + q["ox"]) % w) < q["seam"]
        grain = 0.5 + 0.5 * np.sin(2 * np.pi * (Y * q["freq"] + 0.3 * np.sin(2 * np.pi * 2 * X + q["phase"])))
        return np.where(seam, 1.0, 0.3 * grain)
    raise ValueError(f"unknown texture {kind!r}")


def shape_sdf(shape: str, dx: np.ndarray, dy: np.ndarray, e: float) -> np.ndarray:
    """Signed distance (world units, negative inside) from a ball shape of half-height e centred at the origin,
    at offsets dx, dy. Every shape's lowest point is at -e, where a disc of radius e touches the floor."""
    ax, ay = np.abs(dx), np.abs(dy)
    if shape == "disc":
        return np.hypot(dx, dy) - e
    if shape == "square":
        return np.maximum(ax, ay) - e
    if shape == "triangle":  # base at -e, apex at +e, half-base e
        return np.maximum(-dy - e, (2 * ax + dy - e) / np.sqrt(5.0))
    if shape == "diamond":
        return (ax + ay - e) / np.sqrt(2.0)
    if shape == "ring":  # outer radius e, hole of radius 0.4 e
        return np.abs(np.hypot(dx, dy) - 0.7 * e) - 0.3 * e
    if shape == "plus":
        a = 0.36 * e
        return np.minimum(np.maximum(ax - e, ay - a), np.maximum(ax - a, ay - e))
    raise ValueError(f"unknown shape {shape!r}")


def fill_colour(fill: str, dx: np.ndarray, dy: np.ndarray, e: float, c: np.ndarray, c2: np.ndarray,
                px: float) -> np.ndarray:
    """A ball's colour at offsets dx, dy (T, H, W) from its centre -> (T, H, W, 3). The pattern moves with the
    ball (it does not turn: nothing in the physics says how fast a thrown ball spins)."""
    if fill == "solid":
        return np.broadcast_to(c, (*dx.shape, 3))
    if fill == "shaded":  # lit from the upper left
        f = np.clip(1.2 - 0.55 * np.hypot(dx + 0.35 * e, dy - 0.35 * e) / e, 0.55, 1.2)
        return np.clip(c * f[..., None], 0, 1)
    if fill == "striped":
        p = np.clip(0.5 + 1.5 * np.sin(2 * np.pi * dy / e), 0, 1)[..., None]
        return c * (1 - p) + 0.45 * c * p
    if fill == "two_tone":
        p = np.clip(dx / px + 0.5, 0, 1)[..., None]
        return c * (1 - p) + c2 * p
    raise ValueError(f"unknown fill {fill!r}")


@dataclass
class Style:
    """A scene's look (see the module docstring). Occluder k of a scene wears occluders[k % len(occluders)]."""
    family: str
    background: Look
    floor: Look
    occluders: tuple[Look, ...]
    wall: Look
    shape: str
    fill: str
    extent: float  # drawn half-height / collision radius
    ball_col: np.ndarray  # (2, 3): ball b wears ball_col[b % 2]
    ball_col2: np.ndarray  # (2, 3): the second colour of a two_tone fill
    noise: str
    sigma: float
    contrast: float
    brightness: float
    noise_seed: int

    def ids(self) -> dict[str, tuple[str, ...]]:
        """The family-specific choices this style made, by FAMILIES key."""
        return {"background": (self.background.kind,), "floor": (self.floor.kind,),
                "occluder": tuple(o.kind for o in self.occluders), "wall": (self.wall.kind,),
                "shape": (self.shape,), "fill": (self.fill,), "noise": (self.noise,)}

    def render(self, scene, pos: np.ndarray, present: np.ndarray, size: int, channels: int) -> np.ndarray:
        """physics.render with this look: pos (T, nb, 2), present (T, nb) -> uint8 (T, size, size, channels).
        Draw order as physics.render (background, walls, balls, occluders, floor), then contrast and brightness,
        then the frame's sensor noise."""
        T, nb = present.shape
        px, X, Y = pixel_grid(size)  # X, Y (H, W): pixel centres in world units
        base = self.background.paint(X, Y)  # (H, W, 3)
        if scene.walls:
            wall = self.wall.paint(X, Y)
            for xc, hw, top, _ in scene.walls:
                m = (np.abs(X - xc) <= hw) & (Y <= top)
                base[m] = wall[m]
        frames = np.repeat(base[None], T, axis=0)  # (T, H, W, 3)
        for b in range(nb):
            dx = X[None] - pos[:, b, 0, None, None]  # (T, H, W)
            dy = Y[None] - pos[:, b, 1, None, None]
            e = float(scene.ball_r[b]) * self.extent
            alpha = np.clip(-shape_sdf(self.shape, dx, dy, e) / px + 0.5, 0.0, 1.0) * present[:, b, None, None]
            col = fill_colour(self.fill, dx, dy, e, self.ball_col[b % 2], self.ball_col2[b % 2], px)
            frames = frames * (1 - alpha[..., None]) + alpha[..., None] * col
        for k, (x0, x1, y0, y1, _) in enumerate(scene.occluders):
            m = (X >= x0) & (X <= x1) & (Y >= y0) & (Y <= y1)
            frames[:, m] = self.occluders[k % len(self.occluders)].paint(X, Y)[m]
        floor = Y <= scene.floor_y
        frames[:, floor] = self.floor.paint(X, Y)[floor]
        frames = (frames - 0.5) * self.contrast + 0.5 + self.brightness
        if self.noise != "none":
            for t in range(T):  # seeded by (scene, frame index): every video of the scene gets this frame's noise
                r = np.random.default_rng([self.noise_seed, t])
                if self.noise == "flicker":
                    frames[t] = frames[t] * (1 + r.uniform(-FLICKER, FLICKER))
                frames[t] += self.sigma * r.standard_normal((size, size, 3))
        frames = np.clip(frames, 0.0, 1.0)
        return to_uint8(frames, channels)


def _contrasting(rng: np.random.Generator, c: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """c moved by lo..hi in every channel, towards mid grey (so it stays a visible step inside [0, 1])."""
    return np.clip(c + (-1.0 if luminance(c) > 0.5 else 1.0) * rng.uniform(lo, hi), 0, 1)


def _look(rng: np.random.Generator, kinds: tuple[str, ...], c1: np.ndarray) -> Look:
    """A surface of one of `kinds` with base colour c1 and a second colour a small step away from it."""
    kind = kinds[int(rng.integers(len(kinds)))]
    strong = kind in ("checker", "bricks", "planks")  # lines and cells need a visible step; smooth textures less
    c2 = _contrasting(rng, c1, 0.1 if strong else 0.06, 0.2 if strong else 0.15)
    q: dict = {}
    if kind == "lgradient":
        q = {"angle": float(rng.uniform(0, 2 * np.pi))}
    elif kind == "blobs":
        q = {"grid": rng.random((int(rng.integers(3, 7)) + 1,) * 2)}
    elif kind == "checker":
        q = {"cells": int(rng.integers(3, 6)), "ox": float(rng.random()), "oy": float(rng.random())}
    elif kind == "stripes":
        q = {"angle": float(rng.uniform(0, np.pi)), "freq": float(rng.uniform(6.0, 10.0)),
             "phase": float(rng.uniform(0, 2 * np.pi))}
    elif kind == "grain":
        q = {"grid": rng.random((48, 48))}
    elif kind == "bricks":
        h = float(rng.uniform(0.07, 0.1))
        q = {"h": h, "w": h * float(rng.uniform(1.8, 2.6)), "mortar": 1.0 / 32, "ox": float(rng.random()),
             "jitter": rng.random((8, 8))}
    elif kind == "planks":
        q = {"w": float(rng.uniform(0.1, 0.18)), "seam": 1.0 / 32, "ox": float(rng.random()),
             "freq": float(rng.uniform(15.0, 25.0)), "phase": float(rng.uniform(0, 2 * np.pi))}
    return Look(kind, c1, c2, q)


def draw_style(family: str, key: tuple[int, ...], split: str = "train") -> Style | None:
    """The style of `family` for the scene keyed `key` (e.g. (seed,) or (seed, property)): None for plain. Drawn from
    default_rng([*key, STYLE_STREAM]) alone, the same number of draws whatever the scene holds, so it never touches
    (or depends on) the physics. Ball hues from `split`'s halves of the hue sextants (physics_colours.ball_colour)."""
    if family not in STYLE_FAMILIES:
        raise ValueError(f"unknown physics style {family!r}; choose from {', '.join(STYLE_FAMILIES)}")
    if family == "plain":
        return None
    ids = FAMILIES[family]
    rng = np.random.default_rng([*key, STYLE_STREAM])
    bg, floor_c = background_colours(rng)
    background = _look(rng, ids["background"], bg)
    floor = _look(rng, ids["floor"], floor_c)
    occluders = tuple(_look(rng, ids["occluder"], occluder_colour(rng, bg)) for _ in range(2))
    wall = _look(rng, ids["wall"], occluder_colour(rng, bg))
    # the balls must show against the background's two colours and the occluders they pass
    avoid = [background.c1, background.c2, *(o.c1 for o in occluders)]
    ball_col = np.array([ball_colour(rng, split, avoid) for _ in range(2)])
    ball_col2 = np.array([ball_colour(rng, split, avoid) for _ in range(2)])
    shape = ids["shape"][int(rng.integers(len(ids["shape"])))]
    fill = ids["fill"][int(rng.integers(len(ids["fill"])))]
    noise = ids["noise"][int(rng.integers(len(ids["noise"])))]
    return Style(family, background, floor, occluders, wall, shape, fill, float(rng.uniform(*EXTENT)), ball_col,
                 ball_col2, noise, float(rng.uniform(*SIGMA[noise])), float(rng.uniform(*CONTRAST[family])),
                 float(rng.uniform(-BRIGHTNESS, BRIGHTNESS)), int(rng.integers(2**32)))
