"""The training loop: one for every method. Reads top to bottom like a recipe:

    for step: schedules -> batch (augment, masks; CPU, seeded by step) -> method.step under autocast
              -> backward -> clip -> optimiser step -> method.on_step_end (EMA) -> log
              -> online collapse panel + kNN probe (video: gain over copy-last) -> checkpoint

Everything random is a function of (seed, step), so `resume=True` continues exactly where the last
checkpoint left off (fp32 on CPU gives bit-identical metrics).

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from openjepa.config import Config, build_config, config_to_yaml
from openjepa.data.transforms import normalize
from openjepa.data.stream import BatchStream, num_rows, step_generator, take
from openjepa.eval.collapse import collapse_message, collapse_panel
from openjepa.eval.features import autocast, extract_features
from openjepa.eval.knn import knn_top1
from openjepa.methods import METHODS
from openjepa.train.checkpoint import first_nonfinite, latest_checkpoint, save_checkpoint, save_step, step_files
from openjepa.train.distributed import (all_reduce_grads, any_rank, barrier, broadcast_parameters, full_state,
                                        grad_norm, init_distributed, load_sharded, local, mean_over_ranks, reshard,
                                        shard, shard_method)
from openjepa.train.logging import MetricsLogger
from openjepa.train.optim import apply_schedules, build_optimizer
from openjepa.train.run import load_train_data, provenance, select_device
from openjepa.validate import resolve_config


def to_float(batch: torch.Tensor | dict[str, torch.Tensor]) -> torch.Tensor | dict[str, torch.Tensor]:
    """uint8 pixels -> normalised float32 (data.transforms.normalize); other tensors (actions, states) unchanged."""
    if isinstance(batch, dict):
        return {k: to_float(v) for k, v in batch.items()}
    return normalize(batch) if batch.dtype == torch.uint8 else batch


def monitor_pixels(x: torch.Tensor | dict[str, torch.Tensor]) -> torch.Tensor:
    """What the online panel feeds the eval encoder: the data itself, or for a dict its "obs" entry with any
    time axis folded into the batch, (N, T, C, H, W) -> (N*T, C, H, W)."""
    if not isinstance(x, dict):
        return x
    if "obs" not in x:
        raise ValueError(f"the online monitor needs an 'obs' entry in dict data, got keys {sorted(x)}")
    obs = x["obs"]
    return obs.flatten(0, 1) if obs.dim() == 5 else obs


@dataclass
class Monitor:
    """Held-out images for the online collapse panel, plus a labelled bank for an online kNN probe."""
    x: torch.Tensor  # uint8 (M, C, H, W)
    bank_x: torch.Tensor | None = None
    bank_y: torch.Tensor | None = None
    y: torch.Tensor | None = None

    def run(self, encoder: torch.nn.Module, device: torch.device, precision: str) -> dict[str, Any]:
        z = extract_features(encoder, self.x, device, precision)
        row: dict[str, Any] = dict(collapse_panel(z))
        if self.bank_x is not None and self.y is not None:
            zb = extract_features(encoder, self.bank_x, device, precision)
            row["knn_top1"] = knn_top1(zb, self.bank_y, z, self.y, k=20)
        return row

    def copy_last_gain(self, method: torch.nn.Module, device: torch.device, precision: str) -> float | None:
        """Video world models: how much better than "nothing moves" the future prediction is on the held-out
        clips (their first video.frames frames, the first video.context_frames given); None for other data."""
        v = method.cfg.video
        if self.x.dim() != 5 or self.x.shape[2] < v.frames:
            return None
        was = method.training
        method.eval()
        with autocast(device, precision):
            gain = method.copy_last_gain(normalize(self.x[:, :, :v.frames]).to(device), v.context_frames)
        method.train(was)
        return gain


STALL_GAIN = 0.05  # a video predictor within 5% of copying the last frame after half the steps has stalled


def stall_message(gain: float, step: int) -> str:
    side = "below" if gain >= 0 else "above"
    return (f"the video predictor has STALLED at step {step}: its loss is only {abs(100 * gain):.1f}% {side} that of "
            "copying the last context frame forward ('nothing moves'; copy_last_gain in the log), so it has not "
            "learnt the motion and its surprise scores will mostly measure how far things move. Features can look "
            "healthy meanwhile. Try another --train.seed or a lower --optim.lr")


def build_monitor(cfg: Config, x, y: torch.Tensor | None) -> tuple[Monitor, Any]:
    """Hold out `train.monitor_samples` training samples (seeded) for the online panel; returns the monitor and
    the remaining training data. With labels, 4x as many training images form the online kNN bank."""
    rows = num_rows(x)
    n = min(cfg.train.monitor_samples, rows // 5)
    perm = torch.randperm(rows, generator=torch.Generator().manual_seed(cfg.train.seed + 12345))
    held, train = perm[:n], perm[n:]
    if y is None:
        return Monitor(monitor_pixels(take(x, held))[:cfg.train.monitor_samples]), take(x, train)
    bank = train[: 4 * n]
    return Monitor(monitor_pixels(take(x, held)), monitor_pixels(take(x, bank)), y[bank], y[held]), take(x, train)


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


def nonfinite_grad(module: torch.nn.Module) -> str | None:
    """Name of the first parameter whose gradient holds a NaN or an infinity."""
    return first_nonfinite({name: p.grad for name, p in module.named_parameters() if p.grad is not None})


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
    ddp = init_distributed()
    device = select_device(tc.device)
    if device.type == "cuda" and ddp.world > 1:
        device = torch.device("cuda", ddp.local_rank)
        torch.cuda.set_device(device)
    if not ddp.main:  # rank 0 alone logs, evaluates and writes files
        log = _quiet

    ckpt_dir = run_dir / "checkpoints"
    has_run = (ckpt_dir / "last.pt").exists() or bool(step_files(ckpt_dir))
    if not resume and has_run:
        raise FileExistsError(f"{run_dir} already holds a run; resume it with `openjepa train --resume {run_dir}` "
                              f"or choose another --out")
    meta = provenance()
    if ddp.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        if not resume:
            (run_dir / "config.yaml").write_text(config_to_yaml(cfg, meta))

    x_all, y_all = load_train_data(cfg)
    monitor, x_train = build_monitor(cfg, x_all, y_all)
    stream = BatchStream(x_train, cfg.data.batch_size, tc.seed)
    method = METHODS[tc.method](cfg).to(device)
    fsdp = tc.parallel == "fsdp"
    if fsdp:
        if not torch.distributed.is_initialized():
            raise ValueError("train.parallel=fsdp needs a process group: launch with torchrun "
                             "(e.g. torchrun --nproc_per_node=2 -m openjepa train ...)")
        shard_method(method)  # same seed on every rank: the shards come from identical full weights
    else:
        broadcast_parameters(method, ddp.world)
    opt = build_optimizer(method, cfg.optim)
    logger = MetricsLogger(run_dir) if ddp.main else NullLogger()

    start, best, lr_scale = 0, -math.inf, 1.0
    collapse_warned = stall_warned = False  # kept in checkpoints: a resumed run remembers its warnings

    def restore(state: dict[str, Any]) -> None:
        nonlocal best, lr_scale, collapse_warned, stall_warned
        if fsdp:
            reshard(method)
            load_sharded(method, opt, state["model"], state["optimizer"])
        else:
            method.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
        best, lr_scale = float(state["best"]), float(state.get("lr_scale", 1.0))
        collapse_warned |= bool(state.get("collapse_warned", False))  # a rollback never forgets a warning
        stall_warned |= bool(state.get("stall_warned", False))
        torch.set_rng_state(state["rng"])

    if resume:
        for stale in [*ckpt_dir.glob("*.tmp"), *ckpt_dir.glob("last.pt.*.link")] if ddp.main else []:
            stale.unlink(missing_ok=True)  # writes cut by a kill
            log(f"removed {stale.name}, an unfinished checkpoint write")
        barrier(ddp.world)
        path, state = latest_checkpoint(ckpt_dir, log)
        diff = config_diff(build_config(state["config"]), cfg)
        if diff and not force:
            raise ValueError(f"the config given differs from the one {run_dir} was trained with ({'; '.join(diff)}); "
                             f"resume with the run's own config.yaml, or pass --force to continue with the new one")
        if diff:
            log(f"WARNING: resuming with a different config (--force): {'; '.join(diff)}")
        restore(state)
        start = int(state["step"])
        logger.truncate_after(start)
        log(f"resumed {run_dir} from {path.name} at step {start}/{tc.steps}")

    def snapshot(step: int) -> dict[str, Any]:
        """The checkpoint's content; under FSDP a collective (shards are gathered): call it on every rank."""
        if fsdp:
            reshard(method)
        model_sd, opt_sd = method.state_dict(), opt.state_dict()
        if fsdp:
            model_sd, opt_sd = full_state(model_sd), full_state(opt_sd)
        return {"model": model_sd, "optimizer": opt_sd, "step": step, "best": best, "lr_scale": lr_scale,
                "rng": torch.get_rng_state(), "config": cfg.to_dict(), "meta": meta,
                "collapse_warned": collapse_warned, "stall_warned": stall_warned}

    def save(step: int, path: Path | None = None) -> None:
        """Write a step checkpoint (or `path`) from rank 0; every rank calls it (FSDP gathers)."""
        state = snapshot(step) if (ddp.main or fsdp) else None
        if ddp.main:
            save_step(state, ckpt_dir, tc.keep_last) if path is None else save_checkpoint(state, path)

    params = [p for p in method.parameters() if p.requires_grad]
    n_params = sum(p.numel() for p in params)
    log(f"training {tc.method} on {cfg.data.dataset} ({stream.n} samples, {stream.steps_per_epoch} steps/epoch) "
        f"for {tc.steps} steps on {device} ({tc.precision}); {n_params / 1e6:.2f}M trainable parameters; run dir {run_dir}")

    end = tc.steps if not tc.stop_after else min(tc.steps, start + tc.stop_after)
    bar = tqdm(total=tc.steps, initial=start, unit="step", desc=tc.method, disable=not (tc.progress and ddp.main),
               dynamic_ncols=True)
    t_last, n_last = time.time(), 0
    last_loss, last_row, saved = float("nan"), {}, start
    bad, rollbacks, stopped_by = 0, 0, None
    method.train()
    step = start
    with StopSignals() as stop:
        try:
            while step < end:
                lr, wd = apply_schedules(opt, step, tc.steps, cfg.optim, lr_scale)
                g = step_generator(tc.seed, step)
                x = to_float(stream.batch(step))  # e.g. (B, C, H, W) un-augmented images: the global batch
                # the method's collate augments (crops, views) and masks from the step's generator; every rank
                # collates the whole batch (a function of the step alone), then keeps its own rows
                mine = shard(method.collate(x, g), method.batch_dims, ddp.rank, ddp.world)
                opt.zero_grad(set_to_none=True)
                loss, bad_loss = 0.0, None
                for i in range(tc.accum_steps):  # micro-batches: gradients summed, loss averaged
                    micro = {k: v.to(device, non_blocking=True)
                             for k, v in shard(mine, method.batch_dims, i, tc.accum_steps).items()}
                    with autocast(device, tc.precision):
                        part, logs = method.step(micro)
                    if not torch.isfinite(part) and bad_loss is None:
                        names = [k for k, v in logs.items() if not math.isfinite(v)]
                        bad_loss = "loss" + (f" ({', '.join(names)})" if names else "")
                    (part / tc.accum_steps).backward()
                    loss = loss + part.detach() / tc.accum_steps
                if not fsdp:  # FSDP reduce-scatters (averages) the gradients during backward
                    all_reduce_grads(params, ddp.world)
                done = step + 1
                # numerical guard: a non-finite loss or gradient never reaches the weights (same verdict on all ranks)
                culprit = None
                grads = [p.grad for p in params if p.grad is not None]
                norm = grad_norm(grads, ddp.world, fsdp)
                if any_rank(bad_loss is not None, ddp.world, device):
                    culprit = bad_loss or "loss (on another rank)"
                elif not torch.isfinite(norm):  # checked before clipping, which would spread the NaN
                    culprit = f"gradient of {nonfinite_grad(method)}"
                elif cfg.optim.grad_clip > 0:
                    torch._foreach_mul_([local(g) for g in grads], torch.clamp(cfg.optim.grad_clip / (norm + 1e-6), max=1.0))
                if culprit is not None:
                    opt.zero_grad(set_to_none=True)
                    bad += 1
                    logger.log({"step": done, "skipped": culprit})
                    log(f"WARNING: step {done}: non-finite {culprit}; step skipped ({bad} in a row, "
                        f"limit train.max_bad_steps={tc.max_bad_steps})")
                    if bad < tc.max_bad_steps:
                        step = done
                        continue
                    if tc.on_nonfinite == "rollback" and rollbacks < tc.max_rollbacks and saved > 0:
                        path, state = latest_checkpoint(ckpt_dir, log)
                        restore(state)
                        lr_scale *= tc.rollback_lr_factor
                        rollbacks, bad, step = rollbacks + 1, 0, int(state["step"])
                        logger.truncate_after(step)
                        logger.log({"step": step, "rollback": rollbacks, "lr_scale": lr_scale, "cause": culprit})
                        log(f"WARNING: rolled back to {path.name} (step {step}) with the learning rate x{lr_scale:g} "
                            f"(rollback {rollbacks} of train.max_rollbacks={tc.max_rollbacks})")
                        bar.n = step
                        continue
                    report = {"step": done, "offending": culprit, "bad_steps": bad, "rollbacks": rollbacks,
                              "last_finite_metrics": last_row, "newest_checkpoint_step": saved or None}
                    if not ddp.main:
                        raise FloatingPointError(f"step {done}: non-finite {culprit} (report on rank 0)")
                    (run_dir / "failure.json").write_text(json.dumps(report, indent=2) + "\n")
                    raise FloatingPointError(
                        f"training stopped at step {done}: {bad} non-finite steps in a row, offending tensor: {culprit}; "
                        f"last finite metrics: {json.dumps(last_row)}; rollbacks used {rollbacks}/{tc.max_rollbacks}; "
                        f"newest checkpoint at step {saved or 'none'} (weights there are finite). Report: "
                        f"{run_dir / 'failure.json'}. Try a lower --optim.lr, then `openjepa train --resume {run_dir} --force`")
                bad = 0
                opt.step()
                if fsdp:
                    reshard(method)  # the EMA works on shards
                logs.update(method.on_step_end(done, tc.steps))
                n_last += stream.batch_size
                bar.update(1)

                if done % tc.log_every == 0 or done == end:
                    last_loss = mean_over_ranks(float(loss), ddp.world, device)
                    rate = n_last / max(time.time() - t_last, 1e-9)
                    t_last, n_last = time.time(), 0
                    row = {"step": done, "loss": last_loss, "lr": lr, "wd": wd, "samples_per_s": round(rate, 1),
                           "epoch": round(done / stream.steps_per_epoch, 3), **logs}
                    row["grad_norm"] = float(norm)
                    if lr_scale != 1.0:
                        row["lr_scale"] = lr_scale
                    logger.log(row)
                    last_row = row
                    bar.set_postfix(loss=f"{last_loss:.4f}", lr=f"{lr:.1e}", per_s=f"{rate:.0f}")
                    if not tc.progress:
                        eta = (tc.steps - done) * stream.batch_size / max(rate, 1e-9)
                        log(f"step {done}/{tc.steps} loss {last_loss:.4f} lr {lr:.2e} {rate:.0f} samples/s ETA {eta:.0f}s")

                if (ddp.main or fsdp) and tc.monitor_every and (done % tc.monitor_every == 0 or done == tc.steps):
                    # under FSDP every rank runs the encoder (its forward gathers shards); rank 0 reports
                    panel = monitor.run(method.eval_encoder(), device, tc.precision)
                    gain = monitor.copy_last_gain(method, device, tc.precision) if method.is_video \
                        else None
                    if gain is not None:
                        panel["copy_last_gain"] = gain
                    logger.log({"step": done, **panel})
                    msg = f"step {done}: RankMe {panel['rankme']:.1f}, feat_std {panel['feat_std']:.4f}, mean_cos {panel['mean_cos']:.3f}"
                    if "knn_top1" in panel:
                        msg += f", online kNN {100 * panel['knn_top1']:.1f}%"
                    if gain is not None:
                        msg += f", copy_last_gain {gain:.2f}"
                    say = bar.write if tc.progress and ddp.main else log
                    say(msg)
                    warns = []
                    if panel["collapsed"]:
                        warns.append(collapse_message(panel, done))
                        collapse_warned = True
                    if gain is not None and gain < STALL_GAIN and 2 * done >= tc.steps and not stall_warned:
                        warns.append(stall_message(gain, done))
                        stall_warned = True
                    for warn in warns:
                        say("!" * 80 + "\n" + warn + "\n" + "!" * 80 if tc.progress else "WARNING: " + warn)
                    score = panel.get("knn_top1", panel["rankme"])
                    if any_rank(ddp.main and score > best, ddp.world if fsdp else 1, device):  # rank 0 decides
                        best = score
                        save(done, ckpt_dir / "best.pt")

                step = done
                stopping = any_rank(stop.signum is not None, ddp.world, device)
                if done % tc.ckpt_every == 0 or done == end or stopping:
                    save(done)
                    saved = done
                if stopping:
                    stopped_by = signal.Signals(stop.signum or signal.SIGTERM).name
                    log(f"{stopped_by}: saved a checkpoint at step {done}; resume with `openjepa train --resume {run_dir}`")
                    break
            if step > saved and stopped_by is None:  # the last steps were skipped as non-finite
                save(step)
                saved = step
        except KeyboardInterrupt:
            log(f"interrupted: the newest checkpoint is at step {saved}; resume with `openjepa train --resume {run_dir}`")
            raise
        finally:
            bar.close()
            logger.close()

    finished = step >= tc.steps
    if finished and any_rank(ddp.main and not (ckpt_dir / "best.pt").exists(), ddp.world, device):
        save(step, ckpt_dir / "best.pt")
    barrier(ddp.world)
    return {"run_dir": str(run_dir), "steps": step, "finished": finished, "final_loss": last_loss,
            "collapse_warned": collapse_warned, "stall_warned": stall_warned, "stopped_by": stopped_by,
            "rollbacks": rollbacks}


def stop_if_unfinished(summary: dict[str, Any], what: str, hint: str = "") -> None:
    """For suites that train several runs in a row: a run that a signal stopped (the loop saved a checkpoint and
    returned) stops the caller too, instead of going on to the next run -> SystemExit naming the run."""
    if not summary["finished"]:
        raise SystemExit(f"{what} stopped at step {summary['steps']} ({summary['stopped_by'] or 'unfinished'}){hint}")


# may change between a run and its resume
_RUNTIME_KEYS = ("stop_after", "progress", "threads", "device", "parallel", "keep_last", "max_bad_steps", "on_nonfinite",
                 "rollback_lr_factor", "max_rollbacks")


def config_diff(saved: Config, given: Config) -> list[str]:
    """'section.key: saved -> given' for every setting that differs, except the runtime keys."""
    a, b = saved.to_dict(), given.to_dict()
    out = []
    for section in a:
        for key in a[section]:
            if section == "train" and key in _RUNTIME_KEYS:
                continue
            if a[section][key] != b[section][key]:
                out.append(f"{section}.{key}: {a[section][key]!r} -> {b[section][key]!r}")
    return out
