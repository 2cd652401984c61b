"""Training the ensemble members of `openjepa bench physics`: one after the other in this process or several at
once in their own processes (--jobs, with a progress line and a clean stop on Ctrl-C / SIGTERM), keeping finished
runs and resuming stopped ones from their checkpoints (--reuse), and recording each member's training seconds."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import signal
import threading
import time
from pathlib import Path
from typing import Any

import torch

from openjepa.train.logging import read_metrics
from openjepa.bench.reuse import PARTIAL, TRAINED, kept_run, resumable_step, train_or_keep, train_run
from openjepa.config import build_config


_HINT = "; the same command with --reuse goes on from there, keeping the finished members"


def _what(cfg, preset: str) -> str:
    return f"{cfg.train.method}, {cfg.train.steps} steps of {preset}"


def _train_one(cfg, run_dir: Path, label: str, preset: str, at: int | None) -> tuple[float | None, bool, int | None]:
    """One member: reuse.train_run (from scratch, or resumed from its checkpoint at step `at`)."""
    return train_run(cfg, run_dir, label, at, "physics", _what(cfg, preset), _HINT)


def train_member(cfg, run_dir: Path, label: str, preset: str, reuse: bool) -> tuple[float | None, bool, int | None]:
    """Train one ensemble member into run_dir, or (reuse) keep or resume the run there (reuse.train_or_keep)."""
    return train_or_keep(cfg, run_dir, label, reuse, "physics", what=_what(cfg, preset), hint=_HINT)


def member_log(run_dir: Path) -> Path:
    """Where a member trained in its own process (train_members with jobs > 1) writes its console output."""
    return run_dir.with_name(run_dir.name + ".log")


def _member_process(cfg_dict: dict[str, Any], run_dir: str, label: str, preset: str, at: int | None) -> None:
    """Body of a member's process: _train_one with its console output appended to member_log(run_dir)."""
    run_dir_p = Path(run_dir)
    with open(member_log(run_dir_p), "a", buffering=1) as f, contextlib.redirect_stdout(f), \
            contextlib.redirect_stderr(f):
        try:
            _train_one(build_config(cfg_dict), run_dir_p, label, preset, at)
        except SystemExit as e:  # stopped: say so in the log too
            print(e)
            raise


def _progress(run_dir: Path) -> tuple[int, float | None]:
    """(last logged step, its samples/s) from a member's metrics.jsonl; (0, None) before the first row."""
    for row in reversed(read_metrics(run_dir)):
        if "samples_per_s" in row:
            return int(row["step"]), float(row["samples_per_s"])
    return 0, None


def _eta_seconds(first: tuple[float, int] | None, now: float, step: int, steps: int, batch: int,
                 rate: float | None) -> float | None:
    """Seconds a member has left: from its pace since the bench first saw it logging (first = (time, step)),
    which is steadier than the last logged window's rate (used until there is such a pace); None if neither."""
    if first is not None and step > first[1] and now > first[0]:
        return (steps - step) * (now - first[0]) / (step - first[1])
    return (steps - step) * batch / rate if rate else None


class _Stop(Exception):
    pass


def train_members(specs: list[tuple[Any, Path, str]], preset: str, reuse: bool, jobs: int = 1,
                  report_every: float = 60.0) -> list[tuple[float | None, bool, int | None]]:
    """Train (or, with reuse, keep or resume) each (cfg, run_dir, label) member -> [train_member's result].

    jobs = 1: one after the other, in this process. jobs > 1: up to `jobs` members at once, each in its own
    process (spawned; console output in member_log(run_dir)), with a progress line every `report_every` seconds.
    Ctrl-C or SIGTERM asks every running member to checkpoint and stop, then stops the bench (--reuse goes on)."""
    if jobs <= 1:
        return [train_member(cfg, run_dir, label, preset, reuse) for cfg, run_dir, label in specs]
    got: list[tuple[float | None, bool, int | None] | None] = [kept_run(cfg, d, label, reuse, "physics")
                                                              for cfg, d, label in specs]
    todo = [i for i, g in enumerate(got) if g is None]
    ctx = multiprocessing.get_context("spawn")
    for start in range(0, len(todo), jobs):
        group = todo[start:start + jobs]
        procs, launched = {}, time.time()
        for i in group:
            cfg, run_dir, label = specs[i]
            at = resumable_step(run_dir, cfg) if reuse else None
            if at is None:
                member_log(run_dir).unlink(missing_ok=True)  # a resumed member's log goes on
            run_dir.parent.mkdir(parents=True, exist_ok=True)
            what = "training" if at is None else f"resuming from step {at}"
            print(f"== bench physics: {what} {label} ({cfg.train.method}, {cfg.train.steps} steps of {preset}, "
                  f"{cfg.train.threads or torch.get_num_threads()} thread(s)) in its own process; log "
                  f"{member_log(run_dir)}")
            procs[i] = ctx.Process(target=_member_process, args=(cfg.to_dict(), str(run_dir), label, preset, at))
            procs[i].start()

        def stop(signum, frame):
            raise _Stop(signal.Signals(signum).name)

        main = threading.current_thread() is threading.main_thread()
        old = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)} if main else {}
        if main:
            signal.signal(signal.SIGTERM, stop)
        t0 = last = time.time()
        first: dict[int, tuple[float, int]] = {}  # member -> (time, step) when first seen logging
        stopped = None
        try:
            while any(p.is_alive() for p in procs.values()):
                time.sleep(min(1.0, report_every))
                if time.time() - last >= report_every:
                    last = time.time()
                    parts, etas = [], []
                    for i in group:
                        cfg, run_dir, label = specs[i]
                        step, rate = _progress(run_dir)
                        parts.append(f"{label} step {step}/{cfg.train.steps}")
                        if rate:
                            first.setdefault(i, (last, step))
                        left = _eta_seconds(first.get(i), last, step, cfg.train.steps, cfg.data.batch_size, rate)
                        if left is not None:
                            etas.append(left)
                    eta = f"; ETA {max(etas):.0f}s" if etas else ""
                    print(f"== bench physics: {', '.join(parts)} ({last - t0:.0f}s{eta})", flush=True)
        except (KeyboardInterrupt, _Stop) as e:
            stopped = str(e) or "SIGINT"
        finally:
            for sig in old:  # a second signal must not cut short the members' checkpointing
                signal.signal(sig, signal.SIG_IGN)
            for p in procs.values():
                if p.is_alive():
                    p.terminate()  # SIGTERM: the training loop checkpoints its step and returns
            for p in procs.values():
                p.join()
            for sig, handler in old.items():
                signal.signal(sig, handler)
        if stopped:
            raise SystemExit(f"bench physics stopped ({stopped}): the members in training saved a checkpoint{_HINT}")
        for i in group:
            cfg, run_dir, label = specs[i]
            info, part = run_dir / TRAINED, run_dir / PARTIAL
            if procs[i].exitcode != 0 and part.exists() and part.stat().st_mtime >= launched:
                raise SystemExit(f"bench physics: the {label} run stopped at step "
                                 f"{json.loads(part.read_text())['step']} (log {member_log(run_dir)}){_HINT}")
            if procs[i].exitcode != 0 or not info.exists():
                log = member_log(run_dir)
                tail = "\n".join(log.read_text().splitlines()[-5:]) if log.exists() else ""
                raise SystemExit(f"bench physics: the {label} run failed (exit code {procs[i].exitcode}; its log "
                                 f"{log} ends:\n{tail}){_HINT}")
            done = json.loads(info.read_text())
            got[i] = done["train_seconds"], False, done.get("resumed_from_step")
    assert all(g is not None for g in got)
    return got  # type: ignore[return-value]


def default_jobs(members: int, threads: int, quick: bool) -> int:
    """Members trained at once when --jobs is not given: the full bench trains its members side by side, one
    per thread at most; the quick bench one after the other (its trainings are too short for the start of a
    process per member to pay)."""
    return 1 if quick else max(1, min(members, threads))
