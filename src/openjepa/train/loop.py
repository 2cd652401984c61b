"""The training loop: one for every method. Reads top to bottom like a recipe:

    for step: schedules -> batch (augment, masks; CPU, seeded by step) -> method.step under autocast
              -> backward -> clip -> optimiser step -> method.on_step_end (EMA) -> log
              -> online collapse panel + kNN probe -> checkpoint

Everything random is a function of (seed, step), so `resume=True` continues exactly where the last
checkpoint left off (fp32 on CPU gives bit-identical metrics).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from openjepa.config import Config, build_config, config_to_yaml
from openjepa.data.images import normalize
from openjepa.data.stream import BatchStream, step_generator
from openjepa.eval.collapse import collapse_message, collapse_panel
from openjepa.eval.features import autocast, extract_features
from openjepa.eval.knn import knn_top1
from openjepa.methods import METHODS
from openjepa.train.checkpoint import load_checkpoint, save_checkpoint
from openjepa.train.logging import MetricsLogger
from openjepa.train.optim import apply_schedules, build_optimizer
from openjepa.train.run import load_train_data, provenance, select_device


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


def build_monitor(cfg: Config, x: torch.Tensor, y: torch.Tensor | None) -> tuple[Monitor, torch.Tensor]:
    """Hold out `train.monitor_samples` training images (seeded) for the online panel; returns the monitor and
    the remaining training images. With labels, 4x as many training images form the online kNN bank."""
    n = min(cfg.train.monitor_samples, x.shape[0] // 5)
    perm = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(cfg.train.seed + 12345))
    held, train = perm[:n], perm[n:]
    if y is None:
        return Monitor(x[held]), x[train]
    bank = train[: 4 * n]
    return Monitor(x[held], x[bank], y[bank], y[held]), x[train]


def train(cfg: Config, run_dir: str | Path, resume: bool = False, log=print) -> dict[str, Any]:
    """Train `cfg.train.method` into `run_dir`; returns a summary dict. See the module docstring."""
    run_dir = Path(run_dir)
    tc = cfg.train
    if tc.threads:
        torch.set_num_threads(tc.threads)
    torch.manual_seed(tc.seed)
    device = select_device(tc.device)

    ckpt_path = run_dir / "checkpoints" / "last.pt"
    if not resume and ckpt_path.exists():
        raise FileExistsError(f"{run_dir} already holds a run; resume it with `openjepa train --resume {run_dir}` "
                              f"or choose another --out")
    run_dir.mkdir(parents=True, exist_ok=True)
    meta = provenance()
    if not resume:
        (run_dir / "config.yaml").write_text(config_to_yaml(cfg, meta))

    x_all, y_all = load_train_data(cfg)
    monitor, x_train = build_monitor(cfg, x_all, y_all)
    stream = BatchStream(x_train, cfg.data.batch_size, tc.seed)
    method = METHODS[tc.method](cfg).to(device)
    opt = build_optimizer(method, cfg.optim)
    logger = MetricsLogger(run_dir)

    start, best = 0, -math.inf
    if resume:
        state = load_checkpoint(ckpt_path)
        saved = build_config(state["config"])
        if _comparable(saved) != _comparable(cfg):
            raise ValueError(f"the config given differs from the one {run_dir} was trained with; "
                             f"resume with the run's own config.yaml")
        method.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        start, best = int(state["step"]), float(state["best"])
        torch.set_rng_state(state["rng"])
        logger.truncate_after(start)
        log(f"resumed {run_dir} at step {start}/{tc.steps}")

    def checkpoint(name: str, step: int) -> None:
        save_checkpoint({"model": method.state_dict(), "optimizer": opt.state_dict(), "step": step, "best": best,
                         "rng": torch.get_rng_state(), "config": cfg.to_dict(), "meta": meta},
                        run_dir / "checkpoints" / name)

    n_params = sum(p.numel() for p in method.parameters() if p.requires_grad)
    log(f"training {tc.method} on {cfg.data.dataset} ({x_train.shape[0]} images, {stream.steps_per_epoch} steps/epoch) "
        f"for {tc.steps} steps on {device} ({tc.precision}); {n_params / 1e6:.2f}M trainable parameters; run dir {run_dir}")

    end = tc.steps if not tc.stop_after else min(tc.steps, start + tc.stop_after)
    bar = tqdm(total=tc.steps, initial=start, unit="step", desc=tc.method, disable=not tc.progress, dynamic_ncols=True)
    t_last, n_last, collapse_warned = time.time(), 0, False
    last_loss = float("nan")
    method.train()
    step = start
    try:
        for step in range(start, end):
            lr, wd = apply_schedules(opt, step, tc.steps, cfg.optim)
            g = step_generator(tc.seed, step)
            # the method's collate augments (crops, views) and masks, from the step's generator
            x = normalize(stream.batch(step))  # (B, C, H, W) un-augmented
            batch = {k: v.to(device, non_blocking=True) for k, v in method.collate(x, g).items()}

            with autocast(device, tc.precision):
                loss, logs = method.step(batch)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite loss {loss.item()} at step {step}; last finite loss {last_loss}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            clip = cfg.optim.grad_clip
            grad_norm = torch.nn.utils.clip_grad_norm_(method.parameters(), clip) if clip > 0 else None
            opt.step()
            logs.update(method.on_step_end(step + 1, tc.steps))
            done = step + 1
            n_last += x.shape[0]
            bar.update(1)

            if done % tc.log_every == 0 or done == end:
                last_loss = loss.item()
                rate = n_last / max(time.time() - t_last, 1e-9)
                t_last, n_last = time.time(), 0
                row = {"step": done, "loss": last_loss, "lr": lr, "wd": wd, "samples_per_s": round(rate, 1),
                       "epoch": round(done / stream.steps_per_epoch, 3), **logs}
                if grad_norm is not None:
                    row["grad_norm"] = float(grad_norm)
                logger.log(row)
                bar.set_postfix(loss=f"{last_loss:.4f}", lr=f"{lr:.1e}", img_s=f"{rate:.0f}")
                if not tc.progress:
                    eta = (tc.steps - done) * x.shape[0] / max(rate, 1e-9)
                    log(f"step {done}/{tc.steps} loss {last_loss:.4f} lr {lr:.2e} {rate:.0f} img/s ETA {eta:.0f}s")

            if tc.monitor_every and (done % tc.monitor_every == 0 or done == tc.steps):
                panel = monitor.run(method.eval_encoder(), device, tc.precision)
                logger.log({"step": done, **panel})
                msg = f"step {done}: RankMe {panel['rankme']:.1f}, feat_std {panel['feat_std']:.4f}, mean_cos {panel['mean_cos']:.3f}"
                if "knn_top1" in panel:
                    msg += f", online kNN {100 * panel['knn_top1']:.1f}%"
                bar.write(msg) if tc.progress else log(msg)
                if panel["collapsed"]:
                    warn = collapse_message(panel, done)
                    bar.write("!" * 80 + "\n" + warn + "\n" + "!" * 80) if tc.progress else log("WARNING: " + warn)
                    collapse_warned = True
                score = panel.get("knn_top1", panel["rankme"])
                if score > best:
                    best = score
                    checkpoint("best.pt", done)

            if done % tc.ckpt_every == 0 or done == end:
                checkpoint("last.pt", done)
    except KeyboardInterrupt:
        checkpoint("last.pt", step)
        log(f"interrupted: saved {ckpt_path} at step {step}; resume with `openjepa train --resume {run_dir}`")
        raise
    finally:
        bar.close()
        logger.close()

    finished = end == tc.steps
    if finished and not (run_dir / "checkpoints" / "best.pt").exists():
        checkpoint("best.pt", end)
    return {"run_dir": str(run_dir), "steps": end, "finished": finished, "final_loss": last_loss,
            "collapse_warned": collapse_warned}


_RUNTIME_KEYS = ("stop_after", "progress", "threads", "device")  # may change between a run and its resume


def _comparable(cfg: Config) -> dict[str, Any]:
    """The config without the keys a resumed run may change."""
    d = cfg.to_dict()
    d["train"] = {k: v for k, v in d["train"].items() if k not in _RUNTIME_KEYS}
    return d
