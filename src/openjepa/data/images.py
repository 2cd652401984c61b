"""Image data sources and batched image transforms.

Everything in this module uses one layout convention:

* image arrays are ``torch.uint8`` tensors of shape ``(N, C, H, W)`` with
  values in ``[0, 255]`` and ``C`` in ``{1, 3}``;
* labels are ``torch.int64`` tensors of shape ``(N,)``, or ``None`` when the
  source has no labels;
* augmentation (:func:`random_resized_crop`) works on float ``(B, C, H, W)``
  batches, and :func:`normalize` maps uint8 images to float32 in ``[-1, 1]``.

Sources:

* :func:`load_fashion_mnist` - the Fashion-MNIST IDX files (``.gz`` or plain),
  searched in a user path, ``~/.cache/openjepa/fashion-mnist`` and the
  directory of the Debian package ``dataset-fashion-mnist``;
* :func:`load_image_folder` - a directory tree of ``.png``/``.jpg``/``.jpeg``
  files, with ImageFolder-style labels when every image is in a class
  subfolder;
* :func:`load_npy_images` - one ``.npy`` array ``(N, H, W)`` or
  ``(N, H, W, C)``;
* :func:`load_images` - dispatches between the last two.

Nothing here downloads anything.
"""

from __future__ import annotations

import functools
import gzip
import math
import os
import pathlib
import struct
import warnings
import zlib
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "FASHION_MNIST_DEBIAN_DIR",
    "IMAGE_EXTENSIONS",
    "fashion_mnist_dirs",
    "load_fashion_mnist",
    "load_image_folder",
    "load_npy_images",
    "load_images",
    "to_model_input",
    "random_resized_crop",
    "normalize",
]

FASHION_MNIST_DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"
"""Where the Debian/Ubuntu package ``dataset-fashion-mnist`` installs the files."""

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
"""File suffixes (compared case-insensitively) picked up by :func:`load_image_folder`."""

_FASHION_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_FASHION_MNIST_URL = "https://github.com/zalandoresearch/fashion-mnist/tree/master/data/fashion"
_FASHION_MNIST_NUM_CLASSES = 10
_FASHION_MNIST_SIDE = 28

# RGB -> grey luminance weights (ITU-R BT.601), as used by PIL's "L" mode.
_LUMA = (0.299, 0.587, 0.114)


# --------------------------------------------------------------------------- #
# Fashion-MNIST
# --------------------------------------------------------------------------- #


def _user_cache_dir() -> pathlib.Path:
    return pathlib.Path.home() / ".cache" / "openjepa" / "fashion-mnist"


def fashion_mnist_dirs(user_path: str | os.PathLike | None) -> list[pathlib.Path]:
    """Directories searched for Fashion-MNIST, in lookup order.

    The user path (if given, ``~`` expanded), then ``~/.cache/openjepa/fashion-mnist``,
    then :data:`FASHION_MNIST_DEBIAN_DIR`. Duplicates are dropped.
    """
    candidates: list[pathlib.Path] = []
    if user_path is not None:
        candidates.append(pathlib.Path(user_path).expanduser())
    candidates.append(_user_cache_dir())
    # Read the module attribute at call time so it can be overridden (tests, odd installs).
    candidates.append(pathlib.Path(FASHION_MNIST_DEBIAN_DIR))
    out: list[pathlib.Path] = []
    for c in candidates:
        if c not in out:
            out.append(c)
    return out


def _find_idx_file(directory: pathlib.Path, stem: str) -> pathlib.Path | None:
    """``stem.gz`` if present, else the uncompressed ``stem``, else None."""
    for name in (stem + ".gz", stem):
        p = directory / name
        if p.is_file():
            return p
    return None


