"""Colours of the procedural physics videos, shared by the plain look (data/physics.py) and the style families
(data/physics_styles.py): luminance, background and floor colours, ball colours by train/test hue split, occluder
colours; and what both renderers share: the pixel grid in world units and the float RGB -> uint8 grey or RGB step."""

from __future__ import annotations

import colorsys

import numpy as np

LUMA = np.array([0.299, 0.587, 0.114])


def luminance(c: np.ndarray) -> float:
    return float(np.asarray(c) @ LUMA)


def background_colours(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A dark or light background colour and a floor colour a clear luminance step from it -> (bg (3,), floor (3,))."""
    bg = rng.uniform(0.05, 0.45, 3) if rng.random() < 0.5 else rng.uniform(0.55, 0.95, 3)
    floor = np.clip(bg + (0.35 if luminance(bg) < 0.5 else -0.35) * rng.uniform(0.7, 1.0), 0, 1)
    return bg, floor


def ball_colour(rng: np.random.Generator, split: str, avoid: list[np.ndarray], min_diff: float = 0.15) -> np.ndarray:
    """A saturated ball colour whose hue lies in the split's half of a hue sextant, and whose luminance
    differs from every colour in `avoid` by at least `min_diff` (so it also shows in grey)."""
    for i in range(400):
        sextant = rng.integers(6)
        half = rng.uniform(0.0, 0.5) + (0.5 if split == "test" else 0.0)
        h = (sextant + half) / 6.0
        c = np.array(colorsys.hsv_to_rgb(h, rng.uniform(0.6, 1.0), rng.uniform(0.5, 1.0)))
        if all(abs(luminance(c) - luminance(a)) >= min_diff * (1 - i / 400) for a in avoid):
            return c  # the contrast asked for is relaxed gradually when the scene leaves little room
    return c


def occluder_colour(rng: np.random.Generator, bg: np.ndarray) -> np.ndarray:
    """An occluder colour whose luminance differs from the background's by more than 0.2."""
    for _ in range(100):
        c = rng.uniform(0, 1, 3)
        if abs(luminance(c) - luminance(bg)) > 0.2:
            return c
    return 1.0 - bg


def pixel_grid(size: int) -> tuple[float, np.ndarray, np.ndarray]:
    """A size x size frame over the unit square -> (pixel side px, X, Y (H, W) pixel centres: x right, y up)."""
    px = 1.0 / size
    centres = (np.arange(size) + 0.5) * px
    X = centres[None, :].repeat(size, 0)  # (H, W)
    Y = (1.0 - centres)[:, None].repeat(size, 1)  # row 0 is the top
    return px, X, Y


def to_uint8(frames: np.ndarray, channels: int) -> np.ndarray:
    """RGB frames (T, H, W, 3) in [0, 1] -> uint8 (T, H, W, channels); grey (1) is the luminance (LUMA)."""
    if channels == 1:
        frames = frames @ LUMA[:, None]  # (T, H, W, 1)
    elif channels != 3:
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    return np.round(frames * 255).astype(np.uint8)
