"""Run set-up shared by the CLI commands: device choice, provenance, data, run directories."""

from __future__ import annotations

import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from openjepa.version import __version__
from openjepa.config import STREAMING_DATASETS, Config
from openjepa.data.fashion_mnist import holdout_split, load_fashion_mnist
from openjepa.data.image_files import load_images
from openjepa.data.transforms import to_model_input


def select_device(name: str = "auto") -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"train.device={name!r} but CUDA is not available; use --train.device=auto or cpu")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise RuntimeError(f"train.device={name!r} but MPS is not available; use --train.device=auto or cpu")
    return dev


def git_sha() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        sha = out.stdout.strip()
        if out.returncode == 0 and sha:
            dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                                   text=True, timeout=5, cwd=Path(__file__).resolve().parent).stdout.strip()
            return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return "unknown"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    desc = f"{platform.system()} {platform.machine()}, {cpu}, {torch.get_num_threads()} torch threads"
    if torch.cuda.is_available():
        desc += f", GPU {torch.cuda.get_device_name(0)}"
    return desc


def provenance() -> dict[str, Any]:
    import numpy

    return {
        "git_sha": git_sha(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine(),
        "versions": {"openjepa": __version__, "python": sys.version.split()[0], "torch": str(torch.__version__),
                     "numpy": str(numpy.__version__)},
    }


def fashion_mnist_train(cfg: Config) -> tuple[torch.Tensor, torch.Tensor]:
    """The train split, less the data.val_holdout images of its validation carve (holdout_split) when asked."""
    x, y = load_fashion_mnist("train", cfg.data.path)
    if cfg.data.val_holdout:
        _, keep = holdout_split(x.shape[0], cfg.data.val_holdout)
        x, y = x[keep], y[keep]
    return to_model_input(x, cfg.data.img_size, cfg.data.channels), y


def image_folder(cfg: Config) -> tuple[torch.Tensor, torch.Tensor | None]:
    d = cfg.data
    return load_images(d.path, d.img_size, d.channels, skip_bad=d.skip_bad)


def synthetic_images(cfg: Config) -> tuple[torch.Tensor, None]:
    """Random uint8 images of the configured size and channels (3 x data.batch_size of them, seeded): for speed
    measurements on machines without the real data (a step costs the same whatever the pixels are)."""
    d = cfg.data
    g = torch.Generator().manual_seed(cfg.train.seed)
    return torch.randint(0, 256, (3 * d.batch_size, d.channels, d.img_size, d.img_size), dtype=torch.uint8,
                         generator=g), None


def physics_videos(cfg: Config) -> tuple[torch.Tensor, None]:
    """Procedural physics training videos (data/physics.py), uint8 (N, C, T, H, W), generated in memory."""
    from openjepa.data.physics import train_videos

    v = cfg.video
    x = train_videos(v.physics_videos, v.physics_frames, cfg.data.img_size, cfg.data.channels, v.physics_seed,
                     v.physics_occlusion, v.physics_ball_scale, v.physics_kinds, v.physics_swap,
                     style="train" if v.physics_style == "random" else "plain",
                     render_scales=v.physics_render_scales, fps_scales=v.physics_fps_scales)
    return torch.from_numpy(x), None


def video_folder(cfg: Config) -> tuple[torch.Tensor, None]:
    """User videos under data.path (data/video.py), cut into clips of video.clip_frames frames."""
    from openjepa.data.video import load_video_clips

    d = cfg.data
    return load_video_clips(d.path, d.img_size, d.channels, cfg.video.clip_frames), None


def trajectories(cfg: Config) -> tuple[dict[str, torch.Tensor], None]:
    """A collected trajectory dataset (data/trajectories.py; `openjepa data collect`) at data.path:
    {"obs": uint8 (N, T+1, C, H, W), "a": float32 (N, T, A), "pos": (N, T+1, 2)}, no labels."""
    from openjepa.data.trajectories import load_trajectories

    if not cfg.data.path:
        raise ValueError("data.dataset=trajectories needs --data.path=DIR (make one with `openjepa data collect "
                         "two_rooms --episodes 3000 --steps 80 --out DIR`)")
    x, meta = load_trajectories(cfg.data.path)
    C, H, W = x["obs"].shape[2:]
    if (C, H) != (cfg.data.channels, cfg.data.img_size) or H != W:
        raise ValueError(f"{cfg.data.path}: observations are {C}x{H}x{W}; set --data.channels={C} --data.img_size={H}")
    if x["a"].shape[-1] != cfg.world.action_dim:
        raise ValueError(f"{cfg.data.path}: actions have {x['a'].shape[-1]} dims; set --world.action_dim={x['a'].shape[-1]}")
    return x, None


def kitti_clips(cfg: Config) -> tuple[torch.Tensor, None]:
    """The frames of a KITTI root at data.path (odometry sequences/SS/image_2 or raw drives' image_02/data, real
    or written by `openjepa data driving`; data/kitti.py), cut into clips of video.clip_frames frames."""
    from openjepa.data.kitti import load_kitti_clips

    d = cfg.data
    return load_kitti_clips(d.path, d.img_size, d.channels, cfg.video.clip_frames), None


# data.dataset -> loader(cfg) -> (x, y): x uint8 (N, C, H, W) images, or a tensor / dict of tensors sharing their
# first axis (see data/stream.py) for other kinds of data; y integer labels (N,) or None
DATASETS = {
    "fashion_mnist": fashion_mnist_train,
    "images": image_folder,
    "synthetic": synthetic_images,
    "physics": physics_videos,
    "videos": video_folder,
    "trajectories": trajectories,
    "kitti": kitti_clips,
}


def image_folder_records(cfg: Config):
    """The files of an image folder at data.path (root/<class>/**/*.jpg|png), indexed once (cached)."""
    from openjepa.data.streaming import index_image_folder

    return index_image_folder(cfg.data.path, cfg.data.index_dir)


def shard_records(cfg: Config):
    """The image samples of WebDataset-style plain .tar shards at data.path (a folder of them, or one file)."""
    from openjepa.data.streaming import index_shards

    return index_shards(cfg.data.path, cfg.data.index_dir)


def video_folder_records(cfg: Config):
    """The clips (.npy, .mp4, .avi, ...) of a video folder at data.path; each step decodes a random window."""
    from openjepa.data.streaming import index_video_folder

    return index_video_folder(cfg.data.path, cfg.data.index_dir)


# data.dataset -> records(cfg): a file index (data/streaming/index.py) whose samples are decoded and augmented in
# DataLoader workers batch by batch (memory O(batch)); the names are config.STREAMING_DATASETS
STREAMING = {
    "image_folder": image_folder_records,
    "shards": shard_records,
    "video_folder": video_folder_records,
}
assert tuple(STREAMING) == STREAMING_DATASETS
VIDEO_DATASETS = ("physics", "videos", "video_folder", "kitti")  # datasets of clips (N, C, T, H, W), for the video methods


def load_train_data(cfg: Config):
    """Training data as model input (see DATASETS) and labels if any."""
    return DATASETS[cfg.data.dataset](cfg)


def default_run_dir(config_path: str | None) -> Path:
    stem = Path(config_path).stem if config_path else "run"
    return Path("runs") / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"


CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"  # openjepa/configs/: the presets, package data of the wheel


def find_preset(name: str) -> Path:
    """A config path as given, or the name of a preset shipped with the package (e.g. `smoke`)."""
    p = Path(name)
    if p.is_file():
        return p
    for cand in (CONFIG_DIR / name, CONFIG_DIR / f"{name}.yaml"):
        if cand.is_file():
            return cand
    presets = ", ".join(sorted(c.stem for c in CONFIG_DIR.glob("*.yaml")))
    raise FileNotFoundError(f"config {name!r} not found (neither a file nor a preset; presets: {presets})")
