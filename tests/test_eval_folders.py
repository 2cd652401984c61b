"""`openjepa eval RUN --train-dir DIR --val-dir DIR`: linear probe + kNN on labelled image folders (ImageNet layout)
instead of Fashion-MNIST, with the same output fields; mismatched classes and unlabelled folders are refused."""

import json

import numpy as np
import pytest
from PIL import Image

from openjepa.cli import main


@pytest.fixture(scope="module")
def run(rgb_smoke_run):
    return rgb_smoke_run


def colour_folder(root, n, seed, classes=(("blue", (30, 60, 220)), ("red", (220, 40, 30)))):
    """n noisy images per class whose classes differ by colour, in root/<class>/ (JPEG and PNG, mixed sizes)."""
    rng = np.random.default_rng(seed)
    for c, colour in classes:
        (root / c).mkdir(parents=True, exist_ok=True)
        for k in range(n):
            side = int(rng.integers(18, 30))
            a = np.clip(np.array(colour) + rng.normal(0, 25, (side, side, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(a).save(root / c / f"{k}.{'png' if k % 2 else 'jpg'}")


def test_probe_and_knn_on_colour_folders(run, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HOME", str(tmp_path))  # the file index cache goes under ~/.cache
    colour_folder(tmp_path / "train", 60, seed=1)
    colour_folder(tmp_path / "val", 60, seed=2)
    capsys.readouterr()
    assert main(["eval", str(run), "--json", "--baselines", "--train-dir", str(tmp_path / "train"),
                 "--val-dir", str(tmp_path / "val"), "--train-samples", "100", "--test-samples", "100"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in result["rows"]] == ["ijepa", "random_init", "raw_pixels"]
    row = result["rows"][0]
    assert {"linear_top1", "knn_top1", "rankme", "feat_std", "collapsed", "dim", "step", "checkpoint"} <= row.keys()
    assert row["linear_top1"] >= 0.95 and row["knn_top1"] >= 0.95
    assert result["data"]["classes"] == 2 and result["eval"]["train_samples"] == 100
    emb = np.load(run / "embedding.npz")
    assert emb["class_names"].tolist() == ["blue", "red"] and emb["z"].shape[0] == 100  # a seeded 100 of the 120


def test_folders_must_agree_and_carry_labels(run, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HOME", str(tmp_path))
    colour_folder(tmp_path / "train", 2, seed=1)
    colour_folder(tmp_path / "val", 2, seed=2, classes=(("blue", (0, 0, 255)), ("green", (0, 255, 0))))
    assert main(["eval", str(run), "--train-dir", str(tmp_path / "train"), "--val-dir", str(tmp_path / "val")]) == 2
    err = capsys.readouterr().err
    assert "different classes" in err and "red" in err and "green" in err
    flat = tmp_path / "flat"
    flat.mkdir()
    Image.new("RGB", (20, 20)).save(flat / "a.png")
    assert main(["eval", str(run), "--train-dir", str(flat), "--val-dir", str(tmp_path / "val")]) == 2
    assert "no labels" in capsys.readouterr().err
    assert main(["eval", str(run), "--train-dir", str(tmp_path / "train")]) == 2
    assert "--val-dir" in capsys.readouterr().err
