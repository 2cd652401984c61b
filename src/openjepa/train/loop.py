"""The training loop, one for every method. Each step reads top to bottom like a recipe:

    schedules -> batch (augment, masks; CPU, seeded by step) -> train_step (train/step.py: method.step under
    autocast, backward, clip, optimiser step, method.on_step_end e.g. the EMA) -> a non-finite step is skipped,
    rolled back or stops the run -> log -> online monitor (train/monitor.py: collapse panel, kNN probe, video
    gain over copy-last) -> checkpoint

Everything random is a function of (seed, step), so `resume=True` continues exactly where the last
checkpoint left off (fp32 on CPU gives bit-identical metrics). Streaming datasets (train/run.py STREAMING) keep
that contract: data.workers DataLoader processes decode and crop each rank's rows of step k's global batch, the
method draws the masks in this process; unreadable files are replaced, logged (bad_file rows) and counted
against data.max_bad_fraction over the whole run (the count travels with the checkpoints).

Reliability: checkpoints are atomic and the last `train.keep_last` are kept (train/checkpoint.py); SIGTERM or
SIGINT finish the current step and checkpoint it; a non-finite loss or gradient skips the step (the weights
never see it), and `train.max_bad_steps` such steps in a row roll back to the newest valid checkpoint with the
learning rate scaled by `train.rollback_lr_factor` (at most `train.max_rollbacks` times), or stop with a report
(failure.json) naming the step, the offending tensor and the last finite metrics.
"""

from __future__ import annotations

import json
import math
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from tqdm.auto import tqdm

from openjepa.config import Config, build_config, config_to_yaml
from openjepa.data.stream import BatchStream
from openjepa.data.streaming import BadDataError, ClipDecoder, ImageDecoder, StreamingSource
from openjepa.methods import METHODS
from openjepa.train.checkpoint import latest_checkpoint, save_checkpoint, save_step, step_files
from openjepa.train.distributed import (Dist, any_rank, barrier, broadcast_parameters, full_state, init_distributed,
                                        load_sharded, mean_over_ranks, reshard, shard_method)
from openjepa.train.logging import MetricsLogger
from openjepa.train.monitor import Monitor, build_monitor, build_streaming_monitor, panel_warnings, run_monitor
from openjepa.train.optim import apply_schedules, build_optimizer
from openjepa.train.precision import resolve_precision
from openjepa.train.run import STREAMING, load_train_data, provenance, select_device
from openjepa.train.step import StepResult, step_batch, stream_batch, train_step, trainable
from openjepa.validate import resolve_config


