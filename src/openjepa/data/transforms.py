"""Batched image transforms on ``(N, C, H, W)`` tensors: channel conversion, resize + centre crop to the model's
input (``to_model_input``), random-resized-crop augmentation and the uint8 -> ``[-1, 1]`` normalisation."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["check_size", "check_channels", "convert_channels", "resize_center_crop", "to_model_input",
           "random_resized_crop", "normalize"]

# RGB -> grey luminance weights (ITU-R BT.601), as used by PIL's "L" mode.
_LUMA = (0.299, 0.587, 0.114)


def check_size(size: int) -> None:
    """Refuse a size that is not a positive int (ValueError naming it)."""
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ValueError(f"size must be a positive int, got {size!r}")


def check_channels(channels: int) -> None:
    """Refuse a channel count other than 1 or 3 (ValueError naming it)."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels!r}")


def _describe(x: object) -> str:
    if isinstance(x, torch.Tensor):
        return f"{x.dtype} tensor of shape {tuple(x.shape)}"
    return type(x).__name__


def _check_uint8_images(x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or x.dtype != torch.uint8 or x.ndim != 4:
        desc = _describe(x)
        raise ValueError(f"expected a uint8 tensor of shape (N, C, H, W), got {desc}")
    if x.shape[1] not in (1, 3, 4):
        raise ValueError(f"expected 1, 3 or 4 channels, got shape {tuple(x.shape)}")


_CHUNK = 1024  # samples per float conversion chunk, bounds temporary memory


def convert_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """uint8 (N, C, H, W) -> (N, channels, H, W): alpha dropped, grey repeated to RGB, RGB to grey by luminance."""
    c = x.shape[1]
    if c == 4:
        x, c = x[:, :3], 3
    if c == channels:
        return x
    if channels == 3:  # grey -> RGB
        return x.expand(-1, 3, -1, -1).contiguous()
    # RGB -> grey by luminance
    w = torch.tensor(_LUMA, dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
    out = torch.empty((x.shape[0], 1, x.shape[2], x.shape[3]), dtype=torch.uint8, device=x.device)
    for s in range(0, x.shape[0], _CHUNK):
        g = (x[s : s + _CHUNK].float() * w).sum(1, keepdim=True)
        out[s : s + _CHUNK] = g.round_().clamp_(0, 255).to(torch.uint8)
    return out


def resize_center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    """Resize short side to ``size`` (bilinear, antialiased) then center crop."""
    h, w = x.shape[-2:]
    if (h, w) == (size, size):
        return x
    if h <= w:
        nh, nw = size, max(size, int(round(w * size / h)))
    else:
        nh, nw = max(size, int(round(h * size / w))), size
    top = int(round((nh - size) / 2.0))
    left = int(round((nw - size) / 2.0))
    if (nh, nw) == (h, w):  # short side already right: crop only
        return x[:, :, top : top + size, left : left + size].contiguous()
    return resize(x, (nh, nw), crop=(top, left, size))


def resize(x: torch.Tensor, hw: tuple[int, int], crop: tuple[int, int, int] | None = None,
           chunk: int = _CHUNK) -> torch.Tensor:
    """uint8 ``(N, C, H, W)`` -> uint8 resized to ``hw`` (bilinear, antialiased), ``chunk`` samples at a time to
    bound the float temporaries; ``crop=(top, left, size)`` keeps only that square of each resized chunk."""
    n, c = x.shape[:2]
    oh, ow = (crop[2], crop[2]) if crop else hw
    top, left = crop[:2] if crop else (0, 0)
    out = torch.empty((n, c, oh, ow), dtype=torch.uint8, device=x.device)
    for s in range(0, n, chunk):
        r = F.interpolate(
            x[s : s + chunk].float(), size=hw, mode="bilinear",
            align_corners=False, antialias=True,
        )
        r = r[:, :, top : top + oh, left : left + ow]
        out[s : s + chunk] = r.round_().clamp_(0, 255).to(torch.uint8)
    return out


def to_model_input(x: torch.Tensor, size: int, channels: int) -> torch.Tensor:
    """Convert uint8 ``(N, C, H, W)`` images to uint8 ``(N, channels, size, size)``.

    RGB -> grey uses luminance weights (0.299, 0.587, 0.114); grey -> RGB
    repeats the channel; a 4th (alpha) channel is dropped. When ``H`` or ``W``
    differs from ``size`` the images are resized (bilinear, antialias=True);
    non-square images have their short side resized to ``size`` and are then
    center-cropped. When nothing needs changing ``x`` itself is returned (no
    copy).
    """
    _check_uint8_images(x)
    check_size(size)
    check_channels(channels)
    if channels == 1:  # reduce channels first: less to resize
        return resize_center_crop(convert_channels(x, 1), size)
    return convert_channels(resize_center_crop(x, size), channels)


def random_resized_crop(
    x: torch.Tensor,
    generator: torch.Generator,
    scale: tuple[float, float] = (0.3, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    flip: bool = False,
    size: int | None = None,
) -> torch.Tensor:
    """Batched random-resized-crop (+ optional horizontal flip), no per-sample loop.

    For each sample of the float batch ``x`` ``(B, C, H, W)``: draw an area
    fraction ``s ~ U(scale)`` and an aspect ratio (width / height, in pixels)
    ``r`` log-uniform in ``ratio``; the crop is ``w = sqrt(s*H*W*r)``,
    ``h = sqrt(s*H*W/r)``. If a side does not fit it is clamped to the image
    and the other side is grown to keep the area (up to the image size), so the
    box always lies inside the image and ``scale=(1, 1)`` always means the full
    image. The position is uniform over all valid (sub-pixel) positions. The
    crop is resampled to ``H x W`` (``size x size`` when given) with ``F.affine_grid`` + ``F.grid_sample``
    (bilinear, ``align_corners=False``, border padding). With ``flip=True``
    each sample is mirrored horizontally with probability 1/2.

    Random numbers come only from ``generator`` (drawn on its device), so the
    result is deterministic given the generator state. ``scale=(1, 1),
    ratio=(1, 1), flip=False`` returns the input unchanged (up to float
    rounding).

    Returns:
        float tensor of the same shape (spatial size ``size`` when given), dtype and device as ``x``.
    """
    if size is not None and size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or not x.is_floating_point():
        desc = _describe(x)
        raise ValueError(f"random_resized_crop expects a float (B, C, H, W) tensor, got {desc}")
    s_lo, s_hi = float(scale[0]), float(scale[1])
    r_lo, r_hi = float(ratio[0]), float(ratio[1])
    if not (0.0 < s_lo <= s_hi <= 1.0):
        raise ValueError(f"scale must satisfy 0 < scale[0] <= scale[1] <= 1, got {scale}")
    if not (0.0 < r_lo <= r_hi):
        raise ValueError(f"ratio must satisfy 0 < ratio[0] <= ratio[1], got {ratio}")
    b, _, H, W = x.shape
    if b == 0:
        return x.clone()

    u = torch.rand((b, 4), generator=generator, device=generator.device, dtype=torch.float64)
    u = u.to(x.device)
    area = float(H * W) * (s_lo + (s_hi - s_lo) * u[:, 0])
    log_r = math.log(r_lo) + (math.log(r_hi) - math.log(r_lo)) * u[:, 1]
    r = torch.exp(log_r)
    w = torch.sqrt(area * r)
    h = torch.sqrt(area / r)
    Wt = torch.full_like(w, float(W))
    Ht = torch.full_like(h, float(H))
    w_over, h_over = w > W, h > H  # never both: area <= H*W
    w_new = torch.where(w_over, Wt, torch.where(h_over, torch.minimum(area / H, Wt), w))
    h_new = torch.where(h_over, Ht, torch.where(w_over, torch.minimum(area / W, Ht), h))
    w, h = w_new, h_new
    x0 = u[:, 2] * (W - w)
    y0 = u[:, 3] * (H - h)

    # align_corners=False: normalized -1..1 spans pixel edges 0..W (resp. 0..H).
    sx = w / W
    sy = h / H
    cx = (2.0 * x0 + w) / W - 1.0
    cy = (2.0 * y0 + h) / H - 1.0
    if flip:
        coin = torch.rand((b,), generator=generator, device=generator.device).to(x.device)
        sx = torch.where(coin < 0.5, -sx, sx)
    zeros = torch.zeros_like(sx)
    theta = torch.stack(
        [torch.stack([sx, zeros, cx], 1), torch.stack([zeros, sy, cy], 1)], 1
    ).to(x.dtype)
    out_shape = list(x.shape) if size is None else [b, x.shape[1], size, size]
    grid = F.affine_grid(theta, out_shape, align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def normalize(x_uint8: torch.Tensor) -> torch.Tensor:
    """Map uint8 images to float32 ``(x / 255 - 0.5) / 0.5``, i.e. ``[0, 255] -> [-1, 1]``.

    A fixed, dataset-independent normalisation (roughly zero-mean, unit range)
    that works identically for grey and RGB inputs. Shape is preserved.
    """
    if not isinstance(x_uint8, torch.Tensor) or x_uint8.dtype != torch.uint8:
        got = x_uint8.dtype if isinstance(x_uint8, torch.Tensor) else type(x_uint8).__name__
        raise TypeError(f"normalize expects a uint8 tensor, got {got}")
    return (x_uint8.to(torch.float32) / 255.0 - 0.5) / 0.5
