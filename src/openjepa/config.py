"""Typed run configuration: dataclass defaults -> short YAML -> `--section.key=value` overrides.

A run is described by one `Config` holding one dataclass per section (`data`, `model`, `mask`, `views`,
`reg`, `optim`, `train`, `eval`, `video`, `world`). `load_config(path, overrides)` merges the three layers and
checks what needs no registry: an unknown section or key raises `ConfigError` naming it (with the closest valid
name for typos), and a value of the wrong type or out of range raises `ConfigError` naming the key.

This module imports no other openjepa module. The checks that need the registries (method, dataset and encoder
names, the method's default for `reg.ema`, the keys a method cannot honour) are `openjepa.validate.check_config`,
which every entry point runs on a loaded config.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A configuration key or value is invalid; the message names the key."""


def _check(cond: bool, key: str, msg: str) -> None:
    if not cond:
        raise ConfigError(f"{key}: {msg}")


def check_env(cond: bool, key: str, msg: str) -> None:
    """The env configs' (data/envs, data/driving) check: a ConfigError naming `env.<key>` unless `cond`."""
    _check(cond, f"env.{key}", msg)


# datasets decoded from files in DataLoader workers (train/run.py STREAMING holds their readers)
STREAMING_DATASETS = ("image_folder", "shards", "video_folder")


@dataclass
class DataConfig:
    # fashion_mnist | images (a folder of PNG/JPEG or an .npy array, see `path`) | physics (procedural videos,
    # see video.*) | videos (a folder of user videos at `path`, see data/video.py) | synthetic (random pixels, for
    # speed tests) | trajectories (collected env episodes, see data/trajectories.py) | kitti (a KITTI root at `path`,
    # odometry or raw layout, see data/kitti.py); see train/run.py DATASETS.
    # Streamed from `path` (decoded in DataLoader workers, memory O(batch); train/run.py STREAMING):
    # image_folder (root/<class>/*.jpg|png) | shards (WebDataset-style .tar) | video_folder (.mp4/.avi/.npy clips)
    dataset: str = "fashion_mnist"
    path: str | None = None  # dataset location; for fashion_mnist an optional directory searched first
    img_size: int = 28  # images are resized/cropped to img_size x img_size
    channels: int = 1  # 1 (grey) or 3 (RGB); inputs are converted
    batch_size: int = 128  # global batch size
    crop_scale: tuple[float, float] = (0.3, 1.0)  # random-resized-crop area range (I-JEPA: 0.3-1.0)
    flip: bool = False  # random horizontal flip (I-JEPA uses none)
    skip_bad: bool = False  # skip unreadable image files (counted in a warning) instead of failing
    workers: int = 4  # DataLoader worker processes decoding + augmenting (streaming datasets only)
    prefetch: int = 2  # batches each worker prepares ahead (DataLoader prefetch_factor; streaming only)
    max_bad_fraction: float = 0.001  # unreadable files tolerated (replaced, logged) before the run stops (streaming)
    index_dir: str | None = None  # where file indexes are cached (streaming; default ~/.cache/openjepa/index)
    # fashion_mnist: leave a seeded carve of this many train images out of training (data/fashion_mnist.py
    # holdout_split): the validation set of `openjepa bench images_search`; 0 trains on the whole train split
    val_holdout: int = 0

    def __post_init__(self) -> None:
        _check(self.dataset not in ("images", "videos", "kitti", *STREAMING_DATASETS) or bool(self.path), "data.path",
               f"is required when data.dataset={self.dataset!r}")
        _check(self.workers >= 0, "data.workers", f"must be >= 0, got {self.workers}")
        _check(self.prefetch >= 1, "data.prefetch", f"must be >= 1, got {self.prefetch}")
        _check(0 <= self.max_bad_fraction <= 1, "data.max_bad_fraction",
               f"must be in [0, 1], got {self.max_bad_fraction}")
        _check(self.img_size >= 4, "data.img_size", f"must be >= 4, got {self.img_size}")
        _check(self.val_holdout >= 0, "data.val_holdout", f"must be >= 0, got {self.val_holdout}")
        _check(self.val_holdout == 0 or self.dataset == "fashion_mnist", "data.val_holdout",
               f"carves Fashion-MNIST's train split; data.dataset={self.dataset!r} has no such split (leave it 0)")
        _check(self.channels in (1, 3), "data.channels", f"must be 1 or 3, got {self.channels}")
        _check(self.batch_size >= 1, "data.batch_size", f"must be >= 1, got {self.batch_size}")
        lo, hi = self.crop_scale
        _check(0 < lo <= hi <= 1, "data.crop_scale", f"must satisfy 0 < lo <= hi <= 1, got {self.crop_scale}")