class StopSignals:
    """While active (main thread only): SIGTERM or SIGINT asks the loop to finish its step, checkpoint and
    return; a second SIGINT interrupts at once (KeyboardInterrupt, nothing more is saved)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = signum

    def __exit__(self, *exc: Any) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def _quiet(*args: Any) -> None:
    pass


class NullLogger:
    """The metrics logger of ranks other than 0."""

    def log(self, row: dict[str, Any]) -> None:
        pass

    def truncate_after(self, step: int) -> None:
        pass

    def close(self) -> None:
        pass


@dataclass
class LoopState:
    """The loop's counters. Checkpoints carry step, best, lr_scale and the two warnings (a resumed or rolled-back
    run remembers its warnings); the rest belong to this process."""
    step: int = 0  # steps done: the index of the next step
    best: float = -math.inf  # the best online score so far (kNN top-1, else RankMe), the one in best.pt
    lr_scale: float = 1.0  # the rollbacks' learning-rate factors, multiplied
    collapse_warned: bool = False
    stall_warned: bool = False
    bad: int = 0  # non-finite steps in a row
    rollbacks: int = 0
    saved: int = 0  # step of the newest step checkpoint
    last_loss: float = math.nan  # at the newest logged step, averaged over ranks
    last_row: dict[str, Any] = field(default_factory=dict)  # the newest logged training row
    stopped_by: str | None = None  # the signal that stopped the run
    seconds_before: float = 0.0  # training seconds of the invocations this one resumed (from the checkpoint)
    started: float = field(default_factory=time.time)  # when this invocation's loop began

    def train_seconds(self) -> float:
        """Wall seconds spent in the training loop so far, over every invocation of the run (resumes add up; a
        rollback keeps the time it cost). Checkpoints carry it, metrics rows log it as `elapsed_s`."""
        return self.seconds_before + time.time() - self.started

    def restore(self, ckpt: dict[str, Any]) -> None:
        self.step = int(ckpt["step"])
        self.best, self.lr_scale = float(ckpt["best"]), float(ckpt.get("lr_scale", 1.0))
        self.collapse_warned |= bool(ckpt.get("collapse_warned", False))  # a rollback never forgets a warning
        self.stall_warned |= bool(ckpt.get("stall_warned", False))


@dataclass
class Run:
    """What the loop's pieces share: the config, the run's folder, this process's place and its outputs."""
    cfg: Config
    dir: Path
    device: torch.device
    ddp: Dist
    log: Callable[[str], None]
    logger: MetricsLogger | NullLogger

    @property
    def fsdp(self) -> bool:
        return self.cfg.train.parallel == "fsdp"

    @property
    def ckpt_dir(self) -> Path:
        return self.dir / "checkpoints"


@dataclass
class Checkpoints:
    """Writes the run's checkpoints (rank 0) and loads one back into the model, the optimiser and the loop's
    state. Under FSDP writing is a collective (the shards are gathered): every rank calls save and save_as."""
    run: Run
    method: torch.nn.Module
    opt: torch.optim.Optimizer
    meta: dict[str, Any]
    stream: Any = None  # a StreamingSource: its unreadable files travel with the checkpoints

    def snapshot(self, state: LoopState) -> dict[str, Any]:
        if self.run.fsdp:
            reshard(self.method)
        model_sd, opt_sd = self.method.state_dict(), self.opt.state_dict()
        if self.run.fsdp:
            model_sd, opt_sd = full_state(model_sd), full_state(opt_sd)
        return {"model": model_sd, "optimizer": opt_sd, "step": state.step, "best": state.best,
                "lr_scale": state.lr_scale, "rng": torch.get_rng_state(), "config": self.run.cfg.to_dict(),
                "meta": self.meta, "collapse_warned": state.collapse_warned, "stall_warned": state.stall_warned,
                "train_seconds": round(state.train_seconds(), 3),
                **({"bad_files": list(self.stream.bad.items())} if isinstance(self.stream, StreamingSource) else {})}

    def save(self, state: LoopState) -> None:
        """A step checkpoint (step_XXXXXXXX.pt and last.pt; the newest train.keep_last are kept)."""
        ckpt = self.snapshot(state) if (self.run.ddp.main or self.run.fsdp) else None
        if self.run.ddp.main:
            save_step(ckpt, self.run.ckpt_dir, self.run.cfg.train.keep_last)
        state.saved = state.step

    def save_as(self, state: LoopState, path: Path) -> None:
        ckpt = self.snapshot(state) if (self.run.ddp.main or self.run.fsdp) else None
        if self.run.ddp.main:
            save_checkpoint(ckpt, path)

    def restore(self, ckpt: dict[str, Any], state: LoopState) -> None:
        if self.run.fsdp:
            reshard(self.method)
            load_sharded(self.method, self.opt, ckpt["model"], ckpt["optimizer"])
        else:
            self.method.load_state_dict(ckpt["model"])
            self.opt.load_state_dict(ckpt["optimizer"])
        state.restore(ckpt)
        torch.set_rng_state(ckpt["rng"])
        if isinstance(self.stream, StreamingSource):  # data.max_bad_fraction counts over the whole run
            self.stream.reset_bad([(str(n), str(r)) for n, r in ckpt.get("bad_files", [])])


