"""Training on streaming datasets (train/run.py STREAMING, data/streaming): every image method and the video
methods train from files decoded in DataLoader workers; a run killed with SIGKILL mid-epoch resumes to the
uninterrupted losses with workers > 0; masks are drawn for the global batch and sliced per rank; unreadable files
are replaced, named in metrics.jsonl and stop the run past data.max_bad_fraction; a missing root is named."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from openjepa.cli import main
from openjepa.config import ConfigError, load_config
from openjepa.data.streaming import BadDataError
from openjepa.methods import METHODS
from openjepa.train.loop import train
from openjepa.train.run import find_preset
from openjepa.validate import check_config

QUIET = dict(log=lambda *a: None)


def image_folder(root: Path, n: int = 48) -> Path:
    """n small RGB PNGs of varied sizes in two class folders (labels 0, 1)."""
    rng = np.random.default_rng(0)
    for i in range(n):
        d = root / f"class{i % 2}"
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (18 + i % 5, 20 + i % 3, 3), dtype=np.uint8)).save(d / f"{i}.png")
    return root


def args(root: Path, tmp: Path, *extra: str) -> list[str]:
    return ["--train.progress=false", "--data.dataset=image_folder", f"--data.path={root}",
            f"--data.index_dir={tmp / 'index'}", "--data.img_size=16", "--data.channels=3", "--data.batch_size=8",
            "--data.workers=2", "--train.steps=6", "--train.log_every=1", "--train.monitor_every=0",
            "--train.ckpt_every=4", "--train.monitor_samples=16", "--train.precision=fp32", *extra]


def cfg_of(root, tmp, *extra):
    return check_config(load_config(find_preset("smoke"), args(root, tmp, *extra)))


def rows(run_dir):
    return [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]


def losses(run_dir):
    return [(r["step"], r["loss"]) for r in rows(run_dir) if "loss" in r]


def test_sigkill_mid_epoch_then_resume_matches_with_workers(tmp_path, sigkill_after_checkpoint):
    """40 images, batch 8: 5 steps an epoch; the checkpoint at step 4 is mid-epoch. A real process killed with
    SIGKILL after it resumes (2 workers each time) to the uninterrupted run's losses, bit for bit."""
    root = image_folder(tmp_path / "imgs", 48)
    ref, run = tmp_path / "ref", tmp_path / "run"
    summary = train(cfg_of(root, tmp_path), ref, **QUIET)
    assert summary["finished"] and np.isfinite(summary["final_loss"])
    cmd = [sys.executable, "-m", "openjepa", "train", "smoke", "--out", str(run), *args(root, tmp_path)]
    assert sigkill_after_checkpoint(cmd, run)
    assert main(["train", "--resume", str(run), "--data.workers=1"]) == 0  # the worker count may change
    assert losses(ref) == losses(run) and len(losses(ref)) == 6


@pytest.mark.parametrize("method", ["mae", "lejepa"])
def test_other_image_methods_stream(method, tmp_path):
    root = image_folder(tmp_path / "imgs")
    extra = [f"--train.method={method}", "--train.steps=2", "--train.monitor_every=2"]
    if method == "lejepa":
        extra += ["--views.local_size=8", "--views.local_views=1"]
    cfg = load_config(find_preset("smoke"), args(root, tmp_path, *extra))  # smoke's predictor keys: not checked
    summary = train(cfg, tmp_path / "run", **QUIET)
    assert summary["finished"] and np.isfinite(summary["final_loss"])
    assert any("rankme" in r for r in rows(tmp_path / "run"))


