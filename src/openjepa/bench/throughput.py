"""`openjepa bench throughput`: training speed and model-FLOP utilisation (MFU) of the presets.

Each row trains a preset with the real training loop (`train.loop.train`, whose step is `train.step.train_step`:
collate, autocast, backward, clip, optimiser, EMA) for a few warm-up steps and then `timed` steps, and reports
    samples_per_s   median over the timed steps of the loop's own per-step rate
    gflop_per_step  FLOPs of one training step (forward + backward of everything the step runs, the EMA target
                    encoder's forward included) counted by torch.utils.flop_counter on the same collated
                    batches (mean over 3 steps: I-JEPA's mask sizes vary from step to step)
    gflops_per_s    gflop_per_step * samples_per_s / batch_size
    mfu             gflops_per_s / peak_gflops
    peak_gflops     the best dense square matmul rate in that dtype, measured on the same device right after the
                    row's timed steps (median of repeats, best size), so the ratio holds on a machine whose speed drifts
and a `time_breakdown` (share of the step's host time per operator group, from torch.profiler over the same
`train_step`) unless quick. Each row names what sets its peak: the CPU's model, its matmul flags (AMX, AVX512-BF16,
AVX512F, AVX2 from /proc/cpuinfo) and torch's CPU kernel level (`cpu_model`, `cpu_flags`, `cpu_capability`), the
GPU's name on CUDA (`gpu`), and whether the blocks were compiled (`compile`, train.compile).
Rows whose device is missing (GPU presets on a CPU machine) are listed with `skipped` and the reason.
Data: the presets' own data on CPU (Fashion-MNIST; 128 procedural videos for V-JEPA; 256 Two-Rooms episodes
collected into the workdir for the world model); GPU presets use `data.dataset=synthetic` (random images of
the preset's size), which costs the same per step and needs no download.
"""

from __future__ import annotations

import json
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from openjepa.config import Config, load_config
from openjepa.data.stream import BatchStream
from openjepa.methods import METHODS
from openjepa.train.distributed import shard
from openjepa.train.logging import read_metrics
from openjepa.train.loop import train
from openjepa.train.monitor import build_monitor
from openjepa.train.optim import build_optimizer
from openjepa.train.precision import cpu_info
from openjepa.train.run import find_preset, load_train_data, provenance, select_device
from openjepa.train.step import step_batch, train_step
from openjepa.validate import resolve_config

# (row name, preset, device kind, overrides)
CONFIGS = [
    ("ijepa_vit_cpu", "ijepa_vit_cpu", "cpu", []),
    ("lejepa_vit_cpu", "lejepa_vit_cpu", "cpu", []),
    ("vjepa_physics_cpu", "vjepa_physics_cpu", "cpu", ["--video.physics_videos=128"]),  # same steps, fewer videos
    ("world_model_two_rooms", "world_model_two_rooms", "cpu", ["--data.path={trajectories}"]),
    ("ijepa_vits_gpu", "ijepa_vit_gpu", "cuda", ["--data.dataset=synthetic"]),
    ("ijepa_vitb_gpu", "ijepa_vitb_gpu", "cuda", ["--data.dataset=synthetic"]),
]
DTYPES = {"cpu": ["fp32", "bf16"], "cuda": ["bf16"]}
TORCH_DTYPE = {"fp32": torch.float32, "bf16": torch.bfloat16}
PEAK_SIZES = {"cpu": (1024, 2048), "cuda": (4096, 8192)}  # square matmul sizes tried for the peak


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(dtype: str, device: torch.device, sizes: tuple[int, ...] | None = None, repeats: int = 10) -> float:
    """GFLOP/s of the fastest square matmul size (median of `repeats` timed products per size)."""
    sizes = sizes or PEAK_SIZES.get(device.type, PEAK_SIZES["cpu"])
    best = 0.0
    for n in sizes:
        a = torch.randn(n, n, device=device).to(TORCH_DTYPE[dtype])
        b = torch.randn(n, n, device=device).to(TORCH_DTYPE[dtype])
        for _ in range(2):
            a @ b
        _sync(device)
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            a @ b
            _sync(device)
            times.append(time.perf_counter() - t)
        best = max(best, 2 * n ** 3 / statistics.median(times) / 1e9)
    return best


