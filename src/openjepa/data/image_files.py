"""Images from files: a folder of ``.png``/``.jpg``/``.jpeg`` (ImageFolder-style labels, unreadable files
refused or skipped) or one ``.npy`` array, each returned as uint8 ``(N, C, H, W)``; ``load_images`` picks between
them by path."""

from __future__ import annotations

import math
import os
import pathlib
import warnings

import numpy as np
import torch

from openjepa.data.transforms import check_channels, check_size, convert_channels, resize_center_crop

__all__ = ["IMAGE_EXTENSIONS", "load_image_folder", "load_npy_images", "load_images"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
"""File suffixes (compared case-insensitively) picked up by :func:`load_image_folder`."""


def _find_images(root: pathlib.Path) -> list[pathlib.Path]:
    """Image files under ``root``, recursively, sorted by relative path.

    Files or directories whose name starts with ``.`` (e.g. macOS ``._x.png``
    resource forks, ``.ipynb_checkpoints``) are ignored.
    """
    found = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = [n for n in dirnames if not n.startswith(".")]
        for name in filenames:
            if name.startswith("."):
                continue
            if os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS:
                found.append(pathlib.Path(dirpath, name))
    found.sort(key=lambda p: p.relative_to(root).as_posix())
    return found


def _pil_to_uint8(p: pathlib.Path, size: int, mode: str) -> np.ndarray:
    """Open ``p``, convert to ``mode``, resize short side to ``size``, center crop.

    Returns an ``(size, size)`` or ``(size, size, 3)`` uint8 array.
    """
    from PIL import Image

    with Image.open(p) as im:
        im = im.convert(mode)  # forces a full decode: truncated files fail here
    w, h = im.size
    if (w, h) != (size, size):
        if w <= h:
            nw, nh = size, max(size, int(round(h * size / w)))
        else:
            nw, nh = max(size, int(round(w * size / h))), size
        if (nw, nh) != (w, h):
            im = im.resize((nw, nh), Image.BILINEAR)
        left = int(round((nw - size) / 2.0))
        top = int(round((nh - size) / 2.0))
        im = im.crop((left, top, left + size, top + size))
    return np.array(im, dtype=np.uint8)  # writable copy


def load_image_folder(
    path: str | os.PathLike, size: int, channels: int, skip_bad: bool = False
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Load every ``.png``/``.jpg``/``.jpeg`` under ``path`` (recursively).

    Files are taken in sorted relative-path order (suffixes matched
    case-insensitively; names starting with ``.`` ignored). Each image is
    converted to ``"L"`` (``channels=1``) or ``"RGB"`` (``channels=3``), resized
    so its short side is ``size`` (bilinear) and center-cropped to
    ``size x size``.

    Labels follow the torchvision ImageFolder convention: if *every* image sits
    in a subfolder of ``path``, its label is the index of its top-level
    subfolder name among the sorted names of the top-level subfolders that
    contain images (classes are fixed before any file is skipped, so skipping
    never renumbers them). If any image sits directly in ``path``, labels are
    ``None``.

    Returns:
        ``x`` uint8 ``(N, channels, size, size)`` and ``y`` int64 ``(N,)`` or None.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: ``path`` is not a directory, holds no images, every image
            was skipped, or (``skip_bad=False``) an image cannot be decoded -
            the message names the file and PIL's reason. With
            ``skip_bad=True`` unreadable files are skipped and a
            ``RuntimeWarning`` gives their count and names the first few.
    """
    check_size(size)
    check_channels(channels)
    root = pathlib.Path(path).expanduser()
    if not root.exists():
        raise FileNotFoundError(f"image folder {root} does not exist")
    if not root.is_dir():
        raise ValueError(f"{root} is not a directory")
    files = _find_images(root)
    if not files:
        raise ValueError(
            f"no images found under {root} (looked recursively for "
            f"{'/'.join(IMAGE_EXTENSIONS)} files, any letter case)"
        )

    rel_parts = [f.relative_to(root).parts for f in files]
    labelled = all(len(parts) >= 2 for parts in rel_parts)
    class_of: list[int] | None = None
    if labelled:
        classes = sorted({parts[0] for parts in rel_parts})
        index = {c: i for i, c in enumerate(classes)}
        class_of = [index[parts[0]] for parts in rel_parts]

    mode = "L" if channels == 1 else "RGB"
    x = torch.empty((len(files), channels, size, size), dtype=torch.uint8)
    kept: list[int] = []
    bad: list[tuple[pathlib.Path, str]] = []
    for i, f in enumerate(files):
        try:
            arr = _pil_to_uint8(f, size, mode)
        except Exception as e:  # PIL: OSError, ValueError, SyntaxError, DecompressionBombError...
            reason = f"{type(e).__name__}: {e}"
            if not skip_bad:
                raise ValueError(
                    f"cannot read image {f}: {reason} (pass skip_bad=True to skip unreadable files)"
                ) from e
            bad.append((f, reason))
            continue
        t = torch.from_numpy(arr)
        x[len(kept)] = t.unsqueeze(0) if t.ndim == 2 else t.permute(2, 0, 1)
        kept.append(i)

    if bad:
        shown = ", ".join(f"{p} ({r})" for p, r in bad[:3])
        more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        warnings.warn(
            f"load_image_folder: skipped {len(bad)} of {len(files)} unreadable image(s) "
            f"under {root}: {shown}{more}",
            RuntimeWarning,
            stacklevel=2,
        )
    if not kept:
        raise ValueError(f"all {len(files)} image(s) under {root} were unreadable and skipped")
    x = x[: len(kept)]
    y = None
    if class_of is not None:
        y = torch.tensor([class_of[i] for i in kept], dtype=torch.int64)
    return x, y


def load_npy_images(
    path: str | os.PathLike, size: int | None = None, channels: int | None = None
) -> torch.Tensor:
    """Load an image array saved with ``np.save``.

    Accepted shapes: ``(N, H, W)`` (grey) or ``(N, H, W, C)`` with ``C`` in
    ``{1, 3, 4}`` (channels last; an alpha channel is dropped). A channels-first
    array is rejected with a hint to transpose it.

    Accepted dtypes: ``uint8`` (used as is), or a float dtype with every value
    in ``[0, 1]``, converted with ``round(x * 255)``. Float arrays outside
    ``[0, 1]`` (e.g. floats in ``[0, 255]``) are rejected rather than guessed
    at - convert them with ``arr.astype(np.uint8)`` first. Other dtypes are
    rejected. The file is read with ``allow_pickle=False``.

    Args:
        size, channels: when given, the result is converted with
            :func:`openjepa.data.transforms.to_model_input` (either may be given alone: only that
            aspect is converted).

    Returns:
        uint8 ``(N, C, H, W)``.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: unreadable file, wrong shape or dtype (the message names
            the file and what was expected).
    """
    p = pathlib.Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"image array file {p} does not exist")
    try:
        arr = np.load(p, allow_pickle=False)
    except Exception as e:
        raise ValueError(f"cannot load {p} as a .npy array: {type(e).__name__}: {e}") from e
    if not isinstance(arr, np.ndarray):  # an .npz archive
        if hasattr(arr, "close"):
            arr.close()
        raise ValueError(f"{p} is an .npz archive; expected a single array saved with np.save")

    accepted = "(N, H, W) or (N, H, W, C) with C in {1, 3, 4}"
    if arr.ndim == 3:
        arr = arr[..., None]
    elif arr.ndim == 4:
        c = arr.shape[-1]
        if c not in (1, 3, 4):
            hint = ""
            if arr.shape[1] in (1, 3, 4):
                hint = " (looks channels-first: use arr.transpose(0, 2, 3, 1))"
            raise ValueError(
                f"{p}: array shape {tuple(arr.shape)} has {c} channels in the last axis; "
                f"accepted shapes are {accepted}{hint}"
            )
        if c == 4:
            arr = arr[..., :3]
    else:
        raise ValueError(
            f"{p}: array shape {tuple(arr.shape)} (rank {arr.ndim}) is not an image stack; "
            f"accepted shapes are {accepted}"
        )
    if min(arr.shape[:3]) == 0:
        raise ValueError(f"{p}: array shape {tuple(arr.shape)} holds no pixels")

    if arr.dtype == np.uint8:
        pass
    elif np.issubdtype(arr.dtype, np.floating):
        lo, hi = float(np.min(arr)), float(np.max(arr))
        if not (math.isfinite(lo) and math.isfinite(hi) and lo >= 0.0 and hi <= 1.0):
            raise ValueError(
                f"{p}: float array ({arr.dtype}) has values in [{lo}, {hi}]; float images must "
                "be in [0, 1] (for 0..255 data save it as uint8: arr.astype(np.uint8))"
            )
        arr = np.rint(arr.astype(np.float32) * 255.0).astype(np.uint8)
    else:
        raise ValueError(
            f"{p}: unsupported dtype {arr.dtype}; expected uint8 (0..255) or float in [0, 1]"
        )

    x = torch.from_numpy(np.ascontiguousarray(arr)).permute(0, 3, 1, 2).contiguous()
    if channels is not None:
        check_channels(channels)
        x = convert_channels(x, channels)
    if size is not None:
        check_size(size)
        x = resize_center_crop(x, size)
    return x


def load_images(
    path: str | os.PathLike, size: int, channels: int, skip_bad: bool = False
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Load images from a directory or a ``.npy`` file.

    A directory goes to :func:`load_image_folder` (labels as described there);
    a ``*.npy`` file to :func:`load_npy_images` (labels ``None``). Either way
    the result is uint8 ``(N, channels, size, size)``.
    """
    p = pathlib.Path(path).expanduser()
    if p.is_dir():
        return load_image_folder(p, size, channels, skip_bad=skip_bad)
    if p.suffix.lower() == ".npy":
        return load_npy_images(p, size=size, channels=channels), None
    if not p.exists():
        raise FileNotFoundError(
            f"{p} does not exist; expected a directory of images or a .npy file"
        )
    raise ValueError(
        f"cannot load images from {p}: accepted inputs are a directory of "
        f"{'/'.join(IMAGE_EXTENSIONS)} images (labels from class subfolders, if any) or a "
        ".npy array of shape (N, H, W) or (N, H, W, C)"
    )
