"""Surprise of a video world model: violation-of-expectation scores (Garrido et al. 2025).

A model trained on clips of W = video.frames frames sees windows of W frames sliding over the video (stride =
one tubelet): in each, the first C = context frames are the context and the model predicts the rest. The
window's error is the mean L1 distance between predicted and target-encoder tokens of the predicted frames
(VJEPA; the pixel twin VPixel uses predicted vs true pixels): `method.future_error(x, C) -> (B, S)` per
predicted tubelet slice.

    video_surprise(method, x uint8 (C, T, H, W), context) ->
        {"surprise_mean": mean window error, "surprise_max": largest window error,
         "per_frame": [T values]: frame f's error averaged over every window that predicts it (contexts
                      ending 1 to W - C frames before it, so a ball hidden for a while is still remembered by
                      the longer horizons; None for the first C frames, which no window predicts),
         "windows": [window errors], "window_starts": [...]}

Videos shorter than W are padded with their last frame (per_frame still has one value per real frame).

`normalize_surprise(result, "zscore")` maps one video's numbers through one affine map: minus the mean, over the
standard deviation, of its own per-frame curve (every predicted frame). A video's look (texture, noise, contrast)
moves the whole error curve up or down and stretches it; the z-scored curve says how far each moment stands out
from that video's own typical level, so peaks can be compared between videos of different looks. The whole curve
is used, not the opening frames: it is the steadiest estimate (every predicted frame, not the W - C of one window)
and does not assume the event comes late. The z-scored surprise_mean is then about 0 by construction; the
z-scored surprise_max is the peak's height in standard deviations.

`Ensemble([m1, m2, ...])` scores with several independently trained models of the same clip geometry: each window's
error is the mean of the members' errors (`openjepa surprise CKPT --ensemble CKPT2`; `bench physics` scores its
jepa and pixel models this way). Members differ in which scenes they extrapolate badly, so the mean is steadier than
any one of them.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from openjepa.config import context_frames_error
from openjepa.data.transforms import normalize
from openjepa.data.video import pad_frames
from openjepa.eval.features import autocast


class Ensemble(torch.nn.Module):
    """Several video world models as one scorer: future_error is the mean of the members' (B, S) errors. The
    members must share the clip geometry (clip length, tubelet, context, frame size, channels)."""

    GEOMETRY = (("video", "frames"), ("video", "tubelet"), ("video", "context_frames"), ("data", "img_size"),
                ("data", "channels"))

    def __init__(self, members: list) -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one model")
        ref = members[0].cfg
        for i, m in enumerate(members[1:], 1):
            for sec, key in self.GEOMETRY:
                a, b = getattr(getattr(ref, sec), key), getattr(getattr(m.cfg, sec), key)
                if a != b:
                    raise ValueError(f"ensemble member {i} has {sec}.{key}={b}, member 0 has {a}: members must "
                                     "share the clip geometry")
        self.members = torch.nn.ModuleList(members)
        self.cfg = ref

    @torch.no_grad()
    def future_error(self, x: torch.Tensor, context_frames: int) -> torch.Tensor:
        return torch.stack([m.future_error(x, context_frames).float() for m in self.members]).mean(0)


def window_starts(T: int, window: int, stride: int) -> list[int]:
    """Starts of the sliding windows over T >= window frames; the last window always ends at frame T."""
    starts = list(range(0, T - window + 1, stride))
    if starts[-1] != T - window:
        starts.append(T - window)
    return starts


@torch.no_grad()
def video_surprise(method, x: torch.Tensor, context: int | None = None, stride: int | None = None,
                   device: torch.device | str = "cpu", precision: str = "fp32", batch_size: int = 32
                   ) -> dict[str, Any]:
    cfg = method.cfg
    W, t = cfg.video.frames, cfg.video.tubelet
    C = cfg.video.context_frames if context is None else int(context)
    err = context_frames_error(C, W, t)
    if err:
        raise ValueError(f"--context {err}")
    stride = t if stride is None else stride
    T = x.shape[1]
    xp = pad_frames(x, W)
    starts = window_starts(xp.shape[1], W, stride)
    method.eval()
    errs = []
    for i in range(0, len(starts), batch_size):
        clips = torch.stack([xp[:, s:s + W] for s in starts[i:i + batch_size]])  # (b, C, W, H, W)
        clips = normalize(clips).to(device)
        with autocast(torch.device(device), precision):
            errs.append(method.future_error(clips, C).float().cpu())  # (b, S)
    err = torch.cat(errs)  # (n_windows, S)
    # per frame: the mean error of the predicted slice holding the frame, over every window predicting it. The
    # shortest horizon alone forgets: its context can lie wholly inside an occlusion, so a ball that vanished
    # behind an occluder is no surprise to it (checked on validation quadruplets: the impossible-minus-possible
    # excess then peaks within 3 frames of the violation in 92-100% of them, against 33-92% at the shortest horizon)
    tot = [0.0] * xp.shape[1]
    cnt = [0] * xp.shape[1]
    for s, e in zip(starts, err):
        for f in range(s + C, s + W):
            tot[f] += float(e[(f - s - C) // t])
            cnt[f] += 1
    per_frame = [tot[f] / cnt[f] if cnt[f] else None for f in range(T)]
    win = err.mean(1)
    return {"surprise_mean": float(win.mean()), "surprise_max": float(win.max()), "per_frame": per_frame,
            "windows": [float(w) for w in win], "window_starts": starts}


NORMALIZE = ("none", "zscore")


def normalize_surprise(r: dict[str, Any], method: str = "none") -> dict[str, Any]:
    """A video_surprise / score_videos result with its per_frame, windows and summary numbers z-scored against the
    mean and (population) standard deviation of its own per-frame curve; the raw numbers move to r["raw"] and the
    statistics to r["normalization"]. "none" returns r unchanged. A flat curve (std 0) maps to zeros."""
    if method not in NORMALIZE:
        raise ValueError(f"normalize must be one of {', '.join(NORMALIZE)}, got {method!r}")
    if method == "none":
        return r
    vals = torch.tensor([v for v in r["per_frame"] if v is not None], dtype=torch.float64)
    mu = float(vals.mean())
    sd = float(vals.std(unbiased=False)) if len(vals) > 1 else 0.0
    div = sd if sd > 0 else 1.0

    def z(v):
        return None if v is None else (v - mu) / div

    out = dict(r)
    out["raw"] = {k: r[k] for k in ("surprise_mean", "surprise_max", "per_frame", "windows") if k in r}
    out["normalization"] = {"method": method, "mean": mu, "std": sd}
    out["per_frame"] = [z(v) for v in r["per_frame"]]
    out["surprise_mean"], out["surprise_max"] = z(r["surprise_mean"]), z(r["surprise_max"])
    if "windows" in r:
        out["windows"] = [z(v) for v in r["windows"]]
    return out


def _draw_curves(ax, results: list[dict[str, Any]], marks: list[int | None] | None) -> None:
    for i, r in enumerate(results):
        ys = [math.nan if v is None else v for v in r["per_frame"]]
        name = Path(str(r.get("name", r.get("path", i)))).name
        style = {"ls": ":", "marker": "x", "ms": 4} if name.startswith("impossible") else {"marker": "o", "ms": 2}
        line, = ax.plot(range(len(ys)), ys, label=name, **style)
        if marks and marks[i] is not None:
            ax.axvline(marks[i], color=line.get_color(), ls="--", lw=1)
    ax.legend(fontsize=7)


def plot_surprise(results: list[dict[str, Any]], path: str | Path, marks: list[int | None] | None = None,
                  title: str = "surprise vs time", excess: list[dict[str, Any]] | None = None) -> Path:
    """Per-frame surprise of each result ({"path"/"name", "per_frame"}) on one figure; `marks` draws a
    dashed line at a frame per result (e.g. the violation). `excess` (same form, e.g. an impossible video's
    per-frame surprise minus that of the possible video it starts as) adds a second panel below, with `marks`'
    first non-None frame drawn on it."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 5.6 if excess else 3.6))
    axes = fig.subplots(2 if excess else 1, 1, sharex=True, squeeze=False)[:, 0]
    _draw_curves(axes[0], results, marks)
    axes[0].set_ylabel("prediction error")
    axes[0].set_title(title)
    if excess:
        mark = next((m for m in marks or [] if m is not None), None)
        _draw_curves(axes[1], excess, None)
        axes[1].axhline(0.0, color="grey", lw=0.8)
        if mark is not None:
            axes[1].axvline(mark, color="black", ls="--", lw=1)
        axes[1].set_ylabel("excess error")
    axes[-1].set_xlabel("frame")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def score_videos(checkpoint: str | Path | list[str | Path], videos: list[str], context: int | None = None,
                 fps: float | None = None, device: str = "cpu", fit: str = "crop", normalize: str = "none"
                 ) -> list[dict[str, Any]]:
    """`openjepa surprise`: load a video checkpoint (several: an Ensemble of them), bring each video to the model
    input (`fit`: crop or letterbox, see data/video.py), score it, and normalise its numbers (`normalize`: none or
    zscore, see normalize_surprise; zscore keeps the raw numbers under "raw")."""
    if normalize not in NORMALIZE:
        raise ValueError(f"normalize must be one of {', '.join(NORMALIZE)}, got {normalize!r}")
    from openjepa.data.video import load_video
    from openjepa.train.checkpoint import load_method

    members = []
    for ckpt in checkpoint if isinstance(checkpoint, (list, tuple)) else [checkpoint]:
        m, c, _ = load_method(ckpt, device)
        if not m.is_video:
            raise ValueError(f"{ckpt}: method {c.train.method!r} is not a video world model (vjepa, vpixel)")
        members.append(m)
    method = members[0] if len(members) == 1 else Ensemble(members)
    cfg = method.cfg
    out = []
    for v in videos:
        x = load_video(v, cfg.data.img_size, cfg.data.channels, fps=fps, fit=fit)
        r = video_surprise(method, x, context, device=device)
        r = {"path": str(v), "surprise_mean": r["surprise_mean"], "surprise_max": r["surprise_max"],
             "per_frame": r["per_frame"]}
        out.append(normalize_surprise(r, normalize))
    return out