class Rate:
    """Samples per second since the last logged row."""

    def __init__(self) -> None:
        self.t, self.n = time.time(), 0

    def add(self, n: int) -> None:
        self.n += n

    def take(self) -> float:
        rate = self.n / max(time.time() - self.t, 1e-9)
        self.t, self.n = time.time(), 0
        return rate


def train(cfg: Config, run_dir: str | Path, resume: bool = False, log=print, force: bool = False) -> dict[str, Any]:
    """Train `cfg.train.method` into `run_dir`; returns a summary dict. See the module docstring.

    resume: continue from the newest valid checkpoint; a different config is refused unless `force`.
    train.threads sets torch's threads for the run only: the caller's count is back when train returns or raises."""
    resolve_config(cfg)  # names, reg.ema default (`openjepa train` also refuses ignored keys: check_config)
    threads = torch.get_num_threads()
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    try:
        return _train(cfg, Path(run_dir), resume, log, force)
    finally:
        torch.set_num_threads(threads)


def _train(cfg: Config, run_dir: Path, resume: bool, log, force: bool) -> dict[str, Any]:
    tc = cfg.train
    torch.manual_seed(tc.seed)
    ddp, device = place_process(cfg)
    if not ddp.main:  # rank 0 alone logs, evaluates and writes files
        log = _quiet
    tc.precision = resolve_precision(cfg, device, log)  # auto -> bf16 | fp32, saved so in config.yaml
    meta = open_run_dir(cfg, run_dir, resume, ddp.main)
    monitor, stream = open_data(cfg, ddp, device)
    method = build_method(cfg, device, ddp)
    opt = build_optimizer(method, cfg.optim)
    run = Run(cfg, run_dir, device, ddp, log, MetricsLogger(run_dir) if ddp.main else NullLogger())
    ckpts = Checkpoints(run, method, opt, meta, stream)
    batches = StepBatches(method, stream, cfg, ddp)
    state = LoopState()
    if resume:
        resume_run(run, ckpts, state, force)

    params = trainable(method)
    n_params = sum(p.numel() for p in params)
    log(f"training {tc.method} on {cfg.data.dataset} ({stream.n} samples, {stream.steps_per_epoch} steps/epoch) "
        f"for {tc.steps} steps on {device} ({tc.precision}); {n_params / 1e6:.2f}M trainable parameters; run dir {run_dir}")
    end = tc.steps if not tc.stop_after else min(tc.steps, state.step + tc.stop_after)
    bar = tqdm(total=tc.steps, initial=state.step, unit="step", desc=tc.method, disable=not (tc.progress and ddp.main),
               dynamic_ncols=True)
    rate = Rate()
    state.started = time.time()
    method.train()
    with StopSignals() as stop:
        try:
            while state.step < end:
                step = state.step
                lr, wd = apply_schedules(opt, step, tc.steps, cfg.optim, state.lr_scale)
                batch = batches.get(step)
                result = train_step(method, opt, batch, step, cfg, device, params, ddp.world, run.fsdp)
                if result.skipped is not None:
                    if skip_or_roll_back(run, ckpts, state, result.skipped, step + 1):
                        bar.n = state.step
                    continue
                state.step, state.bad = step + 1, 0
                rate.add(stream.batch_size)
                bar.update(1)
                if state.step % tc.log_every == 0 or state.step == end:
                    log_step(run, state, result, lr, wd, rate, stream, bar)
                    report_bad_files(run, state, stream)
                if (ddp.main or run.fsdp) and tc.monitor_every and (state.step % tc.monitor_every == 0
                                                                    or state.step == tc.steps):
                    monitor_step(run, state, ckpts, monitor, method, bar)
                stopping = any_rank(stop.signum is not None, ddp.world, device)
                if state.step % tc.ckpt_every == 0 or state.step == end or stopping:
                    report_bad_files(run, state, stream)  # the checkpoint's count = the files logged
                    ckpts.save(state)
                if stopping:
                    state.stopped_by = signal.Signals(stop.signum or signal.SIGTERM).name
                    log(f"{state.stopped_by}: saved a checkpoint at step {state.step}; resume with "
                        f"`openjepa train --resume {run_dir}`")
                    break
            if state.step > state.saved and state.stopped_by is None:  # the last steps were skipped as non-finite
                report_bad_files(run, state, stream)
                ckpts.save(state)
        except BadDataError:
            if isinstance(stream, StreamingSource):
                log_bad_files(run, state, stream.new_bad_files())  # the files of the batch that crossed the limit
            raise
        except KeyboardInterrupt:
            log(f"interrupted: the newest checkpoint is at step {state.saved}; resume with "
                f"`openjepa train --resume {run_dir}`")
            raise
        finally:
            bar.close()
            batches.close()  # stops the DataLoader workers
            run.logger.close()

    finished = state.step >= tc.steps
    if finished and any_rank(ddp.main and not (run.ckpt_dir / "best.pt").exists(), ddp.world, device):
        ckpts.save_as(state, run.ckpt_dir / "best.pt")
    barrier(ddp.world)
    return {"run_dir": str(run_dir), "steps": state.step, "finished": finished, "final_loss": state.last_loss,
            "collapse_warned": state.collapse_warned, "stall_warned": state.stall_warned,
            "stopped_by": state.stopped_by, "rollbacks": state.rollbacks}