@dataclass
class ModelConfig:
    encoder: str = "vit"  # key of openjepa.models.ENCODERS
    patch_size: int = 4  # square patches; img_size must be divisible by it
    dim: int = 192  # encoder width
    depth: int = 6  # encoder blocks
    heads: int = 3  # encoder attention heads
    mlp_ratio: float = 4.0
    pred_dim: int = 96  # predictor width (narrow: ~0.3-0.5x the encoder)
    pred_depth: int = 4
    pred_heads: int = 3
    proj_hidden: int = 512  # projector MLP width (LeJEPA: pooled encoder output -> projector -> embedding)
    proj_dim: int = 64  # projector output = the embedding that LeJEPA's invariance and SIGReg terms see

    def __post_init__(self) -> None:
        for key in ("patch_size", "dim", "depth", "heads", "pred_dim", "pred_depth", "pred_heads", "proj_hidden",
                    "proj_dim"):
            _check(getattr(self, key) >= 1, f"model.{key}", f"must be >= 1, got {getattr(self, key)}")
        headless = self.encoder in ("cnn", "cnn_map", "resnet")  # the CNNs have no attention heads
        _check(headless or self.dim % self.heads == 0, "model.heads",
               f"model.dim={self.dim} must be divisible by model.heads={self.heads}")
        _check(self.mlp_ratio > 0, "model.mlp_ratio", f"must be > 0, got {self.mlp_ratio}")


@dataclass
class MaskConfig:
    n_targets: int = 4  # target blocks per image
    target_scale: tuple[float, float] = (0.15, 0.2)  # area fraction of each target block
    target_aspect: tuple[float, float] = (0.75, 1.5)  # h/w, drawn log-uniformly, independent of the scale
    context_scale: tuple[float, float] = (0.85, 1.0)  # area fraction of the context block (targets then removed)
    context_aspect: tuple[float, float] = (1.0, 1.0)
    min_context: int = 4  # fewest context patches kept per image

    def __post_init__(self) -> None:
        _check(self.n_targets >= 1, "mask.n_targets", f"must be >= 1, got {self.n_targets}")
        _check(self.min_context >= 1, "mask.min_context", f"must be >= 1, got {self.min_context}")
        for key in ("target_scale", "context_scale"):
            lo, hi = getattr(self, key)
            _check(0 < lo <= hi <= 1, f"mask.{key}", f"must satisfy 0 < lo <= hi <= 1, got {(lo, hi)}")
        for key in ("target_aspect", "context_aspect"):
            lo, hi = getattr(self, key)
            _check(0 < lo <= hi, f"mask.{key}", f"must satisfy 0 < lo <= hi, got {(lo, hi)}")


@dataclass
class ViewsConfig:
    """Multi-view augmentation of view-invariance methods (LeJEPA): `global_views` crops at data.img_size with
    data.crop_scale, plus `local_views` smaller crops resampled to `local_size` pixels."""
    global_views: int = 2  # crops at full resolution; their mean embedding is the target of every view
    local_views: int = 2  # extra low-resolution crops (0: none)
    local_size: int = 16  # side of a local view in pixels (divisible by model.patch_size)
    local_scale: tuple[float, float] = (0.1, 0.4)  # area fraction of a local crop

    def __post_init__(self) -> None:
        _check(self.global_views >= 1, "views.global_views", f"must be >= 1, got {self.global_views}")
        _check(self.local_views >= 0, "views.local_views", f"must be >= 0, got {self.local_views}")
        _check(self.global_views + self.local_views >= 2, "views.local_views", "need at least 2 views in all")
        _check(self.local_size >= 1, "views.local_size", f"must be >= 1, got {self.local_size}")
        lo, hi = self.local_scale
        _check(0 < lo <= hi <= 1, "views.local_scale", f"must satisfy 0 < lo <= hi <= 1, got {self.local_scale}")


REG_KINDS = ("none", "vicreg", "sigreg", "vicreg+sigreg")
REG_ON = ("context", "predicted", "context+predicted")


