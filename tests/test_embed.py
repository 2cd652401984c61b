"""Feature extraction: encoder.features(images, pool) on every encoder (models/features.py) and `openjepa embed` on
.npy arrays, image folders (ImageNet layout) and .tar shards, writing .npy or .safetensors with labels and names."""

import io
import json
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image

import openjepa
from openjepa.cli import main
from openjepa.data.transforms import normalize
from openjepa.eval.features import extract_features
from openjepa.models.cnn import ConvEncoder
from openjepa.models.video import VideoTransformer
from openjepa.models.vit import VisionTransformer


@pytest.fixture
def vit():
    return VisionTransformer(img_size=16, patch_size=4, in_chans=3, dim=24, depth=3, heads=2).eval()


def images(n=5, side=16, channels=3, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (n, channels, side, side), dtype=np.uint8))


def test_feature_shapes_for_every_pool(vit):
    x = images()
    assert vit.features(x).shape == (5, 24)
    assert vit.features(x, pool="tokens").shape == (5, 16, 24)
    assert vit.features(x, pool="lastk", k=3).shape == (5, 72)
    assert vit.features(x, batch_size=2).dtype == torch.float32
    assert not any(p.grad is not None for p in vit.parameters())  # no graph, no gradients
    clips = torch.from_numpy(np.random.default_rng(1).integers(0, 256, (2, 3, 4, 16, 16), dtype=np.uint8))
    video = VideoTransformer(img_size=16, frames=4, patch_size=4, tubelet=2, in_chans=3, dim=24, depth=2, heads=2)
    assert video.features(clips, pool="lastk", k=2).shape == (2, 48)
    assert video.features(clips, pool="tokens").shape == (2, 32, 24)
    cnn = ConvEncoder(img_size=16, in_chans=3, dim=8)
    assert cnn.features(x).shape == (5, 8)
    with pytest.raises(ValueError, match="no blocks"):
        cnn.features(x, pool="lastk", k=2)
    with pytest.raises(ValueError, match="3 blocks"):
        vit.features(x, pool="lastk", k=4)
    with pytest.raises(ValueError, match="pool"):
        vit.features(x, pool="max")