def open_data(cfg: Config, ddp: Dist, device: torch.device) -> tuple[Monitor, BatchStream | StreamingSource]:
    """The online monitor's held-out samples and the training batches: in memory (DATASETS, a BatchStream) or
    streamed from files (STREAMING: a StreamingSource decoding this rank's rows in data.workers processes)."""
    d, seed = cfg.data, cfg.train.seed
    if d.dataset not in STREAMING:
        x_all, y_all = load_train_data(cfg)
        monitor, x_train = build_monitor(cfg, x_all, y_all)
        return monitor, BatchStream(x_train, d.batch_size, seed)
    records = STREAMING[d.dataset](cfg)
    view = ClipDecoder(d.img_size, cfg.video.frames, d.channels) if records.kind == "clip" \
        else ImageDecoder(d.img_size, d.channels, crop_scale=None)  # the monitor's evaluation view
    monitor, train_records = build_streaming_monitor(cfg, records, view)
    return monitor, StreamingSource(train_records, METHODS[cfg.train.method].stream_decoder(cfg), d.batch_size, seed,
                                    ddp.rank, ddp.world, d.workers, device.type == "cuda", d.prefetch,
                                    d.max_bad_fraction)


class StepBatches:
    """This rank's collated batch of each step. In memory: every rank collates the global batch and keeps its rows
    (step_batch). Streamed: the source's iterator yields this rank's decoded rows and the method adds the masks
    (stream_batch); the iterator (re)starts wherever the loop asks for a step other than the next one (the first
    step, a resume, a rollback), since a step's content is a function of (seed, step) alone."""

    def __init__(self, method: torch.nn.Module, stream: BatchStream | StreamingSource, cfg: Config, ddp: Dist):
        self.method, self.stream, self.cfg, self.ddp = method, stream, cfg, ddp
        self._it: Any = None
        self._next = -1

    def get(self, step: int) -> dict[str, torch.Tensor]:
        seed, rank, world = self.cfg.train.seed, self.ddp.rank, self.ddp.world
        if isinstance(self.stream, BatchStream):
            return step_batch(self.method, self.stream, step, seed, rank, world)
        if step != self._next:
            self.close()
            self._it = self.stream.batches(step)
        b = next(self._it)
        if b["step"] != step:
            raise RuntimeError(f"the streaming source gave step {b['step']}'s batch for step {step}")
        self._next = step + 1
        return stream_batch(self.method, b, seed, self.cfg.data.batch_size, rank, world)

    def close(self) -> None:
        if self._it is not None:
            self._it.close()  # drops the DataLoader iterator: its workers exit
            self._it, self._next = None, -1


