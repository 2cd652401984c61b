"""`train.precision=auto`: pick bf16 or fp32 for this machine from a measurement, not a constant.

    CUDA   bf16 where the GPU supports it (torch.cuda.is_bf16_supported), else fp32
    CPU    a short probe times forward + backward, fp32 and bf16 autocast alternating; the faster wins (bf16 on a
           tie). What it times: for transformer methods one block at the run's width, token count and a small
           batch; for methods with other parts (the world model's CNN encoder and GRU / conv predictor, bound by
           small ops where bf16 can lose) the method's own step on random data of the training form
           (`example_input`); for a convolutional image encoder (resnet) that encoder on a batch of images. The
           verdict is cached per (CPU model, torch version, threads, probed shape) in
           ~/.cache/openjepa/precision.json ($OPENJEPA_CACHE overrides the folder), so a machine is probed once.
           The probe draws from its own random stream: a run's initial weights do not depend on whether it probed
    other  fp32 (autocast is off on MPS anyway)

The CPU's model and matmul flags (`cpu_info`) also label the throughput bench's rows: two machines of the same
cloud kind may have different matrix units (AMX, AVX512-BF16), which changes which precision is faster.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import torch

from openjepa.config import Config

MATMUL_FLAGS = ("amx_bf16", "amx_tile", "avx512_bf16", "avx512f", "avx2")  # /proc/cpuinfo flags that set the peak


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux
        return ""


def cpu_info(text: str | None = None) -> dict[str, Any]:
    """The CPU's model name, which of MATMUL_FLAGS it has, and the kernels torch picked for it, e.g.
    {"cpu_model": "AMD EPYC", "cpu_flags": ["avx2", "avx512_bf16", "avx512f"], "cpu_capability": "AVX512"}.
    `text`: the contents of /proc/cpuinfo (read when not given)."""
    text = _cpuinfo() if text is None else text
    model, flags = "", set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not model:
            model = value.strip()
        elif key in ("flags", "Features") and not flags:
            flags = set(value.split())
    return {"cpu_model": model or platform.processor() or platform.machine(),
            "cpu_flags": sorted(f for f in MATMUL_FLAGS if f in flags),
            "cpu_capability": torch.backends.cpu.get_cpu_capability()}


def cache_path() -> Path:
    root = os.environ.get("OPENJEPA_CACHE") or Path.home() / ".cache" / "openjepa"
    return Path(root) / "precision.json"


STEP_BATCH = 16  # rows of the step probe's batch


def probe_shape(cfg: Config) -> tuple:
    """What the probe times: (width, heads, tokens) of the run's encoder blocks (tokens: the full image's patches,
    at most 256); for a method with actions (the world model: `example_input`) ("step", method, its shape settings); for
    another encoder than a ViT (resnet) ("encoder", its shape settings): the encoder on a batch of images."""
    from openjepa.methods import METHODS

    m, d = cfg.model, cfg.data
    if METHODS[cfg.train.method].has_actions:  # the world model: its own step on example_input
        w = cfg.world
        return ("step", cfg.train.method, m.encoder, m.dim, m.depth, m.pred_dim, m.pred_depth, w.predictor,
                d.img_size, d.channels, w.frames, w.frameskip, w.action_dim, min(d.batch_size, STEP_BATCH))
    if m.encoder != "vit":
        return ("encoder", m.encoder, m.dim, m.depth, m.patch_size, d.img_size, d.channels,
                min(d.batch_size, STEP_BATCH))
    tokens = (cfg.data.img_size // m.patch_size) ** 2 if m.patch_size else 64
    return m.dim, m.heads, max(4, min(tokens, 256))


def cache_key(shape: tuple) -> str:
    what = (f"{shape[0]} {'x'.join(map(str, shape[1:]))}" if shape[0] in ("step", "encoder")
            else f"block {'x'.join(map(str, shape))}")
    return f"{cpu_info()['cpu_model']}|torch {torch.__version__}|threads {torch.get_num_threads()}|{what}"


def _time_both(run: Callable[[], torch.Tensor], repeats: int) -> dict[str, float]:
    """Median seconds of run() (forward, returns a loss) + backward in fp32 and under bf16 autocast, timed
    alternately (a busy machine's drift hits both); the first round warms up both."""
    from openjepa.eval.features import autocast

    cpu = torch.device("cpu")
    times: dict[str, list[float]] = {"fp32": [], "bf16": []}
    for rep in range(repeats + 1):
        for precision in times:
            t = time.perf_counter()
            with autocast(cpu, precision):
                loss = run()
            loss.float().backward()
            if rep:
                times[precision].append(time.perf_counter() - t)
    return {p: statistics.median(ts) for p, ts in times.items()}


def probe(shape: tuple, batch: int = 32, repeats: int = 5, cfg: Config | None = None) -> dict[str, float]:
    """Seconds per forward + backward in fp32 and bf16 (median of `repeats`) of what probe_shape names: one
    pre-norm block (B=batch, N=tokens, D=width), cfg's method step on example_input (shape[0] == "step"), or cfg's
    encoder on random images (shape[0] == "encoder").
    Runs on its own random stream (torch.random.fork_rng): the caller's stream is left where it was."""
    from openjepa.methods import METHODS
    from openjepa.models.vit import Block

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        if shape[0] in ("step", "encoder") and cfg is None:
            raise ValueError(f"a {shape[0]} probe needs the run's config")
        if shape[0] == "encoder":
            from openjepa.methods.common import build_encoder

            encoder = build_encoder(cfg)
            images = torch.randn(shape[-1], cfg.data.channels, cfg.data.img_size, cfg.data.img_size)
            return _time_both(lambda: encoder(images).float().square().mean(), repeats)
        if shape[0] == "step":
            method = METHODS[cfg.train.method](cfg)
            x = method.example_input(cfg, shape[-1], torch.Generator().manual_seed(0))
            return _time_both(lambda: method.step({**x, "seed": 0})[0], repeats)
        dim, heads, tokens = shape
        block = Block(dim, heads)
        x = torch.randn(batch, tokens, dim, requires_grad=True)
        return _time_both(lambda: block(x).float().square().mean(), repeats)


def choose(timings: dict[str, float]) -> str:
    """The faster precision of a probe (bf16 on a tie)."""
    return "bf16" if timings["bf16"] <= timings["fp32"] else "fp32"


def probe_cpu(shape: tuple, path: Path | None = None,
              run_probe: Callable[[tuple], dict[str, float]] | None = None) -> dict[str, Any]:
    """The cached verdict for this machine and block shape, probing (and caching) it when missing:
    {"precision": ..., "timings": {"fp32": s, "bf16": s}, "key": ...}."""
    path = cache_path() if path is None else path
    key = cache_key(shape)
    try:
        cache = json.loads(path.read_text())
    except (OSError, ValueError):  # no cache yet, or a cut write: probe again
        cache = {}
    if not isinstance(cache, dict):
        cache = {}
    if key in cache:
        return {**cache[key], "key": key, "cached": True}
    timings = (run_probe or probe)(shape)
    entry = {"precision": choose(timings), "timings": {k: round(v, 6) for k, v in timings.items()}}
    cache[key] = entry
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(cache, indent=1, sort_keys=True))
        tmp.replace(path)
    except OSError:  # a read-only home: the verdict holds for this process only
        pass
    return {**entry, "key": key, "cached": False}


