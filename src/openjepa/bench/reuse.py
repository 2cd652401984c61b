"""Which earlier training runs a bench may keep (`--reuse`): a run stands for a config when its last checkpoint
finished the config's steps with the same settings (runtime keys such as paths and threads aside)."""

from __future__ import annotations

from pathlib import Path

from openjepa.config import build_config
from openjepa.train.checkpoint import load_checkpoint
from openjepa.train.loop import config_diff


def last_checkpoint(run_dir: Path, cfg) -> tuple[int, list[str]] | None:
    """(step, config_diff against cfg) of run_dir's checkpoints/last.pt; None when there is none."""
    ckpt = run_dir / "checkpoints" / "last.pt"
    if not ckpt.exists():
        return None
    state = load_checkpoint(ckpt)
    return int(state.get("step", -1)), config_diff(build_config(state["config"]), cfg)


def finished_run(run_dir: Path, cfg, ignore: tuple[str, ...] = ()) -> str | None:
    """Why the training run in run_dir cannot stand for `cfg` (None: it can): missing, unfinished, or trained
    with other settings (runtime keys aside, and the config sections named in `ignore`, e.g. "eval": settings
    that score a run but do not train it)."""
    last = last_checkpoint(run_dir, cfg)
    if last is None:
        return "no checkpoints/last.pt"
    step, diff = last
    diff = [d for d in diff if d.split(".", 1)[0] not in ignore]
    if step != cfg.train.steps:
        return f"stopped at step {step} of {cfg.train.steps}"
    return f"other settings ({'; '.join(diff)})" if diff else None