def report_bad_files(run: Run, state: LoopState, stream: BatchStream | StreamingSource) -> None:
    """Streaming data: the unreadable files met since the last report (every rank's, gathered) are logged, and
    every rank counts every rank's files, so data.max_bad_fraction stops all ranks alike (BadDataError).
    Called on every rank at the same steps (log and checkpoint steps)."""
    if not isinstance(stream, StreamingSource):
        return
    bad = stream.new_bad_files()
    if run.ddp.world > 1:
        lists: list[Any] = [None] * run.ddp.world
        torch.distributed.all_gather_object(lists, bad)
        bad = list(dict(pair for part in lists for pair in part).items())  # a file two ranks met: once
        stream.record_bad(bad)
        stream.new_bad_files()  # the other ranks' files just entered this rank's count: reported here
    log_bad_files(run, state, bad, stream)


def log_bad_files(run: Run, state: LoopState, bad: list[tuple[str, str]], stream: Any = None) -> None:
    """One metrics row per unreadable file ({"step", "bad_file", "reason"}) and a warning line."""
    for name, reason in bad:
        run.logger.log({"step": state.step, "bad_file": name, "reason": reason})
    if bad:
        so_far = f"; {len(stream.bad)} of {stream.n} files so far (limit data.max_bad_fraction=" \
                 f"{stream.max_bad_fraction:g})" if stream is not None else ""
        run.log(f"WARNING: step {state.step}: {len(bad)} unreadable file(s) replaced by other samples, e.g. "
                f"{bad[0][0]} ({bad[0][1]}){so_far}; listed in metrics.jsonl (bad_file)")


def place_process(cfg: Config) -> tuple[Dist, torch.device]:
    """This process's rank (joining torchrun's process group if launched by it) and device."""
    ddp = init_distributed()
    device = select_device(cfg.train.device)
    if device.type == "cuda" and ddp.world > 1:
        device = torch.device("cuda", ddp.local_rank)
        torch.cuda.set_device(device)
    return ddp, device


def open_run_dir(cfg: Config, run_dir: Path, resume: bool, main: bool) -> dict[str, Any]:
    """Refuse to start over a run that is not being resumed; rank 0 writes config.yaml for a new run. Returns the
    provenance (git SHA, versions, machine) that goes with every checkpoint."""
    ckpt_dir = run_dir / "checkpoints"
    has_run = (ckpt_dir / "last.pt").exists() or bool(step_files(ckpt_dir))
    if not resume and has_run:
        raise FileExistsError(f"{run_dir} already holds a run; resume it with `openjepa train --resume {run_dir}` "
                              f"or choose another --out")
    meta = provenance()
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        if not resume:
            (run_dir / "config.yaml").write_text(config_to_yaml(cfg, meta))
    return meta


def build_method(cfg: Config, device: torch.device, ddp: Dist) -> torch.nn.Module:
    """The method on its device, with the same weights on every rank (FSDP: sharded over the ranks)."""
    method = METHODS[cfg.train.method](cfg).to(device)
    if cfg.train.parallel == "fsdp":
        if not torch.distributed.is_initialized():
            raise ValueError("train.parallel=fsdp needs a process group: launch with torchrun "
                             "(e.g. torchrun --nproc_per_node=2 -m openjepa train ...)")
        shard_method(method)  # same seed on every rank: the shards come from identical full weights
    else:
        broadcast_parameters(method, ddp.world)
    return method


