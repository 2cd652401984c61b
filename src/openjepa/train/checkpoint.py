"""Training checkpoints: atomic writes, verified and safe loads, the last K kept.

A checkpoint is a plain dict of tensors and Python scalars/containers (model, optimizer, step, RNG state,
resolved config, best metric, lr scale), so it loads with `torch.load(weights_only=True)`: no arbitrary
pickle code runs when a checkpoint from elsewhere is opened. Writes go to a temporary file in the same
folder, are fsync'ed, then renamed over the destination (and the folder fsync'ed), so a crash or a full disk
mid-write leaves the previous file intact. Weights with a NaN or an infinity are never written.

In a run directory, `save_step` writes `checkpoints/step_XXXXXXXX.pt`, points `checkpoints/last.pt` at it
(a hard link, swapped in atomically) and deletes all but the newest `keep_last` step files;
`latest_checkpoint` returns the newest one that loads and verifies, saying why it skipped any other.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch

STEP_FILE = re.compile(r"^step_(\d{8})\.pt$")


def first_nonfinite(tensors: dict[str, Any]) -> str | None:
    """Name of the first floating-point tensor holding a NaN or an infinity, else None."""
    for name, t in tensors.items():
        if isinstance(t, torch.Tensor) and t.is_floating_point() and not bool(torch.isfinite(t).all()):
            return name
    return None


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. platforms without directory handles
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_checkpoint(state: dict[str, Any], path: str | Path) -> None:
    """Write `state` to `path` atomically; refuses non-finite weights in state["model"] (FloatingPointError)."""
    path = Path(path)
    bad = first_nonfinite(state.get("model", {}))
    if bad is not None:
        raise FloatingPointError(f"refusing to write {path}: model tensor {bad!r} is not finite")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise OSError(e.errno, f"disk full while writing {path}; the previous checkpoint is intact "
                                   f"(free space and resume)") from e
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load with weights_only=True (no pickled code runs) and verify: required keys, finite weights."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # re-raised with the file name; never silently ignored
        raise ValueError(f"cannot load checkpoint {path} (truncated, corrupt, or holding objects other than "
                         f"tensors and plain containers, which are refused): {e}") from e
    if not isinstance(state, dict):
        raise ValueError(f"{path} is not an OpenJEPA checkpoint (a {type(state).__name__}, not a dict)")
    for key in ("model", "config", "step"):
        if key not in state:
            raise ValueError(f"{path} is not an OpenJEPA checkpoint (missing {key!r})")
    bad = first_nonfinite(state["model"])
    if bad is not None:
        raise ValueError(f"{path} holds a non-finite tensor {bad!r}")
    return state


def step_files(folder: Path) -> list[Path]:
    """checkpoints/step_XXXXXXXX.pt files, newest (highest step) first."""
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if STEP_FILE.match(p.name)), reverse=True)


def save_step(state: dict[str, Any], folder: str | Path, keep_last: int) -> Path:
    """Write step_XXXXXXXX.pt, make last.pt the same file, keep the newest `keep_last` step files."""
    folder = Path(folder)
    path = folder / f"step_{int(state['step']):08d}.pt"
    save_checkpoint(state, path)
    last, tmp = folder / "last.pt", folder / f"last.pt.{os.getpid()}.link"
    tmp.unlink(missing_ok=True)
    try:
        os.link(path, tmp)
    except OSError:  # no hard links here: a copy, still swapped in atomically
        shutil.copyfile(path, tmp)
    os.replace(tmp, last)
    _fsync_dir(folder)
    for old in step_files(folder)[keep_last:]:
        old.unlink(missing_ok=True)
    return path


def latest_checkpoint(folder: str | Path, log: Callable[[str], None] = print) -> tuple[Path, dict[str, Any]]:
    """The newest checkpoint in `folder` that loads and verifies: last.pt, then step files newest first.
    Each one skipped is reported through `log` with the reason; none valid -> FileNotFoundError/ValueError."""
    folder = Path(folder)
    candidates = [folder / "last.pt"] + step_files(folder)
    errors = []
    for path in candidates:
        if not path.is_file():
            continue
        try:
            state = load_checkpoint(path)
        except ValueError as e:
            errors.append(str(e))
            log(f"WARNING: skipping {path}: {e}")
            continue
        return path, state
    if not errors:
        raise FileNotFoundError(f"no checkpoint in {folder}")
    raise ValueError(f"no valid checkpoint in {folder}: " + "; ".join(errors))


def resolve_checkpoint(path: str | Path) -> Path:
    """Accept a checkpoint file or a run directory (-> its checkpoints/best.pt, else last.pt)."""
    p = Path(path)
    if p.is_dir():
        for name in ("best.pt", "last.pt"):
            if (p / "checkpoints" / name).is_file():
                return p / "checkpoints" / name
        raise FileNotFoundError(f"{p} holds no checkpoints/best.pt or checkpoints/last.pt")
    if not p.exists():
        raise FileNotFoundError(f"no such checkpoint or run directory: {p}")
    return p


def load_method(path: str | Path, device: torch.device | str = "cpu"):
    """Rebuild a trained method from a checkpoint file or run directory -> (method in eval mode, Config, state)."""
    from openjepa.config import build_config
    from openjepa.methods import METHODS
    from openjepa.validate import resolve_config

    ckpt = resolve_checkpoint(path)
    state = load_checkpoint(ckpt)
    cfg = resolve_config(build_config(state["config"]))
    method = METHODS[cfg.train.method](cfg)
    method.load_state_dict(state["model"])
    return method.to(device).eval(), cfg, state
