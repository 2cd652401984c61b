"""User videos -> model input: `.npy` arrays, folders of frames, and video files (.mp4, .avi, ...).

    load_video(path, size, channels, fps=None, fit="crop") -> uint8 (C, T, size, size)

Accepted inputs
    .npy             uint8 (T, H, W) or (T, H, W, C) with C in 1, 3, 4; float arrays are read as [0, 1]
                     intensities (scaled by 255), other integer types are clipped to [0, 255]
    folder           image files (.png .jpg .jpeg .bmp .gif .tif .tiff .webp) sorted by file name, one per frame
    video file       .mp4 .avi .mov .mkv .webm .m4v .mpg .mpeg, decoded with PyAV (the `av` wheel bundles FFmpeg)

Rules that bring any video to the model (the same as for images, data/transforms.py:to_model_input)
    channels   RGB -> grey by luminance (0.299, 0.587, 0.114); grey -> RGB by repetition; alpha dropped
    size       fit="crop" (the default): the short side is resized to `size` (bilinear, antialiased), then the
               centre is cropped square (a wide clip loses its left and right edges).
               fit="letterbox": the long side is resized to `size` and the rest is padded, centred, with the
               clip's border colour (the mean of its frames' outermost rows and columns, one colour for the
               whole clip so the padding never flickers): nothing is cut off, objects get smaller.
    frame rate kept as stored, unless `fps` is given and the source's rate is known (video files): frames are
               then resampled to `fps` by taking the nearest earlier source frame (drops or repeats frames).
               `.npy` arrays and folders of frames carry no timestamps: `fps` is refused for them.
    length     kept; callers that need a minimum (surprise windows) pad by repeating the last frame
A file that cannot be used (missing, unreadable, wrong rank, no frames, bad channel count) raises ValueError
(or FileNotFoundError) naming it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from openjepa.data.transforms import check_channels, check_size, convert_channels, resize, to_model_input

FITS = ("crop", "letterbox")
FRAME_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
VIDEO_EXTS = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"}


def _as_uint8(a: np.ndarray, path: Path) -> np.ndarray:
    if a.dtype == np.uint8:
        return a
    if np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all():
            raise ValueError(f"{path}: the video holds NaN or infinite values")
        return np.round(np.clip(a, 0.0, 1.0) * 255).astype(np.uint8)
    if np.issubdtype(a.dtype, np.integer) or a.dtype == bool:
        return np.clip(a.astype(np.int64), 0, 255).astype(np.uint8)
    raise ValueError(f"{path}: unsupported array dtype {a.dtype}")


def _thwc(a: np.ndarray, path: Path) -> np.ndarray:
    """(T, H, W) or (T, H, W, C) -> (T, H, W, C) with C in 1, 3, 4; anything else is an error naming path."""
    if a.ndim == 3:
        a = a[..., None]
    if a.ndim != 4:
        raise ValueError(f"{path}: expected a video of shape (T, H, W) or (T, H, W, C), got shape {a.shape}")
    if 0 in a.shape:
        raise ValueError(f"{path}: the video is empty (shape {a.shape})")
    if a.shape[-1] not in (1, 3, 4):
        raise ValueError(f"{path}: expected 1, 3 or 4 channels in the last axis, got shape {a.shape}")
    return a


def read_npy(path: Path) -> np.ndarray:
    try:
        a = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: not a readable .npy array ({e})") from None
    return _thwc(_as_uint8(a, path), path)


def read_frames_folder(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    files = sorted(p for p in path.iterdir() if p.suffix.lower() in FRAME_EXTS)
    if not files:
        raise ValueError(f"{path}: the folder holds no frame images ({', '.join(sorted(FRAME_EXTS))})")
    frames = []
    for f in files:
        try:
            with Image.open(f) as im:
                frames.append(np.asarray(im.convert("RGB")))
        except (OSError, UnidentifiedImageError) as e:
            raise ValueError(f"{f}: unreadable frame image ({e})") from None
    if len({fr.shape for fr in frames}) != 1:
        raise ValueError(f"{path}: frames differ in size: {sorted({fr.shape for fr in frames})}")
    return np.stack(frames)


def read_video_file(path: Path, fps: float | None = None) -> np.ndarray:
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ValueError(f"{path}: the file holds no video stream")
            stream = container.streams.video[0]
            frames, times = [], []
            for frame in container.decode(stream):
                frames.append(frame.to_ndarray(format="rgb24"))
                times.append(float(frame.time) if frame.time is not None else len(times))
            rate = float(stream.average_rate) if stream.average_rate else None
    except av.error.FFmpegError as e:
        raise ValueError(f"{path}: unreadable video file ({e})") from None
    if not frames:
        raise ValueError(f"{path}: the video has no frames")
    a = np.stack(frames)
    if fps and rate:
        t = np.asarray(times) - times[0]
        want = np.arange(0.0, t[-1] + 1e-9, 1.0 / fps)
        a = a[np.clip(np.searchsorted(t, want + 1e-6, side="right") - 1, 0, len(a) - 1)]
    return a


def read_video(path: str | Path, fps: float | None = None) -> np.ndarray:
    """Raw frames of any accepted input: uint8 (T, H, W, C), C in 1, 3, 4."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"no such video: {p}")
    if fps and (p.is_dir() or p.suffix.lower() == ".npy"):
        # ignoring it silently would score the video at a frame rate the user did not ask for
        raise ValueError(f"{p}: --fps needs timestamps, which .npy arrays and folders of frames do not have; "
                         "resample the frames yourself (e.g. keep every 2nd frame) or use a video file")
    if p.is_dir():
        return _thwc(read_frames_folder(p), p)
    ext = p.suffix.lower()
    if ext == ".npy":
        return read_npy(p)
    if ext in VIDEO_EXTS:
        return _thwc(read_video_file(p, fps), p)
    raise ValueError(f"{p}: unsupported video format {ext!r} (use .npy, a folder of frames, or "
                     f"{', '.join(sorted(VIDEO_EXTS))})")