@dataclass
class RegConfig:
    """Anti-collapse mechanism of a JEPA run, independent of the method: an EMA target (or none) and zero or
    more regularisers on the online encoder's pooled context embeddings."""
    # target encoder = EMA of the online one (stop-grad); false: the online encoder under stop-grad (I-JEPA).
    # unset: the method's default (true for ijepa; false for mae and lejepa, which have no target encoder)
    ema: bool | None = None
    kind: str = "none"  # none | vicreg | sigreg | vicreg+sigreg
    # which pooled embeddings the regularisers see (I-JEPA): the online encoder's context tokens, the
    # predictor's outputs, or both (terms averaged). Target tokens are under stop-grad: a term there has no
    # gradient. MAE: context only (its predictions are pixels); LeJEPA: always its projected views.
    on: str = "context"
    var_weight: float = 1.0  # VICReg variance hinge weight
    cov_weight: float = 0.04  # VICReg covariance weight
    sigreg_lambda: float = 0.05  # LeJEPA convention: loss = (1 - lambda) * prediction + lambda * SIGReg
    sigreg_directions: int = 256  # random 1-D projections, redrawn every step (seed shared by all ranks)
    sigreg_points: int = 17  # trapezoid points of the Epps-Pulley integral on [0, sigreg_t_max]
    sigreg_t_max: float = 3.0

    def __post_init__(self) -> None:
        _check(self.kind in REG_KINDS, "reg.kind", f"must be one of {', '.join(REG_KINDS)}; got {self.kind!r}")
        _check(self.on in REG_ON, "reg.on", f"must be one of {', '.join(REG_ON)}; got {self.on!r}")
        _check(self.var_weight >= 0 and self.cov_weight >= 0, "reg.var_weight", "weights must be >= 0")
        _check(0 <= self.sigreg_lambda <= 1, "reg.sigreg_lambda", f"must be in [0, 1], got {self.sigreg_lambda}")
        _check(self.sigreg_directions >= 1, "reg.sigreg_directions", "must be >= 1")
        _check(self.sigreg_points >= 2, "reg.sigreg_points", "must be >= 2")
        _check(self.sigreg_t_max > 0, "reg.sigreg_t_max", "must be > 0")

    @property
    def mechanism(self) -> str:
        """The mechanism's name as in the benchmarks: e.g. 'ema', 'ema+vicreg', 'sigreg', 'none'."""
        parts = (["ema"] if self.ema else []) + ([] if self.kind == "none" else self.kind.split("+"))
        return "+".join(parts) or "none"


@dataclass
class OptimConfig:
    lr: float = 1e-3  # peak learning rate (reached after warm-up)
    start_lr: float = 2e-4  # learning rate at step 0
    final_lr: float = 1e-6  # learning rate at the last step (cosine decay)
    warmup_frac: float = 0.1  # fraction of steps spent in linear warm-up
    weight_decay: float = 0.04  # weight decay at step 0 ...
    final_weight_decay: float = 0.4  # ... rising on a cosine to this value (I-JEPA)
    betas: tuple[float, float] = (0.9, 0.999)
    grad_clip: float = 1.0  # max global grad norm; 0 disables clipping
    ema_start: float = 0.996  # target-encoder EMA momentum at step 0 ...
    ema_end: float = 1.0  # ... linearly increased to this value at the last step

    def __post_init__(self) -> None:
        for key in ("lr", "start_lr", "final_lr", "weight_decay", "final_weight_decay", "grad_clip"):
            _check(getattr(self, key) >= 0, f"optim.{key}", f"must be >= 0, got {getattr(self, key)}")
        _check(0 <= self.warmup_frac < 1, "optim.warmup_frac", f"must be in [0, 1), got {self.warmup_frac}")
        _check(0 <= self.ema_start <= 1 and 0 <= self.ema_end <= 1, "optim.ema_start", "EMA momenta must lie in [0, 1]")
        _check(all(0 <= b < 1 for b in self.betas), "optim.betas", f"must lie in [0, 1), got {self.betas}")


