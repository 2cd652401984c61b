"""Per-sample decoding + augmentation for streaming datasets, run in DataLoader workers.

    ImageDecoder(size, channels, crop_scale, ratio, flip)(source, u)          -> uint8 (C, size, size)
    ClipDecoder(size, channels, frames, crop_scale, ratio, flip)(source, u)   -> uint8 (C, frames, size, size)

`source` is a Path or the bytes of a shard member; `u` holds the sample's uniform draws in [0, 1) (`draws` of
them), so the output is a pure function of (file, u): the caller derives u from (seed, step, position).
The crop follows data/transforms.py:random_resized_crop, applied to the decoded image at its own resolution (as
torchvision's RandomResizedCrop does) instead of to a pre-resized square: area fraction s ~ U(crop_scale),
aspect ratio (width / height) log-uniform in `ratio`, a side that does not fit is clamped and the other grown to
keep the area, position uniform. The box is rounded to whole pixels (as torchvision's crop) and resampled to
size x size with an antialiased bilinear filter (the triangle filter PIL's BILINEAR uses, widened when shrinking),
run by torch's uint8 kernel: 3-5x faster than PIL's on one core, and the same output whatever the number of
threads. A JPEG whose box is at least twice the output size is decoded at 1/2, 1/4 or 1/8 scale in the DCT
(PIL's draft mode; the largest reduction that keeps the box >= size x size), so large photos cost a fraction of a
full decode; the output is then the same filter applied to the smaller image (close to, not bit-equal to, the
full-scale result). crop_scale=None gives the evaluation view: the centred square of the short side, no flip.
A clip uses one box and one flip for all its frames, and a random window of `frames` consecutive frames (a
shorter clip is padded with its last frame).

BAD_DATA lists the exceptions that mean "this file is unreadable" (the sample is replaced, see loader.py);
anything else is a bug and propagates.
"""

from __future__ import annotations

import io
import math
import struct
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import torch
import torch.nn.functional as F
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


def _draft(im: Image.Image, box: Box, size: int) -> tuple[Image.Image, Box]:
    """Ask a JPEG to decode at the largest scale 1/2, 1/4 or 1/8 at which `box` still spans >= size pixels on
    each side; returns the image (not yet decoded) and the box in its coordinates. Other formats: unchanged."""
    side = min(box[2] - box[0], box[3] - box[1])
    s = 1
    while s < 8 and side / (2 * s) >= size:
        s *= 2
    if s == 1 or im.format != "JPEG":
        return im, box
    W, H = im.size
    got = im.draft(None, (W // s, H // s))  # PIL picks 1/s: W // (W // s) >= s and < 2s
    if got is None:
        return im, box
    f = W / got[1][2]  # the scale PIL chose
    return im, (box[0] / f, box[1] / f, box[2] / f, box[3] / f)


def _decoded(im: Image.Image, mode: str) -> Image.Image:
    """`im` decoded in full (a truncated file fails here) and in `mode`; converted only when its mode differs
    (convert to the same mode would copy the image)."""
    im.load()
    return im if im.mode == mode else im.convert(mode)


def _pixel_box(box: Box, width: int, height: int) -> tuple[int, int, int, int]:
    """`box` rounded to whole pixels inside the image, at least 1 x 1."""
    x0, y0 = min(max(round(box[0]), 0), width - 1), min(max(round(box[1]), 0), height - 1)
    return x0, y0, min(max(round(box[2]), x0 + 1), width), min(max(round(box[3]), y0 + 1), height)


def _resample(im: Image.Image, box: Box, size: int, flip: bool) -> np.ndarray:
    """The box of `im` (decoded, in its mode) resampled to (size, size), mirrored when `flip`: uint8 (size, size[, C])
    (a view: `np.ascontiguousarray(_chw(...))` makes the one copy).

    torch's antialiased bilinear on uint8 (channels-last) is the filter PIL's resize(BILINEAR) applies, without
    PIL's cost (0.16 vs 0.5-0.8 ms per 224 px crop on one core); it runs per output pixel, so threads change
    nothing (workers=0 in the main process and workers>0 give the same pixels)."""
    crop = np.asarray(im.crop(_pixel_box(box, im.width, im.height)))  # (h, w[, C]), read-only
    with warnings.catch_warnings():  # the array is only read: torch's "not writable" warning does not apply
        warnings.simplefilter("ignore", UserWarning)
        t = torch.from_numpy(crop)
    t = (t[None] if t.ndim == 2 else t.permute(2, 0, 1)).unsqueeze(0)  # (1, C, h, w), a channels-last view
    out = F.interpolate(t, size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0]
    a = out.permute(1, 2, 0).numpy()  # (S, S, C): channels-last memory, a view
    if flip:
        a = a[:, ::-1]
    return a[..., 0] if crop.ndim == 2 else a


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
            box = crop_box(im.width, im.height, u, self.crop_scale, self.ratio)  # from the header's size
            im, box = _draft(im, box, self.size)
            im = _decoded(im, "L" if self.channels == 1 else "RGB")
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
