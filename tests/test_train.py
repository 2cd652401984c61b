"""End-to-end training on the smoke preset (Fashion-MNIST from the Debian package or ~/.cache/openjepa)."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from openjepa.cli import main
from openjepa.config import load_config
from openjepa.train.loop import train
from openjepa.train.run import find_preset

SMOKE = ["--train.progress=false"]


def smoke(overrides=()):
    return load_config(find_preset("smoke"), SMOKE + list(overrides))


def losses(run_dir):
    rows = [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["loss"]) for r in rows if "loss" in r], [r for r in rows if "rankme" in r]


def test_run_directory_contents(tmp_path):
    run = tmp_path / "run"
    summary = train(smoke(), run, log=lambda *a: None)
    assert summary["finished"] and np.isfinite(summary["final_loss"])
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["meta"]["git_sha"] and cfg["meta"]["versions"]["torch"]
    assert cfg["train"]["steps"] == 20
    train_rows, panel_rows = losses(run)
    assert [s for s, _ in train_rows] == [5, 10, 15, 20]
    assert {"rankme", "feat_std", "mean_cos", "collapsed", "knn_top1"} <= set(panel_rows[0])
    assert (run / "checkpoints" / "last.pt").is_file() and (run / "checkpoints" / "best.pt").is_file()


def test_resume_matches_uninterrupted_run(tmp_path):
    full, split = tmp_path / "full", tmp_path / "split"
    train(smoke(), full, log=lambda *a: None)
    first = train(smoke(["--train.stop_after=10"]), split, log=lambda *a: None)
    assert not first["finished"] and first["steps"] == 10
    with pytest.raises(FileExistsError, match="--resume"):
        train(smoke(), split, log=lambda *a: None)
    train(smoke(), split, resume=True, log=lambda *a: None)
    assert losses(full) == losses(split)


def test_training_seconds_are_logged_checkpointed_and_add_up_over_resumes(tmp_path):
    run = tmp_path / "run"
    train(smoke(["--train.stop_after=10"]), run, log=lambda *a: None)
    ckpt_path = run / "checkpoints" / "step_00000010.pt"
    ckpt = torch.load(ckpt_path, weights_only=False)
    assert 0 < ckpt["train_seconds"] < 600
    ckpt["train_seconds"] = 1000.0  # as if the first invocation had trained for 1,000 s
    torch.save(ckpt, ckpt_path)
    train(smoke(), run, resume=True, log=lambda *a: None)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    elapsed = [(r["step"], r["elapsed_s"]) for r in rows if "loss" in r]
    assert [s for s, _ in elapsed] == [5, 10, 15, 20]
    assert 0 < elapsed[0][1] <= elapsed[1][1] < 1000 <= elapsed[2][1] <= elapsed[3][1]
    assert torch.load(run / "checkpoints" / "last.pt", weights_only=False)["train_seconds"] >= elapsed[3][1]


def test_train_threads_hold_for_the_run_only(tmp_path):
    before = torch.get_num_threads()
    seen = []
    want = 1 if before > 1 else 2
    train(smoke([f"--train.threads={want}", "--train.steps=5"]), tmp_path / "ok",
          log=lambda *a: seen.append(torch.get_num_threads()))
    assert seen and set(seen) == {want} and torch.get_num_threads() == before
    with pytest.raises(FileExistsError):  # raising inside the run restores them too
        train(smoke([f"--train.threads={want}"]), tmp_path / "ok", log=lambda *a: None)
    assert torch.get_num_threads() == before


def test_resume_refuses_a_different_config(tmp_path):
    run = tmp_path / "run"
    train(smoke(["--train.stop_after=10"]), run, log=lambda *a: None)
    with pytest.raises(ValueError, match="differs"):
        train(smoke(["--optim.lr=0.5"]), run, resume=True, log=lambda *a: None)


def test_sigkill_then_resume_matches(tmp_path, sigkill_after_checkpoint):
    """A real process killed with SIGKILL after its first checkpoint resumes to the uninterrupted metrics."""
    ref, run = tmp_path / "ref", tmp_path / "run"
    steps = ["--train.steps=40", "--train.ckpt_every=5", "--train.log_every=5"]
    train(smoke(steps), ref, log=lambda *a: None)
    cmd = [sys.executable, "-m", "openjepa", "train", "smoke", "--out", str(run), *SMOKE, *steps]
    assert sigkill_after_checkpoint(cmd, run)
    assert main(["train", "--resume", str(run)]) == 0
    assert losses(ref) == losses(run)


def test_cli_train_eval_embed(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "smoke", "--out", str(run), "--train.progress=false"]) == 0
    assert (run / "report.html").is_file()
    capsys.readouterr()
    assert main(["eval", str(run), "--json", "--baselines"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result == json.loads((run / "eval.json").read_text()) | {"report": result["report"]}
    names = [r["name"] for r in result["rows"]]
    assert names == ["ijepa", "random_init", "raw_pixels"]
    for r in result["rows"]:
        assert 0.0 <= r["linear_top1"] <= 1.0 and 0.0 <= r["knn_top1"] <= 1.0
    assert result["rows"][0]["checkpoint"].endswith(".pt")
    assert (run / "embedding.npz").is_file() and "PCA" in (run / "report.html").read_text()

    imgs = np.random.default_rng(0).integers(0, 255, size=(7, 40, 40, 3), dtype=np.uint8)
    np.save(tmp_path / "imgs.npy", imgs)
    out = tmp_path / "feat.npy"
    assert main(["embed", str(run / "checkpoints" / "last.pt"), str(tmp_path / "imgs.npy"), "--out", str(out)]) == 0
    feats = np.load(out)
    assert feats.shape == (7, 48) and np.isfinite(feats).all()
    assert "(7, 48)" in capsys.readouterr().out


def test_cli_reports_config_errors(tmp_path, capsys):
    assert main(["train", "smoke", "--out", str(tmp_path / "r"), "--train.stpes=3"]) == 2
    err = capsys.readouterr().err
    assert "train.stpes" in err and "steps" in err
    assert main(["eval", str(tmp_path / "missing")]) == 2
    assert "missing" in capsys.readouterr().err


def test_train_on_user_images_and_embed_a_folder(tmp_path, capsys):
    """Training on a user's .npy array (no labels) and embedding a nested folder of PNG/JPEG files."""
    from PIL import Image

    rng = np.random.default_rng(0)
    arr = rng.integers(0, 255, size=(80, 20, 20, 3), dtype=np.uint8)
    np.save(tmp_path / "mine.npy", arr)
    run = tmp_path / "run"
    assert main(["train", "smoke", "--out", str(run), "--train.progress=false", "--data.dataset=images",
                 f"--data.path={tmp_path / 'mine.npy'}", "--data.batch_size=16", "--data.img_size=16",
                 "--data.channels=3", "--train.steps=4", "--train.log_every=2", "--train.monitor_every=2",
                 "--train.monitor_samples=16"]) == 0
    train_rows, panel_rows = losses(run)
    assert len(train_rows) == 2 and all(np.isfinite(v) for _, v in train_rows)
    assert panel_rows and "knn_top1" not in panel_rows[0]  # no labels: panel only

    folder = tmp_path / "photos" / "sub"
    folder.mkdir(parents=True)
    for i in range(3):
        Image.fromarray(arr[i]).save(folder / f"img{i}.png")
    Image.fromarray(arr[3]).save(tmp_path / "photos" / "top.JPG")
    out = tmp_path / "f.npy"
    capsys.readouterr()
    assert main(["embed", str(run), str(tmp_path / "photos"), "--out", str(out)]) == 0
    assert np.load(out).shape == (4, 48)
    assert "(4, 48)" in capsys.readouterr().out