@dataclass
class TrainConfig:
    method: str = "ijepa"  # key of openjepa.methods.METHODS
    steps: int = 1000  # optimiser steps (the schedules span exactly this many)
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    precision: str = "bf16"  # bf16 (autocast) | fp32 | auto (CUDA: bf16 where supported; CPU: the faster of the
    # two in a short probe of this machine, cached in ~/.cache/openjepa/precision.json; train/precision.py)
    loss: str = "smooth_l1"  # smooth_l1 (I-JEPA code) | l2 (I-JEPA paper)
    log_every: int = 10  # steps between metrics.jsonl rows
    monitor_every: int = 100  # steps between online collapse panel + kNN probe (0 disables)
    monitor_samples: int = 512  # held-out images used by the online panel
    ckpt_every: int = 500  # steps between checkpoints (step_N.pt, last.pt); best.pt follows the online kNN probe
    accum_steps: int = 1  # micro-batches per step (gradients summed): data.batch_size stays the global batch
    parallel: str = "ddp"  # under torchrun: ddp (replicated weights, one gradient all-reduce) | fsdp (sharded)
    keep_last: int = 3  # step checkpoints kept (older ones are deleted)
    max_bad_steps: int = 3  # non-finite losses/gradients in a row (each step skipped) before acting
    on_nonfinite: str = "rollback"  # rollback (to the newest valid checkpoint, lr lowered) | stop (with a report)
    rollback_lr_factor: float = 0.5  # the learning rate is multiplied by this at each rollback
    max_rollbacks: int = 2  # then stop
    stop_after: int = 0  # stop (as if killed) after this many steps of this invocation; 0 = run to the end
    threads: int = 0  # torch CPU threads; 0 = torch default
    progress: bool = True  # tqdm progress bar
    # torch.compile every transformer block (train/compile.py; dynamic token counts, so varying mask sizes do not
    # recompile); opt-in until measured on a GPU
    compile: bool = False

    def __post_init__(self) -> None:
        _check(self.steps >= 1, "train.steps", f"must be >= 1, got {self.steps}")
        _check(self.precision in ("bf16", "fp32", "auto"), "train.precision",
               f"must be 'bf16', 'fp32' or 'auto', got {self.precision!r}")
        _check(self.loss in ("smooth_l1", "l2"), "train.loss", f"must be 'smooth_l1' or 'l2', got {self.loss!r}")
        dev = self.device.split(":")[0]
        _check(dev in ("auto", "cpu", "cuda", "mps"), "train.device", f"must be auto, cpu, cuda[:N] or mps, got {self.device!r}")
        _check(self.parallel in ("ddp", "fsdp"), "train.parallel", f"must be 'ddp' or 'fsdp', got {self.parallel!r}")
        _check(self.on_nonfinite in ("rollback", "stop"), "train.on_nonfinite",
               f"must be 'rollback' or 'stop', got {self.on_nonfinite!r}")
        _check(0 < self.rollback_lr_factor <= 1, "train.rollback_lr_factor",
               f"must be in (0, 1], got {self.rollback_lr_factor}")
        for key in ("log_every", "ckpt_every", "keep_last", "max_bad_steps", "accum_steps"):
            _check(getattr(self, key) >= 1, f"train.{key}", f"must be >= 1, got {getattr(self, key)}")
        for key in ("monitor_every", "stop_after", "threads", "max_rollbacks"):
            _check(getattr(self, key) >= 0, f"train.{key}", f"must be >= 0, got {getattr(self, key)}")
        _check(self.monitor_samples >= 16, "train.monitor_samples", f"must be >= 16, got {self.monitor_samples}")
        _check(not (self.compile and self.parallel == "fsdp"), "train.compile",
               "is not supported with train.parallel=fsdp (FSDP's per-block hooks would be traced); use ddp or drop it")


EVAL_PROTOCOLS = ("mean", "lastk", "layernorm", "attentive")  # eval/protocols.py says what each one is


def protocol_names(protocols: str) -> list[str]:
    """The names in a comma-separated eval.protocols ("mean, lastk" -> ["mean", "lastk"]), unchecked."""
    return [p.strip() for p in str(protocols).split(",")]


@dataclass
class EvalConfig:
    train_samples: int = 60000  # labelled Fashion-MNIST train images used to fit the probes (<= 60000)
    test_samples: int = 10000  # Fashion-MNIST test images scored (<= 10000)
    knn_k: int = 20
    knn_temperature: float = 0.07
    batch_size: int = 512  # feature-extraction batch
    probe_iters: int = 200  # L-BFGS iterations per linear-probe fit
    # probe protocols scored per row (eval/protocols.py), comma-separated from EVAL_PROTOCOLS; "mean" alone is the
    # row's linear_top1/knn_top1 as always, any other adds a per-protocol dict to each row
    protocols: str = "mean"
    lastk: int = 4  # blocks concatenated by the `lastk` protocol
    attentive_epochs: int = 10  # the attentive probe's fixed training budget (epochs over the train features)

    def __post_init__(self) -> None:
        bad = [p for p in protocol_names(self.protocols) if p not in EVAL_PROTOCOLS]
        _check(not bad, "eval.protocols", f"unknown protocol(s) {bad}; a comma-separated list of "
                                          f"{', '.join(EVAL_PROTOCOLS)}")
        _check(self.lastk >= 1, "eval.lastk", f"must be >= 1, got {self.lastk}")
        _check(self.attentive_epochs >= 1, "eval.attentive_epochs", f"must be >= 1, got {self.attentive_epochs}")
        _check(self.probe_iters >= 1, "eval.probe_iters", f"must be >= 1, got {self.probe_iters}")
        _check(100 <= self.train_samples <= 60000, "eval.train_samples", f"must be in [100, 60000], got {self.train_samples}")
        _check(100 <= self.test_samples <= 10000, "eval.test_samples", f"must be in [100, 10000], got {self.test_samples}")
        _check(self.knn_k >= 1, "eval.knn_k", f"must be >= 1, got {self.knn_k}")
        _check(self.knn_temperature > 0, "eval.knn_temperature", "must be > 0")
        _check(self.batch_size >= 1, "eval.batch_size", "must be >= 1")


