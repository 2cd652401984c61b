"""Sample indexes for streaming datasets: what the N samples are and where their bytes lie, built once and cached.

    index_image_folder(root)  root/<class>/**/*.{jpg,jpeg,png} (any case); labels from the sorted class folders
    index_video_folder(root)  root/<class>/**/*.{npy,mp4,avi,...}; labels as for images
    index_shards(root)        WebDataset-style plain .tar shards (a folder of them, or one file): members grouped
                              by key (the member path up to the first dot of its file name), one image per key
                              plus an optional `key.cls` (an integer label); read by offset, never extracted

An index holds the names as one byte blob + offsets, and labels / tar offsets as numpy arrays, not as Python
objects: DataLoader workers fork from the main process, and per-object refcount writes would copy a
million-entry list into every worker. It is cached as an .npz in `index_dir` (default ~/.cache/openjepa/index)
under a name derived from the root's resolved path, and rebuilt when its stamp no longer matches: for folders the
mtimes of the root and of its immediate sub-folders (adding or removing a file in a class folder changes them;
a change two levels down is not seen: pass refresh=True), for shards the size and mtime of every shard.
Labels follow data/image_files.py:load_image_folder: only when every sample sits in a class sub-folder (every
shard sample has a .cls); otherwise there are none.
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
from pathlib import Path

import numpy as np

from openjepa.data.image_files import IMAGE_EXTENSIONS
from openjepa.data.video import VIDEO_EXTS

INDEX_VERSION = 1
CLIP_EXTENSIONS = tuple(sorted(VIDEO_EXTS | {".npy"}))


def default_index_dir() -> Path:
    return Path.home() / ".cache" / "openjepa" / "index"


class Names:
    """N strings as one UTF-8 blob and N+1 offsets (see the module docstring for why not a list)."""

    def __init__(self, blob: np.ndarray, offsets: np.ndarray):
        self.blob, self.offsets = blob, offsets

    @classmethod
    def of(cls, names: list[str]) -> "Names":
        parts = [n.encode() for n in names]
        offsets = np.zeros(len(parts) + 1, dtype=np.int64)
        np.cumsum([len(p) for p in parts], out=offsets[1:])
        return cls(np.frombuffer(b"".join(parts), dtype=np.uint8).copy(), offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> str:
        return self.blob[self.offsets[i]:self.offsets[i + 1]].tobytes().decode()


class Records:
    """The samples of a dataset: `name(i)` for messages, `label(i)` (-1 without labels), `source(i)` what a
    decoder reads (a Path, or bytes for a shard member)."""

    kind = "image"  # "image" or "clip": what the samples decode to

    def __init__(self, root: Path, names: Names, labels: np.ndarray | None, classes: list[str] | None):
        self.root, self.names, self.labels, self.classes = root, names, labels, classes

    def __len__(self) -> int:
        return len(self.names)

    @property
    def labelled(self) -> bool:
        return self.labels is not None

    def name(self, i: int) -> str:
        return self.names[i]

    def label(self, i: int) -> int:
        return int(self.labels[i]) if self.labels is not None else -1


class FolderRecords(Records):
    """Files under a folder; names are paths relative to the root."""

    def __init__(self, root: Path, names: Names, labels: np.ndarray | None, classes: list[str] | None, kind: str):
        super().__init__(root, names, labels, classes)
        self.kind = kind

    def name(self, i: int) -> str:
        return str(self.root / self.names[i])

    def source(self, i: int) -> Path:
        return self.root / self.names[i]


class ShardRecords(Records):
    """Members of plain .tar shards, read with os.pread at their offset (no shared file position, so forked
    workers may share nothing but the index)."""

    def __init__(self, root: Path, names: Names, labels: np.ndarray | None, shards: list[str], shard: np.ndarray,
                 offset: np.ndarray, size: np.ndarray):
        super().__init__(root, names, labels, None)
        self.shards, self.shard, self.offset, self.size = shards, shard, offset, size
        self._fds: dict[int, int] = {}
        self._pid = -1

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_fds": {}, "_pid": -1}  # descriptors stay in the process that opened them

    def name(self, i: int) -> str:
        return f"{self.root / self.shards[self.shard[i]]}:{self.names[i]}"

    def source(self, i: int) -> bytes:
        if self._pid != os.getpid():  # a forked worker: the parent's descriptors are not ours to use
            self._fds, self._pid = {}, os.getpid()
        s = int(self.shard[i])
        if s not in self._fds:
            if len(self._fds) >= 16:  # bound the open files per worker
                os.close(self._fds.pop(next(iter(self._fds))))
            self._fds[s] = os.open(self.root / self.shards[s], os.O_RDONLY)
        size = int(self.size[i])
        data = os.pread(self._fds[s], size, int(self.offset[i]))
        if len(data) != size:
            raise OSError(f"short read: {len(data)} of {size} bytes (the shard changed since it was indexed?)")
        return data


class SubsetRecords(Records):
    """Some samples of another index, renumbered 0..len(idx)-1: e.g. the training images left once the online
    monitor's held-out ones are taken, or a probe's seeded subset."""

    def __init__(self, base: Records, idx: np.ndarray | list[int]):
        self.base, self.idx = base, np.asarray(idx, dtype=np.int64)
        if len(self.idx) and not (0 <= self.idx.min() and self.idx.max() < len(base)):
            raise IndexError(f"subset indices must lie in [0, {len(base)})")
        labels = base.labels[self.idx] if base.labels is not None else None
        super().__init__(base.root, base.names, labels, base.classes)
        self.kind = base.kind

    def __len__(self) -> int:
        return len(self.idx)

    def name(self, i: int) -> str:
        return self.base.name(int(self.idx[i]))

    def source(self, i: int) -> Path | bytes:
        return self.base.source(int(self.idx[i]))


# --------------------------------------------------------------------------- #
# building and caching
# --------------------------------------------------------------------------- #


def _check_root(root: str | os.PathLike, what: str) -> Path:
    p = Path(root).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"{what} {p} does not exist")
    return p


def _cache_file(index_dir: str | os.PathLike | None, kind: str, root: Path) -> Path:
    d = Path(index_dir).expanduser() if index_dir is not None else default_index_dir()
    key = hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:16]
    return d / f"{kind}-{key}.npz"


def _load_cached(path: Path, stamp: str) -> dict[str, np.ndarray] | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError):  # absent, or cut short by a kill: rebuild it
        return None
    if str(data.get("stamp", "")) != stamp or int(data.get("version", -1)) != INDEX_VERSION:
        return None
    return data


def _save_cached(path: Path, stamp: str, **arrays: np.ndarray) -> None:
    """Atomic write (several ranks may build the same index at once; the last complete one wins)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp.npz")
    np.savez(tmp, stamp=np.array(stamp), version=np.array(INDEX_VERSION), **arrays)
    os.replace(tmp, path)