def resume_run(run: Run, ckpts: Checkpoints, state: LoopState, force: bool) -> None:
    """Load the newest valid checkpoint (after removing writes a kill left unfinished) and drop the metrics rows
    logged after it. A config that differs from the run's own is refused unless `force`."""
    ckpt_dir = run.ckpt_dir
    for stale in [*ckpt_dir.glob("*.tmp"), *ckpt_dir.glob("last.pt.*.link")] if run.ddp.main else []:
        stale.unlink(missing_ok=True)  # writes cut by a kill
        run.log(f"removed {stale.name}, an unfinished checkpoint write")
    barrier(run.ddp.world)
    path, ckpt = latest_checkpoint(ckpt_dir, run.log)
    diff = config_diff(build_config(ckpt["config"]), run.cfg)
    if diff and not force:
        raise ValueError(f"the config given differs from the one {run.dir} was trained with ({'; '.join(diff)}); "
                         f"resume with the run's own config.yaml, or pass --force to continue with the new one")
    if diff:
        run.log(f"WARNING: resuming with a different config (--force): {'; '.join(diff)}")
    ckpts.restore(ckpt, state)
    state.saved = state.step
    state.seconds_before = float(ckpt.get("train_seconds", 0.0))
    run.logger.truncate_after(state.step)
    run.log(f"resumed {run.dir} from {path.name} at step {state.step}/{run.cfg.train.steps}")


def skip_or_roll_back(run: Run, ckpts: Checkpoints, state: LoopState, culprit: str, step: int) -> bool:
    """Step `step` had a non-finite `culprit` (train_step kept it from the weights). Below train.max_bad_steps in a
    row it is skipped; then the run rolls back to the newest checkpoint with the learning rate scaled by
    train.rollback_lr_factor (-> True), or, with no rollback left, stops: failure.json and FloatingPointError.
    state.step is where the loop goes on."""
    tc, log = run.cfg.train, run.log
    state.bad += 1
    run.logger.log({"step": step, "skipped": culprit})
    log(f"WARNING: step {step}: non-finite {culprit}; step skipped ({state.bad} in a row, "
        f"limit train.max_bad_steps={tc.max_bad_steps})")
    if state.bad < tc.max_bad_steps:
        state.step = step
        return False
    if tc.on_nonfinite == "rollback" and state.rollbacks < tc.max_rollbacks and state.saved > 0:
        path, ckpt = latest_checkpoint(run.ckpt_dir, log)
        ckpts.restore(ckpt, state)
        state.lr_scale *= tc.rollback_lr_factor
        state.rollbacks, state.bad = state.rollbacks + 1, 0
        run.logger.truncate_after(state.step)
        run.logger.log({"step": state.step, "rollback": state.rollbacks, "lr_scale": state.lr_scale, "cause": culprit})
        log(f"WARNING: rolled back to {path.name} (step {state.step}) with the learning rate x{state.lr_scale:g} "
            f"(rollback {state.rollbacks} of train.max_rollbacks={tc.max_rollbacks})")
        return True
    report = {"step": step, "offending": culprit, "bad_steps": state.bad, "rollbacks": state.rollbacks,
              "last_finite_metrics": state.last_row, "newest_checkpoint_step": state.saved or None}
    if not run.ddp.main:
        raise FloatingPointError(f"step {step}: non-finite {culprit} (report on rank 0)")
    (run.dir / "failure.json").write_text(json.dumps(report, indent=2) + "\n")
    raise FloatingPointError(
        f"training stopped at step {step}: {state.bad} non-finite steps in a row, offending tensor: {culprit}; "
        f"last finite metrics: {json.dumps(state.last_row)}; rollbacks used {state.rollbacks}/{tc.max_rollbacks}; "
        f"newest checkpoint at step {state.saved or 'none'} (weights there are finite). Report: "
        f"{run.dir / 'failure.json'}. Try a lower --optim.lr, then `openjepa train --resume {run.dir} --force`")