def resolve_precision(cfg: Config, device: torch.device, log: Callable[[str], None] | None = None) -> str:
    """cfg.train.precision with `auto` replaced by this machine's choice (see the module docstring). Under
    torch.distributed rank 0 decides and the others follow, so every rank runs the same precision."""
    precision = cfg.train.precision
    if precision != "auto":
        return precision
    if device.type == "cuda":
        precision, why = ("bf16", "CUDA with bf16") if torch.cuda.is_bf16_supported() else ("fp32", "CUDA without bf16")
    elif device.type != "cpu":
        precision, why = "fp32", f"{device.type} (no autocast)"
    else:
        dist = torch.distributed.is_available() and torch.distributed.is_initialized()
        if not dist or torch.distributed.get_rank() == 0:
            verdict = probe_cpu(probe_shape(cfg), run_probe=lambda shape: probe(shape, cfg=cfg))
            t = verdict["timings"]
            precision = verdict["precision"]
            why = (f"{'cached ' if verdict['cached'] else ''}probe fp32 {t['fp32'] * 1e3:.1f} ms, "
                   f"bf16 {t['bf16'] * 1e3:.1f} ms ({verdict['key']})")
        else:
            why = "rank 0's probe"
        if dist and torch.distributed.get_world_size() > 1:
            box = [precision]
            torch.distributed.broadcast_object_list(box, src=0)
            precision = box[0]
    if log is not None:
        log(f"train.precision=auto -> {precision} ({why})")
    return precision