def _read_idx(path: pathlib.Path, ndim: int) -> np.ndarray:
    """Parse an unsigned-byte IDX file (``.gz`` or plain) with ``ndim`` dimensions.

    Raises ValueError naming the file when it is corrupt, truncated or of the
    wrong kind.
    """
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                data = f.read()
        else:
            data = path.read_bytes()
    except (OSError, EOFError, zlib.error) as e:
        # gzip.BadGzipFile is an OSError; a truncated .gz gives EOFError.
        raise ValueError(
            f"{path}: cannot read IDX file ({type(e).__name__}: {e}); the file is corrupt "
            "or truncated - delete it and fetch it again"
        ) from e

    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise ValueError(
            f"{path}: truncated IDX file: {len(data)} bytes, shorter than the "
            f"{header_len}-byte header"
        )
    magic = data[:4]
    expected_magic = bytes((0, 0, 0x08, ndim))
    if magic != expected_magic:
        raise ValueError(
            f"{path}: bad IDX magic number 0x{magic.hex()} (expected 0x{expected_magic.hex()}: "
            f"unsigned bytes, {ndim} dimension(s)); not a Fashion-MNIST "
            f"{'image' if ndim == 3 else 'label'} file or corrupt"
        )
    dims = struct.unpack(">" + "I" * ndim, data[4:header_len])
    expected_len = header_len + math.prod(dims)
    if len(data) != expected_len:
        what = "truncated" if len(data) < expected_len else "has trailing data"
        raise ValueError(
            f"{path}: IDX file {what}: header says shape {tuple(dims)} "
            f"({expected_len} bytes in all) but the file holds {len(data)} bytes"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header_len).reshape(dims)


def _not_found_message(split: str, searched: Sequence[tuple[pathlib.Path, str]]) -> str:
    lines = [f"Fashion-MNIST ({split!r} split) was not found. Places searched:"]
    lines += [f"  - {d}  ({why})" for d, why in searched]
    cache = _user_cache_dir()
    lines += [
        "To get it, either:",
        "  * on Debian/Ubuntu:  sudo apt-get install dataset-fashion-mnist",
        f"    (installs the files into {FASHION_MNIST_DEBIAN_DIR}), or",
        "  * download the four files train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz,",
        "    t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz from the Fashion-MNIST",
        f"    GitHub repo (zalandoresearch/fashion-mnist, data/fashion: {_FASHION_MNIST_URL})",
        f"    into {cache}  (or any directory you then pass as path=...).",
    ]
    return "\n".join(lines)


@functools.lru_cache(maxsize=4)
def _load_fashion_mnist_cached(
    split: str, directory: str, images_file: str, labels_file: str, stamp: tuple
) -> tuple[torch.Tensor, torch.Tensor]:
    # ``directory`` and ``stamp`` (sizes and mtimes) are only part of the cache key.
    del directory, stamp
    images_path, labels_path = pathlib.Path(images_file), pathlib.Path(labels_file)
    images = _read_idx(images_path, ndim=3)
    labels = _read_idx(labels_path, ndim=1)
    if images.shape[1:] != (_FASHION_MNIST_SIDE, _FASHION_MNIST_SIDE):
        raise ValueError(
            f"{images_path}: images are {images.shape[1]}x{images.shape[2]}, "
            f"Fashion-MNIST images are {_FASHION_MNIST_SIDE}x{_FASHION_MNIST_SIDE}"
        )
    if images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"{images_path} holds {images.shape[0]} images but {labels_path} holds "
            f"{labels.shape[0]} labels; one of them is corrupt or from another split"
        )
    if labels.size and int(labels.max()) >= _FASHION_MNIST_NUM_CLASSES:
        raise ValueError(
            f"{labels_path}: label {int(labels.max())} out of range "
            f"0..{_FASHION_MNIST_NUM_CLASSES - 1}; the file is corrupt"
        )
    x = torch.from_numpy(images.copy()).unsqueeze(1)  # (N, 1, 28, 28) uint8
    y = torch.from_numpy(labels.astype(np.int64))
    return x, y