VIDEO_MASKS = ("future", "tube", "mixed", "next")


@dataclass
class VideoConfig:
    """Video methods (vjepa, vpixel): clip length, tubelets, what is predicted, and the procedural data."""
    frames: int = 16  # frames per training clip (a random temporal crop of each longer video)
    tubelet: int = 2  # frames per tubelet (tokens span tubelet x patch_size x patch_size pixels)
    context_frames: int = 8  # future prediction: the first context_frames are seen, the rest predicted
    # future: context = first frames, targets = all later tokens; tube: V-JEPA 3-D multi-block masks (cfg.mask's
    # 2-D blocks extended over all frames); mixed: each step draws one of the two; next: teacher-forced next-slice
    # prediction (encoders frame-causal; every slice after the first is predicted from the slices before it;
    # surprise: each slice after the first context_frames, predicted from every earlier slice of its window)
    mask: str = "future"
    # vjepa's regression target: tokens = the LayerNormed target-encoder tokens (V-JEPA); residual = the same
    # minus their mean over the clip's time slices at each spatial position (the static layout removed, so the
    # loss and the surprise are about what moves)
    target: str = "tokens"
    # predict the change from the last seen slice (mask future or next): prediction of a slice = the previous
    # slice's target (vjepa: its target-encoder tokens; vpixel: its last frame's pixels) + the predictor's output,
    # where the previous slice is slice s-1 (next) or the last context slice (future); "nothing moves" is the
    # predictor's zero output, so the network spends its capacity on what changes
    delta: bool = False
    # how tubelets become tokens: linear (one linear map of the tubelet's pixels) or hmlp (a hierarchical MLP stem:
    # 2 x 2 merges with GELU between them, still one tubelet per token; model.patch_size a power of two)
    stem: str = "linear"
    physics_videos: int = 2000  # data.dataset=physics: training videos generated in memory
    physics_frames: int = 32  # data.dataset=physics: frames per generated video (>= frames)
    physics_seed: int = 0  # training videos use seeds physics_seed .. physics_seed + physics_videos - 1
    # share of the training videos built around an occlusion (data/physics.py occlusion_video: balls rolling or
    # thrown behind occluders, bouncing off hidden wall feet, empty scenes); the rest are physics.train_video's mix
    physics_occlusion: float = 0.0
    physics_ball_scale: float = 1.0  # multiplies the training balls' radii (test quadruplets keep theirs)
    # relative weights of the occlusion scenes' kinds: cross, cross2, arc, wall (bounce off a wall whose foot is
    # hidden), empty (physics.OCCLUSION_KINDS)
    physics_kinds: tuple[float, float, float, float, float] = (0.3, 0.2, 0.2, 0.2, 0.1)
    # share of the cross and wall occlusion scenes with swapped occluder heights (physics.occlusion_video `swap`)
    physics_swap: float = 0.0
    # the training videos' look (data/physics_styles.py): plain (one flat look: coloured backgrounds with a vertical
    # gradient, flat occluders, discs) or random (each scene drawn from the `train` style family: textured
    # backgrounds, floors and occluders, several ball shapes and fills, camera noise, contrast; the physics is the
    # same); the `heldout` family is for testing only (openjepa bench physics --heldout)
    physics_style: str = "plain"
    # opt-in, not yet validated by a benchmark, no preset sets it: render scales k; each training video draws one
    # (data/physics.py video_scales, a stream of its own) and is drawn at k x data.img_size, then box-downsampled to
    # data.img_size (the exact k x k mean), like a high-resolution clip shrunk to the model's input; [1]: as before
    physics_render_scales: tuple[int, ...] = (1,)
    # opt-in, not yet validated, no preset sets it: frame-rate factors f; each training video draws one and films
    # the same scene at 1/f of the frame rate (per-frame velocities x f, gravity x f^2, the same bounces); [1.0]:
    # as before; the test quadruplets keep their timing
    physics_fps_scales: tuple[float, ...] = (1.0,)
    clip_frames: int = 32  # data.dataset=videos or kitti: frames per clip cut from the videos (>= frames)

    def __post_init__(self) -> None:
        _check(self.tubelet >= 1, "video.tubelet", f"must be >= 1, got {self.tubelet}")
        _check(self.frames >= 2 and self.frames % self.tubelet == 0, "video.frames",
               f"must be >= 2 and divisible by video.tubelet={self.tubelet}, got {self.frames}")
        err = context_frames_error(self.context_frames, self.frames, self.tubelet)
        _check(err is None, "video.context_frames", str(err))
        _check(self.mask in VIDEO_MASKS, "video.mask", f"must be one of {', '.join(VIDEO_MASKS)}; got {self.mask!r}")
        _check(not self.delta or self.mask in ("future", "next"), "video.delta",
               f"needs video.mask=future or next (a context that ends at a whole slice), got {self.mask!r}")
        _check(self.target in ("tokens", "residual"), "video.target",
               f"must be tokens or residual; got {self.target!r}")
        _check(self.stem in ("linear", "hmlp"), "video.stem", f"must be linear or hmlp; got {self.stem!r}")
        _check(self.physics_videos >= 1, "video.physics_videos", f"must be >= 1, got {self.physics_videos}")
        _check(self.physics_frames >= self.frames, "video.physics_frames",
               f"must be >= video.frames={self.frames}, got {self.physics_frames}")
        _check(self.physics_seed >= 0, "video.physics_seed", f"must be >= 0, got {self.physics_seed}")
        _check(0.0 <= self.physics_occlusion <= 1.0, "video.physics_occlusion",
               f"must lie in [0, 1], got {self.physics_occlusion}")
        _check(0.0 < self.physics_ball_scale <= 3.0, "video.physics_ball_scale",
               f"must lie in (0, 3], got {self.physics_ball_scale}")
        _check(min(self.physics_kinds) >= 0 and sum(self.physics_kinds) > 0, "video.physics_kinds",
               f"must be non-negative with a positive sum, got {list(self.physics_kinds)}")
        _check(0.0 <= self.physics_swap <= 1.0, "video.physics_swap", f"must lie in [0, 1], got {self.physics_swap}")
        _check(self.physics_style in ("plain", "random"), "video.physics_style",
               f"must be plain or random (the held-out styles never train), got {self.physics_style!r}")
        _check(len(self.physics_render_scales) >= 1 and all(1 <= k <= 8 for k in self.physics_render_scales),
               "video.physics_render_scales",
               f"must be a non-empty list of integers in [1, 8], got {list(self.physics_render_scales)}")
        _check(len(self.physics_fps_scales) >= 1 and all(0.0 < f <= 4.0 for f in self.physics_fps_scales),
               "video.physics_fps_scales",
               f"must be a non-empty list of numbers in (0, 4], got {list(self.physics_fps_scales)}")
        _check(self.clip_frames >= self.frames, "video.clip_frames",
               f"must be >= video.frames={self.frames}, got {self.clip_frames}")