def device_fields(device: torch.device) -> dict[str, Any]:
    """The hardware behind a row's figures: the host CPU (cpu_info) and, on CUDA, the GPU's name."""
    fields = cpu_info()
    if device.type == "cuda":
        fields["gpu"] = torch.cuda.get_device_name(device)
    return fields


def sample_batches(cfg: Config, method: torch.nn.Module, steps: int = 3) -> list[dict[str, torch.Tensor]]:
    """The collated global batches of the loop's first `steps` steps (the same data, held-out rows and masks)."""
    x, y = load_train_data(cfg)
    _, x_train = build_monitor(cfg, x, y)
    stream = BatchStream(x_train, cfg.data.batch_size, cfg.train.seed)
    return [step_batch(method, stream, s, cfg.train.seed) for s in range(steps)]


def step_flops(method: torch.nn.Module, batches: list[dict[str, torch.Tensor]], device: torch.device,
               max_rows: int = 256) -> float:
    """Mean FLOPs of forward + backward of `method.step` over the batches (fp32; counts do not depend on dtype).

    Batches over `max_rows` rows are counted on an equal slice and scaled up (every operation's count is linear
    in the rows, and masks are drawn per global batch), so the fp32 count fits where the bf16 run does."""
    total = 0
    for batch in batches:
        dims = method.batch_dims
        rows = next((batch[k].shape[a] for k, a in dims.items() if k in batch), 0)
        parts = 1
        while rows > max_rows and rows % 2 == 0:
            rows, parts = rows // 2, parts * 2
        batch = {k: v.to(device) for k, v in shard(batch, dims, 0, parts).items()}
        with FlopCounterMode(display=False) as counter:
            loss, _ = method.step(batch)
            loss.backward()
        method.zero_grad(set_to_none=True)
        total += counter.get_total_flops() * parts
    return total / len(batches)


GROUPS = {  # operator-name fragments -> group, first match wins
    "matmul": ("addmm", "aten::mm", "bmm", "matmul", "linear", "convolution", "conv"),
    "attention": ("softmax", "scaled_dot_product", "flash"),
    "casts/copies": ("copy_", "_to_copy", "contiguous", "clone"),
    "optimizer": ("Optimizer", "lerp_", "addcdiv_", "addcmul_", "sqrt", "_foreach"),
    "norm/activation": ("layer_norm", "gelu", "silu"),
}


def time_breakdown(cfg: Config, method: torch.nn.Module, batches: list[dict[str, torch.Tensor]],
                   device: torch.device, steps: int = 3) -> dict[str, float]:
    """Share of self time per operator group (see GROUPS; the rest is 'other elementwise') over a few of the
    training loop's steps (`train_step`, after one untimed), in train.precision."""
    from torch.profiler import ProfilerActivity, profile

    opt = build_optimizer(method, cfg.optim)
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    train_step(method, opt, batches[0], 0, cfg, device)
    with profile(activities=acts) as prof:
        for s in range(steps):
            train_step(method, opt, batches[s % len(batches)], s + 1, cfg, device)
        _sync(device)
    attr = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    shares: dict[str, float] = {}
    for ev in prof.key_averages():
        t = getattr(ev, attr, 0) or 0
        group = next((g for g, keys in GROUPS.items() if any(k in ev.key for k in keys)), "other elementwise")
        shares[group] = shares.get(group, 0.0) + t
    total = sum(shares.values()) or 1.0
    return {g: round(v / total, 3) for g, v in sorted(shares.items(), key=lambda kv: -kv[1])}


def _sig(x: float, digits: int = 4) -> float:
    """x rounded to `digits` significant figures (tiny test models and H200s alike stay readable)."""
    return float(f"{x:.{digits}g}")