def load_fashion_mnist(
    split: str, path: str | os.PathLike | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Load a Fashion-MNIST split from local IDX files (never downloads).

    Args:
        split: ``"train"`` (60000 images) or ``"test"`` (10000 images).
        path: optional directory holding the IDX files; searched first, before
            ``~/.cache/openjepa/fashion-mnist`` and :data:`FASHION_MNIST_DEBIAN_DIR`
            (see :func:`fashion_mnist_dirs`). The first directory holding both the
            image and the label file of the split is used.

    Each file may be gzipped (``name.gz``, preferred when both exist) or plain.
    Headers are validated (magic number, shape vs. file length, 28x28 images,
    matching image/label counts, labels < 10); the image count itself is not
    checked against 60000/10000, so subsets in the same format load too.

    Returns:
        ``x`` uint8 ``(N, 1, 28, 28)`` and ``y`` int64 ``(N,)``.

        Parsed arrays are cached in-process (keyed on the split, the resolved
        directory and the files' sizes/mtimes); every call returns fresh
        *clones* of the cached tensors, so callers may modify them freely.

    Raises:
        ValueError: unknown split, or a corrupt/truncated file (the message
            names the file).
        FileNotFoundError: no searched directory holds the files; the message
            lists every place searched and how to install the data.
    """
    if split not in _FASHION_MNIST_FILES:
        raise ValueError(f"unknown Fashion-MNIST split {split!r}; expected 'train' or 'test'")
    img_stem, lbl_stem = _FASHION_MNIST_FILES[split]
    searched: list[tuple[pathlib.Path, str]] = []
    for d in fashion_mnist_dirs(path):
        if not d.is_dir():
            searched.append((d, "no such directory"))
            continue
        img = _find_idx_file(d, img_stem)
        lbl = _find_idx_file(d, lbl_stem)
        if img is None or lbl is None:
            missing = [s + "[.gz]" for s, f in ((img_stem, img), (lbl_stem, lbl)) if f is None]
            searched.append((d, "missing " + ", ".join(missing)))
            continue
        st_i, st_l = img.stat(), lbl.stat()
        stamp = (st_i.st_size, st_i.st_mtime_ns, st_l.st_size, st_l.st_mtime_ns)
        x, y = _load_fashion_mnist_cached(
            split, str(d.resolve()), str(img.resolve()), str(lbl.resolve()), stamp
        )
        return x.clone(), y.clone()
    raise FileNotFoundError(_not_found_message(split, searched))


# --------------------------------------------------------------------------- #
# Image folders
# --------------------------------------------------------------------------- #


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
    _check_size_channels(size, channels)
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


# --------------------------------------------------------------------------- #
# .npy arrays
# --------------------------------------------------------------------------- #


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
            :func:`to_model_input` (either may be given alone: only that
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
        _check_channels(channels)
        x = _convert_channels(x, channels)
    if size is not None:
        _check_size(size)
        x = _resize_center_crop(x, size)
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


# --------------------------------------------------------------------------- #
# Conversions and augmentation
# --------------------------------------------------------------------------- #


def _check_size(size: int) -> None:
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ValueError(f"size must be a positive int, got {size!r}")


def _check_channels(channels: int) -> None:
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels!r}")


def _check_size_channels(size: int, channels: int) -> None:
    _check_size(size)
    _check_channels(channels)


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


def _convert_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
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


def _resize_center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    """Resize short side to ``size`` (bilinear, antialiased) then center crop."""
    n, c, h, w = x.shape
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
    out = torch.empty((n, c, size, size), dtype=torch.uint8, device=x.device)
    for s in range(0, n, _CHUNK):
        r = F.interpolate(
            x[s : s + _CHUNK].float(), size=(nh, nw), mode="bilinear",
            align_corners=False, antialias=True,
        )
        r = r[:, :, top : top + size, left : left + size]
        out[s : s + _CHUNK] = r.round_().clamp_(0, 255).to(torch.uint8)
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
    _check_size_channels(size, channels)
    if channels == 1:  # reduce channels first: less to resize
        return _resize_center_crop(_convert_channels(x, 1), size)
    return _convert_channels(_resize_center_crop(x, size), channels)


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