def _folder_stamp(root: Path) -> str:
    dirs = [root] + sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    return json.dumps([[p.relative_to(root).as_posix(), p.stat().st_mtime_ns] for p in dirs])


def _walk(root: Path, extensions: tuple[str, ...]) -> list[str]:
    """Relative posix paths of the files under root with one of `extensions` (any case), sorted; names
    starting with '.' are skipped (as in data/image_files.py)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = [n for n in dirnames if not n.startswith(".")]
        rel = Path(dirpath).relative_to(root)
        found += [(rel / n).as_posix() for n in filenames
                  if not n.startswith(".") and os.path.splitext(n)[1].lower() in extensions]
    return sorted(found)


def _index_folder(root: str | os.PathLike, kind: str, extensions: tuple[str, ...], index_dir, refresh: bool
                  ) -> FolderRecords:
    what = "image folder" if kind == "image" else "video folder"
    p = _check_root(root, what)
    if not p.is_dir():
        raise ValueError(f"{what} {p} is not a directory")
    stamp = _folder_stamp(p)
    cache = _cache_file(index_dir, f"{kind}_folder", p)
    data = None if refresh else _load_cached(cache, stamp)
    if data is None:
        files = _walk(p, extensions)
        if not files:
            raise ValueError(f"no {'images' if kind == 'image' else 'clips'} found under {p} (looked recursively "
                             f"for {'/'.join(extensions)} files, any letter case)")
        tops = [f.split("/", 1)[0] if "/" in f else None for f in files]
        classes = sorted({t for t in tops if t is not None}) if all(t is not None for t in tops) else []
        at = {c: i for i, c in enumerate(classes)}
        names = Names.of(files)
        labels = np.array([at[t] for t in tops], dtype=np.int64) if classes else np.zeros(0, dtype=np.int64)
        data = {"blob": names.blob, "offsets": names.offsets, "labels": labels,
                "classes": np.array(json.dumps(classes))}
        _save_cached(cache, stamp, **data)
    classes = json.loads(str(data["classes"]))
    return FolderRecords(p, Names(data["blob"], data["offsets"]), data["labels"] if classes else None,
                         classes or None, kind)


def index_image_folder(root: str | os.PathLike, index_dir: str | os.PathLike | None = None,
                       refresh: bool = False) -> FolderRecords:
    """The images under `root` (see the module docstring); FileNotFoundError naming a missing root."""
    return _index_folder(root, "image", IMAGE_EXTENSIONS, index_dir, refresh)


def index_video_folder(root: str | os.PathLike, index_dir: str | os.PathLike | None = None,
                       refresh: bool = False) -> FolderRecords:
    """The clips (.npy arrays and video files) under `root`; labels as for images."""
    return _index_folder(root, "clip", CLIP_EXTENSIONS, index_dir, refresh)


def _shard_files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    shards = sorted(root.rglob("*.tar"), key=lambda s: s.relative_to(root).as_posix())
    if not shards:
        raise ValueError(f"no .tar shards found under {root}")
    return shards


def _split_key(member: str) -> tuple[str, str]:
    """WebDataset convention: 'dir/000123.seg.jpg' -> key 'dir/000123', extension 'seg.jpg'."""
    d, _, base = member.rpartition("/")
    stem, _, ext = base.partition(".")
    return (f"{d}/{stem}" if d else stem), ext.lower()


def _index_one_shard(path: Path) -> tuple[list[str], list[int], list[int], list[int | None]]:
    """(member names, data offsets, sizes, labels or None) of the image samples of one shard, in tar order."""
    try:
        tar = tarfile.open(path, mode="r:")  # plain tar only: compressed members cannot be read by offset
    except tarfile.ReadError as e:
        raise ValueError(f"{path}: not a plain (uncompressed) tar file ({e}); shards must be seekable: "
                         "recreate them without compression (e.g. `tar cf`)") from None
    images: dict[str, tarfile.TarInfo] = {}
    cls: dict[str, tarfile.TarInfo] = {}
    with tar:
        for m in tar:
            if not m.isfile():
                continue
            key, ext = _split_key(m.name)
            if "." + ext in IMAGE_EXTENSIONS:
                images.setdefault(key, m)  # several images under one key: the first is the sample
            elif ext == "cls":
                cls[key] = m
        labels: list[int | None] = []
        for key in images:
            if key not in cls:
                labels.append(None)
                continue
            text = tar.extractfile(cls[key]).read().decode(errors="replace").strip()
            try:
                labels.append(int(text))
            except ValueError:
                raise ValueError(f"{path}:{cls[key].name}: a .cls member must hold an integer label, "
                                 f"got {text[:40]!r}") from None
    ms = list(images.values())
    return [m.name for m in ms], [m.offset_data for m in ms], [m.size for m in ms], labels


def index_shards(root: str | os.PathLike, index_dir: str | os.PathLike | None = None,
                 refresh: bool = False) -> ShardRecords:
    """The image samples of the .tar shards at `root` (a folder, searched recursively, or one .tar file)."""
    p = _check_root(root, "shard folder")
    shards = _shard_files(p)
    base = p if p.is_dir() else p.parent
    stamp = json.dumps([[s.relative_to(base).as_posix(), s.stat().st_size, s.stat().st_mtime_ns] for s in shards])
    cache = _cache_file(index_dir, "shards", p)
    data = None if refresh else _load_cached(cache, stamp)
    if data is None:
        names, shard, offset, size, labels = [], [], [], [], []
        for k, s in enumerate(shards):
            n, o, z, lab = _index_one_shard(s)
            names += n
            shard += [k] * len(n)
            offset += o
            size += z
            labels += lab
        if not names:
            raise ValueError(f"the shards under {p} hold no images ({'/'.join(IMAGE_EXTENSIONS)} members)")
        labelled = all(lab is not None for lab in labels)
        nm = Names.of(names)
        data = {"blob": nm.blob, "offsets": nm.offsets, "shard": np.array(shard, dtype=np.int32),
                "offset": np.array(offset, dtype=np.int64), "size": np.array(size, dtype=np.int64),
                "labels": np.array(labels if labelled else [], dtype=np.int64)}
        _save_cached(cache, stamp, **data)
    labels = data["labels"] if len(data["labels"]) else None
    return ShardRecords(base, Names(data["blob"], data["offsets"]), labels,
                        [s.relative_to(base).as_posix() for s in shards], data["shard"], data["offset"], data["size"])
