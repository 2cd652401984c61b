"""Training checkpoints: atomic writes, safe loads.

A checkpoint is a plain dict of tensors and Python scalars/containers (model, optimizer, step, RNG state,
resolved config, best metric), so it loads with `torch.load(weights_only=True)`: no arbitrary pickle code
runs when a checkpoint from elsewhere is opened. Writes go to a temporary file in the same folder, are
fsync'ed, then renamed over the destination, so a crash mid-write leaves the previous file intact.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch


def save_checkpoint(state: dict[str, Any], path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # re-raised with the file name; never silently ignored
        raise ValueError(f"cannot load checkpoint {path}: {e}") from e
    for key in ("model", "config", "step"):
        if key not in state:
            raise ValueError(f"{path} is not an OpenJEPA checkpoint (missing {key!r})")
    return state


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

    ckpt = resolve_checkpoint(path)
    state = load_checkpoint(ckpt)
    cfg = build_config(state["config"])
    method = METHODS[cfg.train.method](cfg)
    method.load_state_dict(state["model"])
    return method.to(device).eval(), cfg, state