def letterbox(x: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 frames (T, C, H, W) of one clip -> (T, C, size, size): the long side resized to `size` (bilinear,
    antialiased), the short side padded on both sides with the clip's border colour."""
    T, c, h, w = x.shape
    nh, nw = (size, max(1, round(w * size / h))) if h >= w else (max(1, round(h * size / w)), size)
    if (nh, nw) != (h, w):
        x = resize(x, (nh, nw), chunk=256)  # video frames can be large: a smaller chunk than for images
    if (nh, nw) == (size, size):
        return x.contiguous()
    border = torch.cat([x[:, :, 0], x[:, :, -1], x[:, :, :, 0], x[:, :, :, -1]], dim=2)  # (T, C, 2 nw + 2 nh)
    fill = border.float().mean(dim=(0, 2)).round().to(torch.uint8)  # (C,)
    out = fill.view(1, c, 1, 1).expand(T, c, size, size).clone()
    top, left = (size - nh) // 2, (size - nw) // 2
    out[:, :, top:top + nh, left:left + nw] = x
    return out


def load_video(path: str | Path, size: int, channels: int, fps: float | None = None, fit: str = "crop"
               ) -> torch.Tensor:
    """A video as model input: uint8 (C, T, size, size) (see the module docstring for the rules)."""
    if fit not in FITS:
        raise ValueError(f"fit must be one of {', '.join(FITS)}, got {fit!r}")
    a = read_video(path, fps)  # (T, H, W, C)
    x = torch.from_numpy(np.ascontiguousarray(a)).permute(0, 3, 1, 2)  # (T, C, H, W)
    if fit == "letterbox":
        check_size(size)
        check_channels(channels)
        x = letterbox(convert_channels(x, channels), size)
    else:
        x = to_model_input(x, size, channels)
    return x.permute(1, 0, 2, 3).contiguous()  # (C, T, size, size)


def pad_frames(x: torch.Tensor, frames: int) -> torch.Tensor:
    """x (C, T, H, W) with fewer than `frames` frames -> the last frame repeated up to `frames`."""
    if x.shape[1] >= frames:
        return x
    return torch.cat([x, x[:, -1:].expand(-1, frames - x.shape[1], -1, -1)], dim=1)


def list_videos(root: str | Path) -> list[Path]:
    """Videos in a folder: .npy and video files, and sub-folders of frames, sorted by path."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"no such folder of videos: {root}")
    out = [p for p in sorted(root.iterdir())
           if (p.is_file() and p.suffix.lower() in VIDEO_EXTS | {".npy"})
           or (p.is_dir() and any(f.suffix.lower() in FRAME_EXTS for f in p.iterdir()))]
    if not out:
        raise ValueError(f"{root}: no videos found (.npy, video files, or folders of frames)")
    return out


def load_video_clips(root: str | Path, size: int, channels: int, frames: int) -> torch.Tensor:
    """Every video under `root` cut into non-overlapping clips of `frames` frames (a shorter video gives one
    clip padded with its last frame): uint8 (N, C, frames, size, size), for training on user videos."""
    clips = []
    for p in list_videos(root):
        x = load_video(p, size, channels)
        if x.shape[1] < frames:
            clips.append(pad_frames(x, frames))
        for s in range(0, x.shape[1] - frames + 1, frames):
            clips.append(x[:, s:s + frames])
    return torch.stack(clips)
