"""Per-sample decoding + augmentation for streaming datasets, run in DataLoader workers.

    ImageDecoder(size, channels, crop_scale, ratio, flip)(source, u)          -> uint8 (C, size, size)
    ClipDecoder(size, channels, frames, crop_scale, ratio, flip)(source, u)   -> uint8 (C, frames, size, size)

`source` is a Path or the bytes of a shard member; `u` holds the sample's uniform draws in [0, 1) (`draws` of
them), so the output is a pure function of (file, u): the caller derives u from (seed, step, position).
The crop follows data/transforms.py:random_resized_crop, applied to the decoded image at its own resolution (as
torchvision's RandomResizedCrop does) instead of to a pre-resized square: area fraction s ~ U(crop_scale),
aspect ratio (width / height) log-uniform in `ratio`, a side that does not fit is clamped and the other grown to
keep the area, position uniform; the box is resampled to size x size with PIL's bilinear filter (antialiased
when shrinking). crop_scale=None gives the evaluation view: the centred square of the short side, no flip.
A clip uses one box and one flip for all its frames, and a random window of `frames` consecutive frames (a
shorter clip is padded with its last frame).

BAD_DATA lists the exceptions that mean "this file is unreadable" (the sample is replaced, see loader.py);
anything else is a bug and propagates.
"""

from __future__ import annotations

import io
import math
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from PIL import Image

# what PIL, numpy and PyAV raise on a corrupt, truncated or vanished file
BAD_DATA: tuple[type[BaseException], ...] = (OSError, ValueError, SyntaxError, EOFError, struct.error, zlib.error,
                                             Image.DecompressionBombError, av.error.FFmpegError)

Box = tuple[float, float, float, float]  # (left, top, right, bottom) in pixels


def crop_box(width: int, height: int, u: np.ndarray, scale: tuple[float, float] | None,
             ratio: tuple[float, float]) -> Box:
    """The random-resized-crop box from 4 uniforms u (see the module docstring); scale None -> centre square."""
    W, H = float(width), float(height)
    if scale is None:
        s = min(W, H)
        return ((W - s) / 2, (H - s) / 2, (W + s) / 2, (H + s) / 2)
    area = W * H * (scale[0] + (scale[1] - scale[0]) * u[0])
    r = math.exp(math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * u[1])
    w, h = math.sqrt(area * r), math.sqrt(area / r)
    if w > W:
        w, h = W, min(area / W, H)
    elif h > H:
        w, h = min(area / H, W), H
    x0, y0 = u[2] * (W - w), u[3] * (H - h)
    return (x0, y0, x0 + w, y0 + h)


def _resample(im: Image.Image, box: Box, size: int, flip: bool) -> np.ndarray:
    """The box of `im` resampled to (size, size), mirrored when `flip`: uint8 (size, size[, 3])."""
    out = im.resize((size, size), Image.BILINEAR, box=box)
    if flip:
        out = out.transpose(Image.FLIP_LEFT_RIGHT)
    return np.asarray(out, dtype=np.uint8)


def _chw(a: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, C) -> (C, H, W)."""
    return a[None] if a.ndim == 2 else a.transpose(2, 0, 1)


@dataclass(frozen=True)
class ImageDecoder:
    size: int
    channels: int = 3
    crop_scale: tuple[float, float] | None = (0.3, 1.0)  # None: centre square, no flip (evaluation)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip: bool = False
    draws = 5  # 4 for the box, 1 for the flip

    def __call__(self, source: Path | bytes, u: np.ndarray) -> np.ndarray:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as im:
            im = im.convert("L" if self.channels == 1 else "RGB")  # decodes fully: a truncated file fails here
        box = crop_box(im.width, im.height, u, self.crop_scale, self.ratio)
        flip = self.flip and self.crop_scale is not None and u[4] < 0.5
        return np.ascontiguousarray(_chw(_resample(im, box, self.size, flip)))


@dataclass(frozen=True)
class ClipDecoder:
    size: int
    frames: int
    channels: int = 3
    crop_scale: tuple[float, float] | None = None  # None: centre square (V-JEPA uses (0.3, 1.0))
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip: bool = False
    draws = 6  # 4 for the box, 1 for the flip, 1 for the window start

    def __call__(self, source: Path | bytes, u: np.ndarray) -> np.ndarray:
        if not isinstance(source, Path):
            raise TypeError("clips are read from files (a video folder), not from shard members")
        frames = _npy_window(source, self.frames, u[5]) if source.suffix.lower() == ".npy" \
            else _video_window(source, self.frames, u[5])
        mode = "L" if self.channels == 1 else "RGB"
        first = frames[0]
        box = crop_box(first.width, first.height, u, self.crop_scale, self.ratio)
        flip = self.flip and self.crop_scale is not None and u[4] < 0.5
        out = np.stack([_chw(_resample(f.convert(mode), box, self.size, flip)) for f in frames], axis=1)
        if out.shape[1] < self.frames:  # (C, T, S, S): pad a short clip with its last frame
            out = np.concatenate([out, np.repeat(out[:, -1:], self.frames - out.shape[1], axis=1)], axis=1)
        return np.ascontiguousarray(out)


def _window_start(total: int, frames: int, u: float) -> int:
    return min(int(u * max(total - frames + 1, 1)), max(total - frames, 0))


def _npy_window(path: Path, frames: int, u: float) -> list[Image.Image]:
    """A window of a .npy clip uint8 (T, H, W[, C]), read through a memory map (only the window is loaded)."""
    a = np.load(path, mmap_mode="r", allow_pickle=False)
    if a.ndim not in (3, 4) or 0 in a.shape or (a.ndim == 4 and a.shape[-1] not in (1, 3, 4)):
        raise ValueError(f"expected a clip of shape (T, H, W) or (T, H, W, C) with C in 1, 3, 4, got {a.shape}")
    if a.dtype != np.uint8:
        raise ValueError(f"expected a uint8 clip, got {a.dtype}")
    s = _window_start(a.shape[0], frames, u)
    w = np.array(a[s:s + frames])
    if w.ndim == 4 and w.shape[-1] == 1:
        w = w[..., 0]
    elif w.ndim == 4 and w.shape[-1] == 4:
        w = w[..., :3]
    return [Image.fromarray(f) for f in w]


def _video_window(path: Path, frames: int, u: float) -> list[Image.Image]:
    """A window of a video file decoded with PyAV; decoding stops after the window (frames before it are
    decoded and dropped: no seeking, which is exact but costs time proportional to the window's start)."""
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise ValueError("the file holds no video stream")
        stream = container.streams.video[0]
        total = stream.frames
        if not total:  # the container does not say: count its packets (demuxing only, no decoding)
            total = sum(1 for p in container.demux(stream) if p.size)
            container.seek(0)
        s = _window_start(total, frames, u)
        out = []
        for i, frame in enumerate(container.decode(stream)):
            if i >= s:
                out.append(frame.to_image())
            if len(out) == frames:
                break
    if not out:
        raise ValueError(f"no frame decoded at or after frame {s} (the container says {total})")
    return out