def test_mean_is_extract_features_and_lastk_holds_the_last_layer(vit):
    x = images(7)
    z = vit.features(x, batch_size=3)
    with torch.no_grad():
        ref = vit(normalize(x)).mean(1)  # what extract_features computed before features() existed
    assert torch.allclose(z, ref, atol=1e-6)
    assert torch.equal(z, extract_features(vit, x, torch.device("cpu"), "fp32", batch_size=3))
    assert torch.allclose(vit.features(x, pool="lastk", k=1), z, atol=1e-6)  # k=1: the normed last layer's mean
    last3 = vit.features(x, pool="lastk", k=3)
    assert torch.allclose(last3[:, -24:], z, atol=1e-6)
    assert not torch.allclose(last3[:, :24], z, atol=1e-3)  # earlier blocks differ
    assert torch.allclose(vit.features(x, pool="tokens").mean(1), z, atol=1e-6)
    # float images in [0, 1] are the uint8 ones / 255; anything else is refused
    assert torch.allclose(vit.features(x.float() / 255), z, atol=1e-5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        vit.features(x.float())


def test_training_mode_and_device_are_left_alone(vit):
    vit.train()
    vit.features(images(2))
    assert vit.training


# --------------------------------------------------------------------------- #
# checkpoints, exports and `openjepa embed`
# --------------------------------------------------------------------------- #


@pytest.fixture(scope="module")
def run(rgb_smoke_run):
    return rgb_smoke_run


def make_tree(root, per_class=3, side=24):
    """root/<red|blue>/<k>.png|jpg, colours per class; returns the sorted relative names."""
    names = []
    for c, colour in (("blue", (20, 40, 230)), ("red", (230, 30, 20))):
        (root / c).mkdir(parents=True, exist_ok=True)
        for k in range(per_class):
            ext = ".png" if k % 2 else ".jpg"
            Image.new("RGB", (side + 4 * k, side), colour).save(root / c / f"{k}{ext}")
            names.append(f"{c}/{k}{ext}")
    return sorted(names)


def test_features_on_export_and_checkpoint_agree(run, tmp_path):
    from openjepa.train.checkpoint import load_method

    assert main(["export", str(run), "--out", str(tmp_path / "enc")]) == 0
    enc = openjepa.load_encoder(tmp_path / "enc")
    method, _, _ = load_method(run)
    x = images(4)
    for pool in ("mean", "tokens", "lastk"):
        assert torch.equal(enc.features(x, pool=pool, k=2), method.eval_encoder().features(x, pool=pool, k=2))


def test_embed_folder_and_shards_with_workers(run, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HOME", str(tmp_path))  # the file index cache goes under ~/.cache
    names = make_tree(tmp_path / "imgs")
    out = tmp_path / "f.npy"
    assert main(["embed", str(run), str(tmp_path / "imgs"), "--out", str(out), "--workers", "2",
                 "--batch-size", "4"]) == 0
    z = np.load(out)
    assert z.shape == (6, 48) and np.isfinite(z).all()
    assert np.load(tmp_path / "f.labels.npy").tolist() == [0, 0, 0, 1, 1, 1]  # blue, red: sorted class folders
    files = (tmp_path / "f.npy.files.txt").read_text().splitlines()
    assert [f.split("imgs/")[1] for f in files] == names
    assert "(6, 48)" in capsys.readouterr().out
    # the same samples as WebDataset shards (two of them) -> the same features, in index order
    for s, part in enumerate((names[:4], names[4:])):
        with tarfile.open(tmp_path / f"shard-{s}.tar", "w") as tar:
            for n in part:
                key = n.replace("/", "_").rsplit(".", 1)[0]
                for member, data in ((f"{key}.{n.rsplit('.', 1)[1]}", (tmp_path / "imgs" / n).read_bytes()),
                                     (f"{key}.cls", str(int(n.startswith("red"))).encode())):
                    info = tarfile.TarInfo(member)
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
    (tmp_path / "shards").mkdir()
    for s in range(2):
        (tmp_path / f"shard-{s}.tar").rename(tmp_path / "shards" / f"shard-{s}.tar")
    st = tmp_path / "s.safetensors"
    assert main(["embed", str(run), str(tmp_path / "shards"), "--out", str(st), "--workers", "0",
                 "--pool", "lastk", "--k", "2"]) == 0
    from safetensors import safe_open
    from safetensors.torch import load_file

    t = load_file(str(st))
    assert t["features"].shape == (6, 96) and t["labels"].tolist() == [0, 0, 0, 1, 1, 1]
    assert torch.allclose(t["features"][:, 48:], torch.from_numpy(z), atol=1e-5)  # lastk's last block == mean
    with safe_open(str(st), "pt") as f:
        assert json.loads(f.metadata()["classes"]) == []  # shards carry integer labels only
    assert len((tmp_path / "s.safetensors.files.txt").read_text().splitlines()) == 6
    one = tmp_path / "one.npy"  # a single shard file
    assert main(["embed", str(run), str(tmp_path / "shards" / "shard-1.tar"), "--out", str(one)]) == 0
    assert np.allclose(np.load(one), z[4:], atol=1e-5)


def test_embed_names_a_bad_file_or_skips_it(run, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HOME", str(tmp_path))
    make_tree(tmp_path / "imgs")
    (tmp_path / "imgs" / "red" / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "f.npy"
    assert main(["embed", str(run), str(tmp_path / "imgs"), "--out", str(out), "--workers", "0"]) == 2
    assert "broken.png" in capsys.readouterr().err and not out.exists()
    assert main(["embed", str(run), str(tmp_path / "imgs"), "--out", str(out), "--workers", "0", "--skip-bad"]) == 0
    assert np.load(out).shape == (6, 48) and "skipped 1 unreadable" in capsys.readouterr().out
    assert main(["embed", str(run), str(tmp_path / "imgs"), "--out", str(tmp_path / "f.csv")]) == 2


def test_embed_npy_input_keeps_its_behaviour(run, tmp_path, capsys):
    arr = np.random.default_rng(3).integers(0, 256, (5, 16, 16, 3), dtype=np.uint8)
    np.save(tmp_path / "x.npy", arr)
    out = tmp_path / "z.npy"
    assert main(["embed", str(run), str(tmp_path / "x.npy"), "--out", str(out)]) == 0
    from openjepa.train.checkpoint import load_method

    enc = load_method(run)[0].eval_encoder()
    ref = enc.features(torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous())
    assert np.allclose(np.load(out), ref.numpy(), atol=1e-6)
    assert not (tmp_path / "z.npy.files.txt").exists() and not (tmp_path / "z.labels.npy").exists()