def context_frames_error(context_frames: int, frames: int, tubelet: int) -> str | None:
    """Why `context_frames` given frames cannot open a clip of `frames` frames cut in tubelets of `tubelet`
    frames (None when it can): the one rule for video.context_frames and `openjepa surprise --context`."""
    if 0 < context_frames < frames and context_frames % tubelet == 0:
        return None
    return (f"must be a multiple of video.tubelet={tubelet} in (0, video.frames={frames}) (the clip length), "
            f"got {context_frames}")


WORLD_PREDICTORS = ("gru", "transformer", "conv")


@dataclass
class WorldConfig:
    """Action-conditioned world model (train.method=world_model; PLDM / LeWorldModel). The encoder is
    model.encoder (cnn for 65x65 control frames) of width model.dim = the latent size D; the predictor has
    width model.pred_dim, model.pred_depth layers and model.pred_heads heads. Anti-collapse: reg.ema (EMA
    target), reg.kind (VICReg variance + covariance, SIGReg) on the latents of every frame, plus the terms below."""
    predictor: str = "gru"  # gru | transformer (frame-causal) | conv (latent maps: model.encoder=cnn_map)
    cond: str = "adaln"  # transformer only: adaln (actions modulate their frame's token) | tokens (interleaved)
    action_dim: int = 2  # A, the env's action size
    frames: int = 17  # model frames per training window (cut at random from longer episodes)
    frameskip: int = 1  # env steps per model step (temporal abstraction, DINO-WM uses 5): a window takes every
    # frameskip-th frame of (frames - 1) * frameskip + 1 env frames and the frameskip actions between two of them
    # concatenated (predictor action size frameskip * action_dim); planning holds each planned action frameskip steps
    rollout: int = 16  # open-loop steps of the multi-step rollout loss from the window's first frame (0: none)
    tf_weight: float = 1.0  # teacher-forced one-step prediction loss
    rollout_weight: float = 1.0  # multi-step rollout loss
    smooth_weight: float = 0.0  # temporal smoothness: mean |s_{t+1} - s_t|^2 (PLDM)
    idm_weight: float = 1.0  # inverse dynamics: predict a_t from (s_t, s_{t+1}) (PLDM)
    target_stopgrad: bool = False  # without EMA: stop the gradient through target latents (PLDM/LeWM: false)
    # regularise window-centred latents (each frame's minus its window's mean): what stays put over a window (a
    # random layout) cannot meet the variance target, so the agent, which moves, must be encoded
    center_reg: bool = False

    def __post_init__(self) -> None:
        _check(self.predictor in WORLD_PREDICTORS, "world.predictor",
               f"must be one of {', '.join(WORLD_PREDICTORS)}; got {self.predictor!r}")
        _check(self.cond in ("adaln", "tokens"), "world.cond", f"must be 'adaln' or 'tokens', got {self.cond!r}")
        _check(self.action_dim >= 1, "world.action_dim", f"must be >= 1, got {self.action_dim}")
        _check(self.frames >= 2, "world.frames", f"must be >= 2, got {self.frames}")
        _check(self.frameskip >= 1, "world.frameskip", f"must be >= 1, got {self.frameskip}")
        _check(0 <= self.rollout <= self.frames - 1, "world.rollout",
               f"must be in [0, world.frames - 1 = {self.frames - 1}], got {self.rollout}")
        for key in ("tf_weight", "rollout_weight", "smooth_weight", "idm_weight"):
            _check(getattr(self, key) >= 0, f"world.{key}", f"must be >= 0, got {getattr(self, key)}")
        _check(self.tf_weight > 0 or (self.rollout > 0 and self.rollout_weight > 0), "world.tf_weight",
               "no prediction loss: set world.tf_weight > 0 or world.rollout and world.rollout_weight > 0")


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    mask: MaskConfig = field(default_factory=MaskConfig)
    views: ViewsConfig = field(default_factory=ViewsConfig)
    reg: RegConfig = field(default_factory=RegConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    video: VideoConfig = field(default_factory=VideoConfig)
    world: WorldConfig = field(default_factory=WorldConfig)

    def __post_init__(self) -> None:
        _check(self.data.batch_size % self.train.accum_steps == 0, "train.accum_steps",
               f"data.batch_size={self.data.batch_size} must be divisible by train.accum_steps={self.train.accum_steps}")
        _check(self.model.encoder in ("cnn", "cnn_map") or self.data.img_size % self.model.patch_size == 0, "model.patch_size",
               f"data.img_size={self.data.img_size} must be divisible by model.patch_size={self.model.patch_size}")
        m = self.model
        headless = self.train.method == "world_model" and self.world.predictor in ("gru", "conv")  # no attention
        _check(headless or m.pred_dim % m.pred_heads == 0, "model.pred_heads",
               f"model.pred_dim={m.pred_dim} must be divisible by model.pred_heads={m.pred_heads}")
        p = self.model.patch_size
        _check(self.video.stem == "linear" or (p >= 2 and p & (p - 1) == 0), "video.stem",
               f"hmlp merges 2 x 2 at a time: model.patch_size must be a power of two >= 2, got {p}")
        lastk = "lastk" in protocol_names(self.eval.protocols)
        _check(not lastk or self.eval.lastk <= self.model.depth, "eval.lastk",
               f"the lastk protocol concatenates the last eval.lastk={self.eval.lastk} blocks, but the encoder has "
               f"model.depth={self.model.depth}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _changed(section: Any, key: str) -> bool:
    """Whether `section.key` differs from its dataclass default (a key a run may leave at its default even
    where it has no effect)."""
    f = next(f for f in dataclasses.fields(section) if f.name == key)
    default = f.default_factory() if f.default is dataclasses.MISSING else f.default  # type: ignore[misc]
    return getattr(section, key) != default


def refuse_changed(cfg: Config, keys: list[str] | tuple[str, ...], why: str) -> None:
    """ConfigError naming the first of `keys` ("section.key", or "section.*" for all of a section) set away from
    its default: `why` says who ignores it."""
    for key in keys:
        section, name = key.split(".", 1)
        names = [f.name for f in dataclasses.fields(getattr(cfg, section))] if name == "*" else [name]
        for n in names:
            _check(not _changed(getattr(cfg, section), n), f"{section}.{n}", why)


def check_unused(cfg: Config) -> None:
    """Refuse a key set away from its default where another key of the config turns it off (a new run's check,
    part of `openjepa.validate.check_config`; saved configs are not re-checked)."""
    d, r, w = cfg.data, cfg.reg, cfg.world
    _check(not d.path or d.dataset not in ("synthetic", "physics"), "data.path",
           f"data.dataset={d.dataset!r} is generated, not read: drop data.path")
    _check(not d.skip_bad or d.dataset == "images", "data.skip_bad",
           f"only image folders read in memory (data.dataset=images) take it; streaming datasets always skip "
           f"unreadable files (data.max_bad_fraction); got data.dataset={d.dataset!r}")
    for key in ("workers", "prefetch", "max_bad_fraction", "index_dir"):
        _check(d.dataset in STREAMING_DATASETS or not _changed(d, key), f"data.{key}",
               f"only streaming datasets ({', '.join(STREAMING_DATASETS)}) read it; data.dataset={d.dataset!r} "
               f"is held in memory")
    for key in ("var_weight", "cov_weight"):
        _check("vicreg" in r.kind or not _changed(r, key), f"reg.{key}",
               f"weighs the VICReg terms, which reg.kind={r.kind!r} does not add; set reg.kind=vicreg")
    for key in ("sigreg_lambda", "sigreg_directions", "sigreg_points", "sigreg_t_max"):
        _check("sigreg" in r.kind or not _changed(r, key), f"reg.{key}",
               f"sets up SIGReg, which reg.kind={r.kind!r} does not add; set reg.kind=sigreg")
    _check(w.rollout > 0 or not _changed(w, "rollout_weight"), "world.rollout_weight",
           "weighs the rollout loss, which world.rollout=0 turns off")
    _check(w.predictor == "transformer" or not _changed(w, "cond"), "world.cond",
           f"conditions the transformer predictor; world.predictor={w.predictor!r} takes the actions as inputs")


SECTIONS: dict[str, type] = {f.name: f.default_factory for f in dataclasses.fields(Config)}  # type: ignore[misc]


def _suggest(name: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else f" (valid: {', '.join(sorted(valid))})"


def _coerce(key: str, value: Any, typ: Any) -> Any:
    """Check/convert one value against a dataclass field annotation; raise ConfigError naming the key."""
    origin = typing.get_origin(typ)
    args = typing.get_args(typ)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(key, value, inner[0])
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:  # tuple[X, ...]: a list of any length
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return tuple(_coerce(f"{key}[{i}]", v, args[0]) for i, v in enumerate(value))
    if origin is tuple:
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise ConfigError(f"{key}: expected a list of {len(args)} values, got {value!r}")
        return tuple(_coerce(f"{key}[{i}]", v, a) for i, (v, a) in enumerate(zip(value, args)))
    if typ is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ConfigError(f"{key}: expected true/false, got {value!r}")
    if typ is int:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        try:
            f = float(value)
        except ValueError:
            raise ConfigError(f"{key}: expected an integer, got {value!r}") from None
        if not f.is_integer():
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return int(f)
    if typ is float:
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}: expected a number, got {value!r}") from None
    if typ is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    return value


def _parse_override(item: str) -> tuple[str, str, Any]:
    body = item[2:] if item.startswith("--") else item
    if "=" not in body or "." not in body.split("=", 1)[0]:
        raise ConfigError(f"override {item!r}: expected --section.key=value, e.g. --train.steps=200")
    dotted, raw = body.split("=", 1)
    section, key = dotted.split(".", 1)
    try:
        return section, key, yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError as e:
        raise ConfigError(f"{dotted}: cannot parse the value {raw!r} ({type(e).__name__})") from None


def build_config(raw: dict[str, Any], overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Build and validate a Config from a nested dict (YAML layer) and `section.key=value` overrides."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"config must be a mapping of sections, got {type(raw).__name__}")
    merged: dict[str, dict[str, Any]] = {}
    for section, values in raw.items():
        if section == "meta":  # provenance written next to a run; not a setting
            continue
        if section not in SECTIONS:
            raise ConfigError(f"unknown config section {section!r}{_suggest(section, list(SECTIONS))}")
        if values is None:
            values = {}
        if not isinstance(values, dict):
            raise ConfigError(f"{section}: expected a mapping of keys, got {values!r}")
        merged[section] = dict(values)
    for item in overrides:
        section, key, value = _parse_override(item)
        if section not in SECTIONS:
            raise ConfigError(f"unknown config section {section!r} in {item!r}{_suggest(section, list(SECTIONS))}")
        merged.setdefault(section, {})[key] = value

    built: dict[str, Any] = {}
    for section, cls in SECTIONS.items():
        hints = typing.get_type_hints(cls)
        names = [f.name for f in dataclasses.fields(cls)]
        kwargs = {}
        for key, value in merged.get(section, {}).items():
            if key not in names:
                raise ConfigError(f"unknown key {section}.{key}{_suggest(key, names)}")
            kwargs[key] = _coerce(f"{section}.{key}", value, hints[key])
        built[section] = cls(**kwargs)
    return Config(**built)


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Load a YAML file (or defaults when `path` is None) and apply `--section.key=value` overrides."""
    raw: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"config file not found: {p}")
        try:
            raw = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{p}: not valid YAML: {e}") from None
    return build_config(raw, overrides)


def config_to_yaml(cfg: Config, meta: dict[str, Any] | None = None) -> str:
    d: dict[str, Any] = {}
    if meta:
        d["meta"] = meta
    d.update(_plain(cfg.to_dict()))
    return yaml.safe_dump(d, sort_keys=False)


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj
