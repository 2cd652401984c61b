"""Training the ensemble members of `openjepa bench physics`: one after the other in this process or several at
once in their own processes (--jobs, with a progress line and a clean stop on Ctrl-C / SIGTERM), keeping finished
runs and resuming stopped ones from their checkpoints (--reuse), and recording each member's training seconds."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import shutil
import signal
import threading
import time
from pathlib import Path
from typing import Any

import torch

from openjepa.train.logging import read_metrics
from openjepa.bench.reuse import finished_run, last_checkpoint
from openjepa.config import build_config
from openjepa.train.loop import stop_if_unfinished, train


def reusable_member(cfg, run_dir: Path, label: str, reuse: bool) -> tuple[float | None, bool, None] | None:
    """With `reuse`, the finished run in run_dir if it matches cfg -> (its training seconds from the bench_train.json
    written when it was trained, None if absent; True; None); else None (it must be trained or resumed)."""
    if not reuse:
        return None
    why = finished_run(run_dir, cfg)
    if why is None:
        info = run_dir / "bench_train.json"
        print(f"== bench physics: reusing the finished {label} run in {run_dir}")
        return (json.loads(info.read_text())["train_seconds"] if info.exists() else None), True, None
    print(f"== bench physics: cannot reuse {run_dir}: {why}")
    return None


PARTIAL = "bench_train_partial.json"  # a stopped member's training seconds so far and the step it stopped at


def resumable_step(run_dir: Path, cfg) -> int | None:
    """The step of an unfinished run in run_dir trained with cfg's settings (runtime keys aside), else None."""
    last = last_checkpoint(run_dir, cfg)
    return last[0] if last is not None and 0 < last[0] < cfg.train.steps and not last[1] else None


def _train_one(cfg, run_dir: Path, label: str, preset: str, at: int | None) -> tuple[float | None, bool, int | None]:
    """Train a member into run_dir, from scratch or (`at`, from resumable_step) resumed from its checkpoint there;
    writes bench_train.json when finished, PARTIAL when stopped (then SystemExit). -> (seconds, False, resumed
    from step or None); the seconds of a resumed run add up its sessions (None when one of them is unknown: a
    run killed without the chance to record them)."""
    prev: float | None = 0.0
    if at is None:
        if run_dir.exists():
            shutil.rmtree(run_dir)
        print(f"== bench physics: training {label} ({cfg.train.method}, {cfg.train.steps} steps of {preset})")
    else:
        part = run_dir / PARTIAL
        info = json.loads(part.read_text()) if part.exists() else {}
        prev = info.get("train_seconds") if info.get("step") == at else None
        print(f"== bench physics: resuming {label} from its checkpoint at step {at} of {cfg.train.steps}")
    t0 = time.time()
    summary = train(cfg, run_dir, resume=at is not None)
    secs = round(time.time() - t0, 1)
    total = None if prev is None else round(prev + secs, 1)
    if not summary["finished"]:
        (run_dir / PARTIAL).write_text(json.dumps({"train_seconds": total, "step": summary["steps"]}) + "\n")
    stop_if_unfinished(summary, f"bench physics: the {label} run",
                       "; the same command with --reuse goes on from there, keeping the finished members")
    (run_dir / "bench_train.json").write_text(json.dumps({"train_seconds": total, "resumed_from_step": at}) + "\n")
    return total, False, at


def train_member(cfg, run_dir: Path, label: str, preset: str, reuse: bool) -> tuple[float | None, bool, int | None]:
    """Train one ensemble member into run_dir, or (reuse) keep the finished run there if it matches cfg, or
    (reuse) resume the unfinished one there if it matches cfg. -> (training seconds, reused?, resumed from step);
    a reused run's seconds come from the bench_train.json written when it was trained (None if absent)."""
    kept = reusable_member(cfg, run_dir, label, reuse)
    if kept is not None:
        return kept
    return _train_one(cfg, run_dir, label, preset, resumable_step(run_dir, cfg) if reuse else None)


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
    got: list[tuple[float | None, bool, int | None] | None] = [reusable_member(cfg, d, label, reuse)
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
        hint = "; the same command with --reuse goes on from there, keeping the finished members"
        if stopped:
            raise SystemExit(f"bench physics stopped ({stopped}): the members in training saved a checkpoint{hint}")
        for i in group:
            cfg, run_dir, label = specs[i]
            info, part = run_dir / "bench_train.json", run_dir / PARTIAL
            if procs[i].exitcode != 0 and part.exists() and part.stat().st_mtime >= launched:
                raise SystemExit(f"bench physics: the {label} run stopped at step "
                                 f"{json.loads(part.read_text())['step']} (log {member_log(run_dir)}){hint}")
            if procs[i].exitcode != 0 or not info.exists():
                log = member_log(run_dir)
                tail = "\n".join(log.read_text().splitlines()[-5:]) if log.exists() else ""
                raise SystemExit(f"bench physics: the {label} run failed (exit code {procs[i].exitcode}; its log "
                                 f"{log} ends:\n{tail}){hint}")
            done = json.loads(info.read_text())
            got[i] = done["train_seconds"], False, done.get("resumed_from_step")
    assert all(g is not None for g in got)
    return got  # type: ignore[return-value]


def default_jobs(members: int, threads: int, quick: bool) -> int:
    """Members trained at once when --jobs is not given: the full bench trains its members side by side, one
    per thread at most; the quick bench one after the other (its trainings are too short for the start of a
    process per member to pay)."""
    return 1 if quick else max(1, min(members, threads))