def log_step(run: Run, state: LoopState, result: StepResult, lr: float, wd: float, rate: Rate, stream: BatchStream,
             bar: tqdm) -> None:
    """The step's metrics row (its loss averaged over ranks) to metrics.jsonl and the progress bar; without a bar,
    one printed line."""
    tc, step = run.cfg.train, state.step
    state.last_loss = mean_over_ranks(float(result.loss), run.ddp.world, run.device)
    per_s = rate.take()
    row = {"step": step, "loss": state.last_loss, "lr": lr, "wd": wd, "samples_per_s": round(per_s, 1),
           "epoch": round(step / stream.steps_per_epoch, 3), "elapsed_s": round(state.train_seconds(), 3),
           **result.logs}
    row["grad_norm"] = float(result.grad_norm)
    if state.lr_scale != 1.0:
        row["lr_scale"] = state.lr_scale
    run.logger.log(row)
    state.last_row = row
    bar.set_postfix(loss=f"{state.last_loss:.4f}", lr=f"{lr:.1e}", per_s=f"{per_s:.0f}")
    if not tc.progress:
        eta = (tc.steps - step) * stream.batch_size / max(per_s, 1e-9)
        run.log(f"step {step}/{tc.steps} loss {state.last_loss:.4f} lr {lr:.2e} {per_s:.0f} samples/s ETA {eta:.0f}s")


def monitor_step(run: Run, state: LoopState, ckpts: Checkpoints, monitor: Monitor, method: torch.nn.Module,
                 bar: tqdm) -> None:
    """The online panel at this step (logged and printed), its warnings, and best.pt when the score (kNN top-1,
    else RankMe) beats the best so far. Under FSDP every rank comes here; rank 0 reports and decides."""
    tc, step = run.cfg.train, state.step
    panel, summary = run_monitor(monitor, method, run.device, tc.precision)
    run.logger.log({"step": step, **panel})
    say = bar.write if tc.progress and run.ddp.main else run.log
    say(f"step {step}: {summary}")
    warns, collapsed, stalled = panel_warnings(panel, step, tc.steps, state.stall_warned)
    state.collapse_warned |= collapsed
    state.stall_warned |= stalled
    for warn in warns:
        say("!" * 80 + "\n" + warn + "\n" + "!" * 80 if tc.progress else "WARNING: " + warn)
    score = panel.get("knn_top1", panel["rankme"])
    if any_rank(run.ddp.main and score > state.best, run.ddp.world if run.fsdp else 1, run.device):
        state.best = score
        ckpts.save_as(state, run.ckpt_dir / "best.pt")


def stop_if_unfinished(summary: dict[str, Any], what: str, hint: str = "") -> None:
    """For suites that train several runs in a row: a run that a signal stopped (the loop saved a checkpoint and
    returned) stops the caller too, instead of going on to the next run -> SystemExit naming the run."""
    if not summary["finished"]:
        raise SystemExit(f"{what} stopped at step {summary['steps']} ({summary['stopped_by'] or 'unfinished'}){hint}")


# may change between a run and its resume
_RUNTIME_KEYS = ("stop_after", "progress", "threads", "device", "parallel", "keep_last", "max_bad_steps", "on_nonfinite",
                 "rollback_lr_factor", "max_rollbacks")
# how streamed data is read, not what a step sees: these may change on resume too
_RUNTIME_DATA_KEYS = ("workers", "prefetch", "max_bad_fraction", "index_dir")


def config_diff(saved: Config, given: Config) -> list[str]:
    """'section.key: saved -> given' for every setting that differs, except the runtime keys. A given
    `train.precision: auto` matches any saved precision: a run saves the precision auto chose on its machine."""
    a, b = saved.to_dict(), given.to_dict()
    out = []
    for section in a:
        for key in a[section]:
            if (section == "train" and key in _RUNTIME_KEYS) or (section == "data" and key in _RUNTIME_DATA_KEYS):
                continue
            if section == "train" and key == "precision" and b[section][key] == "auto":
                continue
            if a[section][key] != b[section][key]:
                out.append(f"{section}.{key}: {a[section][key]!r} -> {b[section][key]!r}")
    return out