def measure(cfg: Config, run_dir: Path, device: torch.device, warmup: int, timed: int, profile: bool
            ) -> dict[str, Any]:
    """One row's numbers: the loop's steady-state rate, FLOPs per step, the peak and MFU."""
    torch.manual_seed(cfg.train.seed)
    method = METHODS[cfg.train.method](cfg).to(device)
    batches = sample_batches(cfg, method)
    flops = step_flops(method, batches, device)
    train(cfg, run_dir, log=lambda *a, **k: None)
    rates = [row["samples_per_s"] for row in read_metrics(run_dir) if "samples_per_s" in row and row["step"] > warmup]
    peak = matmul_peak(cfg.train.precision, device)
    samples_per_s = statistics.median(rates)
    gflops = flops / 1e9 * samples_per_s / cfg.data.batch_size
    out = {"samples_per_s": _sig(samples_per_s), "step_s": _sig(cfg.data.batch_size / samples_per_s),
           "gflop_per_step": _sig(flops / 1e9), "gflops_per_s": _sig(gflops), "peak_gflops": _sig(peak),
           "mfu": _sig(gflops / peak, 3), "timed_steps": len(rates)}
    if profile:
        out["time_breakdown"] = time_breakdown(cfg, method, batches, device)
    return out


def run_throughput(quick: bool, workdir: Path, overrides: list[str], out: Path, configs=None,
                   only: list[str] | None = None) -> dict[str, Any]:
    """All CONFIGS (or `configs`), or the rows named in `only`."""
    configs = configs or CONFIGS
    if only:
        unknown = sorted(set(only) - {c[0] for c in configs})
        if unknown:
            raise ValueError(f"unknown throughput rows {unknown}; choose from {[c[0] for c in configs]}")
        configs = [c for c in configs if c[0] in only]
    suite_dir = Path(workdir) / ("throughput_quick" if quick else "throughput")
    if suite_dir.exists():
        shutil.rmtree(suite_dir)
    warmup, timed = (2, 4) if quick else (3, 20)
    meta = provenance()
    rows, cfgs = [], {}
    for name, preset, kind, extra in configs:
        for dtype in DTYPES[kind]:
            budget = [f"--train.steps={warmup + timed}", "--train.log_every=1", "--train.monitor_every=0",
                      f"--train.ckpt_every={warmup + timed}", "--train.progress=false", f"--train.precision={dtype}",
                      f"--train.device={kind}"]
            base = {"config": name, "dtype": dtype}
            if kind == "cuda" and not torch.cuda.is_available():
                rows.append({**base, "skipped": "no CUDA device"})
                continue
            if any("{trajectories}" in e for e in extra):  # world models: a small collected dataset, made once
                traj = suite_dir / "two_rooms_trajectories"
                if not (traj / "meta.json").exists():
                    from openjepa.data.trajectories import collect

                    w = load_config(find_preset(preset)).world
                    collect("two_rooms", 256, (w.frames - 1) * w.frameskip, traj, seed=0, progress=False)
                extra = [e.replace("{trajectories}", str(traj)) for e in extra]
            cfg = resolve_config(load_config(find_preset(preset), [*extra, *budget, *overrides]))
            cfgs[f"{name}/{dtype}"] = cfg.to_dict()
            device = select_device(cfg.train.device)
            print(f"== bench throughput: {name} {dtype} on {device} ({warmup} + {timed} steps)", flush=True)
            row = {**base, "device": str(device), "batch_size": cfg.data.batch_size, "compile": cfg.train.compile,
                   **device_fields(device),
                   **measure(cfg, suite_dir / f"{name}_{dtype}", device, warmup, timed, profile=not quick)}
            print(json.dumps(row), flush=True)
            rows.append(row)
    return {"suite": "throughput", "quick": quick, "git_sha": meta["git_sha"], "machine": meta["machine"],
            "versions": meta["versions"], "created": meta["created"], "torch_threads": torch.get_num_threads(),
            "configs": cfgs, "rows": rows}
