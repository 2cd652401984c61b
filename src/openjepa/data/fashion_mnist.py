"""Fashion-MNIST from local IDX files: where the files are looked for, the IDX reader and its checks.

``load_fashion_mnist`` searches a user path, ``~/.cache/openjepa/fashion-mnist`` and the directory of the
Debian package ``dataset-fashion-mnist``, and returns uint8 images ``(N, 1, 28, 28)`` with int64 labels
``(N,)``. ``holdout_split`` is the seeded validation carve of the train split (``data.val_holdout``,
``openjepa bench images_search``). Nothing here downloads anything.
"""

from __future__ import annotations

import functools
import gzip
import math
import os
import pathlib
import struct
import zlib
from typing import Sequence

import numpy as np
import torch

__all__ = ["FASHION_MNIST_DEBIAN_DIR", "HOLDOUT_SEED", "fashion_mnist_dirs", "holdout_split", "load_fashion_mnist"]

FASHION_MNIST_DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"
"""Where the Debian/Ubuntu package ``dataset-fashion-mnist`` installs the files."""

_FASHION_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_FASHION_MNIST_URL = "https://github.com/zalandoresearch/fashion-mnist/tree/master/data/fashion"
_FASHION_MNIST_NUM_CLASSES = 10
HOLDOUT_SEED = 20_000
"""Seed of the validation carve: fixed, not train.seed, so every run and every probe carve the same images."""
_FASHION_MNIST_SIDE = 28


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


def holdout_split(n: int, n_val: int, seed: int = HOLDOUT_SEED) -> tuple[torch.Tensor, torch.Tensor]:
    """The seeded validation carve of a split of ``n`` images: ``(val, rest)``, disjoint int64 index tensors of
    ``n_val`` and ``n - n_val`` rows, each in increasing order, together ``0 .. n - 1``. The same ``(n, n_val,
    seed)`` always carves the same images, and a larger carve holds a smaller one (the first ``n_val`` of one
    seeded permutation), so a quick run's validation images are among the full run's."""
    if not 0 <= n_val < n:
        raise ValueError(f"cannot carve {n_val} validation images out of {n}: the carve must leave some to train on")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[:n_val].sort().values, perm[n_val:].sort().values
