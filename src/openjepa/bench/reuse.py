"""Which earlier training runs a bench may keep (`--reuse`), and training a bench's runs so that a later `--reuse`
can keep or resume them. A run stands for a config when its last checkpoint finished the config's steps with the
same settings (runtime keys such as paths and threads aside, and the config sections a bench names in `ignore`,
e.g. "eval": settings that score a run but do not train it). Every bench (physics, planning, images_search)
trains through train_or_keep / train_run, so they keep, resume and time their runs the same way: a finished run
writes bench_train.json ({"train_seconds", "resumed_from_step"}) beside its checkpoints, a run stopped by a signal
writes PARTIAL (its seconds so far and the step it stopped at), and a resumed run's seconds add up its sessions.
write_result writes every bench's result file."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from openjepa.config import build_config
from openjepa.train.checkpoint import load_checkpoint
from openjepa.train.loop import config_diff, stop_if_unfinished, train

PARTIAL = "bench_train_partial.json"  # a stopped run's training seconds so far and the step it stopped at
TRAINED = "bench_train.json"  # a finished run's training seconds (and the step it was resumed from, if any)


def _differs(diff: list[str], ignore: tuple[str, ...]) -> list[str]:
    """The entries of a config_diff that matter: not in an ignored section."""
    return [d for d in diff if d.split(".", 1)[0] not in ignore]


def last_checkpoint(run_dir: Path, cfg) -> tuple[int, list[str]] | None:
    """(step, config_diff against cfg) of run_dir's checkpoints/last.pt; None when there is none."""
    ckpt = run_dir / "checkpoints" / "last.pt"
    if not ckpt.exists():
        return None
    state = load_checkpoint(ckpt)
    return int(state.get("step", -1)), config_diff(build_config(state["config"]), cfg)


def finished_run(run_dir: Path, cfg, ignore: tuple[str, ...] = ()) -> str | None:
    """Why the training run in run_dir cannot stand for `cfg` (None: it can): missing, unfinished, or trained
    with other settings (runtime keys and the sections in `ignore` aside)."""
    last = last_checkpoint(run_dir, cfg)
    if last is None:
        return "no checkpoints/last.pt"
    step, diff = last[0], _differs(last[1], ignore)
    if step != cfg.train.steps:
        return f"stopped at step {step} of {cfg.train.steps}"
    return f"other settings ({'; '.join(diff)})" if diff else None


def kept_run(cfg, run_dir: Path, label: str, reuse: bool, bench: str,
             ignore: tuple[str, ...] = ()) -> tuple[float | None, bool, None] | None:
    """With `reuse`, the finished run in run_dir if it matches cfg -> (its training seconds from the TRAINED file
    written when it was trained, None if absent; True; None); else None (it must be trained or resumed)."""
    if not reuse:
        return None
    why = finished_run(run_dir, cfg, ignore)
    if why is None:
        info = run_dir / TRAINED
        print(f"== bench {bench}: reusing the finished {label} run in {run_dir}")
        return (json.loads(info.read_text())["train_seconds"] if info.exists() else None), True, None
    if run_dir.exists():
        print(f"== bench {bench}: cannot reuse {run_dir}: {why}")
    return None


def resumable_step(run_dir: Path, cfg, ignore: tuple[str, ...] = ()) -> int | None:
    """The step of an unfinished run in run_dir trained with cfg's settings (runtime keys and `ignore` aside)."""
    last = last_checkpoint(run_dir, cfg)
    return last[0] if last is not None and 0 < last[0] < cfg.train.steps and not _differs(last[1], ignore) else None


def train_run(cfg, run_dir: Path, label: str, at: int | None, bench: str, what: str = "",
              hint: str = "; the same command with --reuse goes on from there") -> tuple[float | None, bool, int | None]:
    """Train cfg into run_dir, from scratch (`at` None: run_dir is emptied first) or resumed from its checkpoint at
    step `at` (from resumable_step); writes TRAINED when finished, PARTIAL when stopped by a signal (then
    SystemExit). -> (seconds, False, at); a resumed run's seconds add up its sessions (None when one of them is
    unknown: a run killed without the chance to record them). `what` describes the run in the first line."""
    prev: float | None = 0.0
    if at is None:
        if run_dir.exists():
            shutil.rmtree(run_dir)
        print(f"== bench {bench}: training {label} ({what or f'{cfg.train.steps} steps'})")
    else:
        part = run_dir / PARTIAL
        info = json.loads(part.read_text()) if part.exists() else {}
        prev = info.get("train_seconds") if info.get("step") == at else None
        print(f"== bench {bench}: resuming {label} from its checkpoint at step {at} of {cfg.train.steps}")
    t0 = time.time()
    # resuming: resumable_step allowed only runtime keys and the bench's ignored sections to differ, so force is safe
    summary = train(cfg, run_dir, resume=at is not None, force=at is not None)
    secs = round(time.time() - t0, 1)
    total = None if prev is None else round(prev + secs, 1)
    if not summary["finished"]:
        (run_dir / PARTIAL).write_text(json.dumps({"train_seconds": total, "step": summary["steps"]}) + "\n")
    stop_if_unfinished(summary, f"bench {bench}: the {label} run", hint)
    (run_dir / TRAINED).write_text(json.dumps({"train_seconds": total, "resumed_from_step": at}) + "\n")
    return total, False, at


def train_or_keep(cfg, run_dir: Path, label: str, reuse: bool, bench: str, ignore: tuple[str, ...] = (),
                  what: str = "", hint: str = "; the same command with --reuse goes on from there"
                  ) -> tuple[float | None, bool, int | None]:
    """Train cfg into run_dir, or (reuse) keep the finished run there if it matches cfg, or (reuse) resume the
    unfinished one there if it matches cfg -> (training seconds, reused?, resumed from step or None)."""
    kept = kept_run(cfg, run_dir, label, reuse, bench, ignore)
    if kept is not None:
        return kept
    return train_run(cfg, run_dir, label, resumable_step(run_dir, cfg, ignore) if reuse else None, bench, what, hint)


def write_result(out: Path, result: dict) -> None:
    """A bench's result file (JSON, indented); its folder is made if missing."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