def test_video_folder_trains_vjepa(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(20):
        (tmp_path / "clips").mkdir(exist_ok=True)
        np.save(tmp_path / "clips" / f"{i}.npy", rng.integers(0, 255, (10 + i % 3, 20, 20, 3), dtype=np.uint8))
    cfg = check_config(load_config(None, [
        "--model.dim=48", "--model.depth=2", "--model.pred_dim=24", "--model.pred_depth=1", "--train.progress=false", "--train.method=vjepa", "--data.dataset=video_folder",
        f"--data.path={tmp_path / 'clips'}", f"--data.index_dir={tmp_path / 'index'}", "--data.img_size=16",
        "--data.channels=3", "--data.batch_size=4", "--data.workers=0", "--video.frames=8",
        "--video.context_frames=4", "--train.steps=2", "--train.log_every=1", "--train.monitor_every=2",
        "--train.monitor_samples=16", "--train.precision=fp32"]))
    summary = train(cfg, tmp_path / "run", **QUIET)
    assert summary["finished"] and np.isfinite(summary["final_loss"])
    assert any("copy_last_gain" in r for r in rows(tmp_path / "run"))


@pytest.mark.parametrize("method", ["ijepa", "vjepa"])
def test_masks_are_drawn_for_the_global_batch_then_sliced(method):
    """Two ranks' collate_decoded rows, concatenated, are the one-process batch: the masks of a rank are its rows
    of the global batch's masks (drawing them for the local batch would repeat rank 0's masks on rank 1)."""
    video = ["--data.dataset=physics", "--data.img_size=16", "--video.mask=tube", "--data.flip=true"] \
        if method == "vjepa" else []
    cfg = load_config(None, [f"--train.method={method}", *video])
    m = METHODS[method](cfg)
    x = torch.randn(8, 1, *((cfg.video.frames,) if method == "vjepa" else ()), cfg.data.img_size, cfg.data.img_size)
    whole = m.collate_decoded(x, torch.Generator().manual_seed(3), 8, slice(0, 8))
    parts = [m.collate_decoded(x[r * 4:(r + 1) * 4], torch.Generator().manual_seed(3), 8, slice(r * 4, (r + 1) * 4))
             for r in range(2)]
    for key in ("x", "ctx_idx", "tgt_idx"):
        assert torch.equal(torch.cat([p[key] for p in parts]), whole[key]), key
    assert not torch.equal(parts[0]["tgt_idx"], parts[1]["tgt_idx"])
    assert parts[0]["seed"] == parts[1]["seed"] == whole["seed"]


def corrupt(root: Path) -> Path:
    bad = root / "class0" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really an image" * 8)
    return bad


def test_unreadable_files_are_named_in_metrics_and_limited(tmp_path):
    root = image_folder(tmp_path / "imgs", 47)
    bad = corrupt(root)
    run = tmp_path / "run"
    summary = train(cfg_of(root, tmp_path, "--data.max_bad_fraction=0.1", "--data.workers=1", "--train.steps=5"),
                    run, **QUIET)
    assert summary["finished"]  # one epoch: every file is met once
    named = [r for r in rows(run) if "bad_file" in r]
    assert [r["bad_file"] for r in named] == [str(bad)] and named[0]["reason"]
    with pytest.raises(BadDataError, match="broken.png"):
        train(cfg_of(root, tmp_path, "--data.max_bad_fraction=0", "--data.workers=1", "--train.steps=5"),
              tmp_path / "strict", **QUIET)
    assert str(bad) in [r.get("bad_file") for r in rows(tmp_path / "strict")]


def test_missing_root_and_misplaced_keys_are_named(tmp_path, capsys):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        train(cfg_of(missing, tmp_path), tmp_path / "run", **QUIET)
    with pytest.raises(ConfigError, match="data.workers"):  # in-memory data has no workers
        check_config(load_config(find_preset("smoke"), ["--data.workers=2"]))
    with pytest.raises(ConfigError, match="data.path"):
        load_config(find_preset("smoke"), ["--data.dataset=shards"])
    with pytest.raises(ConfigError, match="data.dataset"):  # images stream to image methods only
        check_config(load_config(find_preset("smoke"), ["--train.method=vjepa", "--data.dataset=image_folder",
                                                        f"--data.path={tmp_path}"]))
