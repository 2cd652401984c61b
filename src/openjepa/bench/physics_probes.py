"""Linear probes for `openjepa bench physics`: ridge regression (R^2 on held-out videos) of the ball's position
and velocity at each tubelet slice (ball centre inside the frame), from a frozen encoder's tokens of that slice or
from the slice's raw pixels."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from openjepa.data.physics import train_video
from openjepa.data.transforms import normalize

PROBE_SEED = 900_000_000  # probe videos: training-range seeds far above any training set, test hues


def probe_data(n: int, cfg, style: str = "plain") -> tuple[torch.Tensor, np.ndarray]:
    """n single-ball videos (first video.frames frames) in the look family `style`, uint8 (n, C, F, H, W), and per
    tubelet slice the ball's state (x, y, vx, vy) at the slice's first frame: (n, S, 4)."""
    F, t = cfg.video.frames, cfg.video.tubelet
    xs, ys, seed = [], [], PROBE_SEED
    while len(xs) < n:
        frames, pos, vel = train_video(seed, F, cfg.data.img_size, cfg.data.channels, split="test", style=style)
        seed += 1
        if pos.shape[1] != 1:
            continue
        xs.append(frames.transpose(3, 0, 1, 2))
        ys.append(np.concatenate([pos[::t, 0], vel[::t, 0]], 1))
    return torch.from_numpy(np.stack(xs)), np.stack(ys)


@torch.no_grad()
def slice_features(encoder, x: torch.Tensor, grid: tuple[int, int, int], batch: int = 64) -> torch.Tensor:
    """Frozen tokens of each time slice, concatenated over the slice's h*w positions: (n, S, h*w*D)."""
    encoder.eval()
    out = []
    for i in range(0, x.shape[0], batch):
        z = encoder(normalize(x[i:i + batch])).float()  # (b, N, D)
        out.append(z.view(z.shape[0], grid[0], -1))
    return torch.cat(out)


def pixel_slices(x: torch.Tensor, tubelet: int) -> torch.Tensor:
    """Raw pixels of each slice: (n, C, F, H, W) -> (n, S, C*t*H*W)."""
    n, C, F, H, W = x.shape
    return normalize(x).view(n, C, F // tubelet, tubelet, H, W).permute(0, 2, 1, 3, 4, 5).reshape(n, F // tubelet, -1)


def ridge_r2(z: torch.Tensor, y: torch.Tensor, n_train: int) -> float:
    """Ridge regression fitted on the first n_train rows (L2 strength picked on a validation tenth of them),
    R^2 (averaged over target columns) on the rest. Features standardised with the training statistics."""
    z, y = z.double(), y.double()
    mu, sd = z[:n_train].mean(0), z[:n_train].std(0) + 1e-6
    z = (z - mu) / sd
    ym = y[:n_train].mean(0)
    y = y - ym

    def fit(a, b, lam):  # primal or dual form, whichever system is smaller
        n, d = a.shape
        if n < d:
            return a.T @ torch.linalg.solve(a @ a.T + lam * n * torch.eye(n, dtype=a.dtype), b)
        return torch.linalg.solve(a.T @ a + lam * n * torch.eye(d, dtype=a.dtype), a.T @ b)

    def r2(pred, b):
        return float((1 - ((pred - b) ** 2).sum(0) / ((b - b.mean(0)) ** 2).sum(0).clamp_min(1e-12)).mean())

    n_val = max(n_train // 10, 1)
    tr, va = slice(0, n_train - n_val), slice(n_train - n_val, n_train)
    lam = max((1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0), key=lambda l: r2(z[va] @ fit(z[tr], y[tr], l), y[va]))
    w = fit(z[:n_train], y[:n_train], lam)
    return r2(z[n_train:] @ w, y[n_train:])


def probe_rows(models: dict[str, Any], cfg, x: torch.Tensor, states: np.ndarray) -> list[dict[str, Any]]:
    """R^2 of position and velocity probes per feature kind on `probe_data` videos x and their states; the first
    80% of the videos fit, the rest score; only slices whose ball centre is inside the frame count."""
    n_videos = x.shape[0]
    n_train = int(0.8 * n_videos)
    inside = torch.from_numpy((states[..., 0] > 0) & (states[..., 0] < 1) & (states[..., 1] < 1))  # (n, S)
    y = torch.from_numpy(states)[inside]  # (rows, 4), video-major: training videos' rows first
    n_rows = int(inside[:n_train].sum())
    feats = {"raw_pixels": pixel_slices(x, cfg.video.tubelet)}
    for name, m in models.items():
        feats[name] = slice_features(m.eval_encoder(), x, m.grid)
    rows = []
    for name, f in feats.items():
        z = f[inside]  # (rows, features)
        for target, cols in (("position", slice(0, 2)), ("velocity", slice(2, 4))):
            rows.append({"model": name, "probe": target, "r2": ridge_r2(z, y[:, cols], n_rows)})
    return rows
