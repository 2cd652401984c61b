"""The training loop's online monitor: a held-out sample for the collapse panel (RankMe, feature spread), a
labelled bank for a kNN probe, and for video world models the gain over copying the last frame, with the
warnings they raise (collapse, a stalled video predictor)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from openjepa.config import Config
from openjepa.data.transforms import normalize
from openjepa.data.stream import num_rows, take
from openjepa.eval.collapse import collapse_message, collapse_panel
from openjepa.eval.features import autocast, extract_features
from openjepa.eval.knn import knn_top1


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


def held_out_split(cfg: Config, rows: int) -> tuple[int, torch.Tensor, torch.Tensor]:
    """(n, held-out row indices, training row indices): n = train.monitor_samples rows, a fifth of the data at
    most, drawn from a permutation seeded by train.seed (in memory and streamed alike)."""
    n = min(cfg.train.monitor_samples, rows // 5)
    perm = torch.randperm(rows, generator=torch.Generator().manual_seed(cfg.train.seed + 12345))
    return n, perm[:n], perm[n:]


def build_monitor(cfg: Config, x, y: torch.Tensor | None) -> tuple[Monitor, Any]:
    """Hold out `train.monitor_samples` training samples (seeded) for the online panel; returns the monitor and
    the remaining training data. With labels, 4x as many training images form the online kNN bank."""
    n, held, train = held_out_split(cfg, num_rows(x))
    if y is None:
        return Monitor(monitor_pixels(take(x, held))[:cfg.train.monitor_samples]), take(x, train)
    bank = train[: 4 * n]
    return Monitor(monitor_pixels(take(x, held)), monitor_pixels(take(x, bank)), y[bank], y[held]), take(x, train)


def build_streaming_monitor(cfg: Config, records, decoder) -> tuple[Monitor, Any]:
    """build_monitor for a streaming dataset (data/streaming Records): the held-out samples (and, labelled
    images, the 4x kNN bank) are decoded once with `decoder`'s evaluation view (its crop_scale None) and kept in
    memory, 5 x train.monitor_samples of them at most; returns the monitor and the remaining records (a
    SubsetRecords). An unreadable held-out file is left out (the monitor holds a few fewer)."""
    from openjepa.data.streaming import SubsetRecords, sequential_batches

    n, held, train = held_out_split(cfg, len(records))
    held, train = held.numpy(), train.numpy()

    def decode(idx) -> tuple[torch.Tensor, torch.Tensor]:
        parts = [b for b in sequential_batches(SubsetRecords(records, idx), decoder, max(len(idx), 1),
                                               workers=min(cfg.data.workers, 2)) if b["x"] is not None]
        if not parts:
            raise ValueError(f"none of the {len(idx)} held-out samples of {records.root} for the online monitor "
                             f"could be read")
        return torch.cat([b["x"] for b in parts]), torch.cat([b["y"] for b in parts])

    x, y = decode(held) if n else (torch.zeros(0, dtype=torch.uint8), None)
    if not n or not records.labelled or records.kind != "image":  # kNN probes images only, as in memory
        return Monitor(x), SubsetRecords(records, train)
    bank_x, bank_y = decode(train[: 4 * n])
    return Monitor(x, bank_x, bank_y, y), SubsetRecords(records, train)


def run_monitor(monitor: Monitor, method: torch.nn.Module, device: torch.device, precision: str
                ) -> tuple[dict[str, Any], str]:
    """The online panel of the method's eval encoder (plus copy_last_gain for video world models) and its one-line
    summary. Under FSDP every rank runs it (the encoder's forward gathers shards)."""
    panel = monitor.run(method.eval_encoder(), device, precision)
    gain = monitor.copy_last_gain(method, device, precision) if method.is_video else None
    if gain is not None:
        panel["copy_last_gain"] = gain
    msg = f"RankMe {panel['rankme']:.1f}, feat_std {panel['feat_std']:.4f}, mean_cos {panel['mean_cos']:.3f}"
    if "knn_top1" in panel:
        msg += f", online kNN {100 * panel['knn_top1']:.1f}%"
    if gain is not None:
        msg += f", copy_last_gain {gain:.2f}"
    return panel, msg


def panel_warnings(panel: dict[str, Any], step: int, steps: int, stall_warned: bool) -> tuple[list[str], bool, bool]:
    """(warnings to print, collapsed, stalled): a collapse is reported at every panel; a stalled video predictor
    (copy_last_gain under STALL_GAIN once half the `steps` are done) once per run."""
    warns = []
    collapsed = bool(panel["collapsed"])
    if collapsed:
        warns.append(collapse_message(panel, step))
    gain = panel.get("copy_last_gain")
    stalled = gain is not None and gain < STALL_GAIN and 2 * step >= steps and not stall_warned
    if stalled:
        warns.append(stall_message(gain, step))
    return warns, collapsed, stalled
