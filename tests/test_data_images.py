"""Tests for the image data modules: data.fashion_mnist, data.image_files and data.transforms (tiny synthetic
fixtures; one optional real-data test)."""

from __future__ import annotations

import gzip
import pathlib
import struct

import numpy as np
import pytest
import torch

from openjepa.data import fashion_mnist
from openjepa.data.fashion_mnist import fashion_mnist_dirs, load_fashion_mnist
from openjepa.data.image_files import load_image_folder, load_images, load_npy_images
from openjepa.data.transforms import normalize, random_resized_crop, to_model_input

PIL = pytest.importorskip("PIL")
from PIL import Image  # noqa: E402


# --------------------------------------------------------------------------- helpers


def _idx_bytes(arr: np.ndarray) -> bytes:
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    header = bytes((0, 0, 0x08, arr.ndim)) + struct.pack(">" + "I" * arr.ndim, *arr.shape)
    return header + arr.tobytes()


def _write_idx(path: pathlib.Path, arr: np.ndarray, gz: bool) -> pathlib.Path:
    data = _idx_bytes(arr)
    if gz:
        path = path.with_name(path.name + ".gz")
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)
    return path


def _fake_fashion(directory: pathlib.Path, split: str, n: int, gz: bool, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    y = rng.integers(0, 10, size=(n,), dtype=np.uint8)
    prefix = "train" if split == "train" else "t10k"
    directory.mkdir(parents=True, exist_ok=True)
    _write_idx(directory / f"{prefix}-images-idx3-ubyte", x, gz)
    _write_idx(directory / f"{prefix}-labels-idx1-ubyte", y, gz)
    return x, y


@pytest.fixture
def no_default_dirs(tmp_path, monkeypatch):
    """Make sure neither ~/.cache nor the Debian dir can supply the real dataset."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setattr(fashion_mnist, "FASHION_MNIST_DEBIAN_DIR", str(tmp_path / "no-debian"))
    return home


def _save_png(path: pathlib.Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


# --------------------------------------------------------------------------- Fashion-MNIST


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("split", ["train", "test"])
def test_fashion_mnist_round_trip(tmp_path, no_default_dirs, gz, split):
    d = tmp_path / "fm"
    x_np, y_np = _fake_fashion(d, split, n=5, gz=gz)
    x, y = load_fashion_mnist(split, path=str(d))
    assert x.shape == (5, 1, 28, 28) and x.dtype == torch.uint8
    assert y.shape == (5,) and y.dtype == torch.int64
    assert np.array_equal(x[:, 0].numpy(), x_np)
    assert np.array_equal(y.numpy(), y_np.astype(np.int64))


def test_fashion_mnist_returns_clones(tmp_path, no_default_dirs):
    d = tmp_path / "fm"
    x_np, y_np = _fake_fashion(d, "test", n=3, gz=True)
    x, y = load_fashion_mnist("test", path=d)
    x.zero_()
    y.fill_(-1)
    x2, y2 = load_fashion_mnist("test", path=d)
    assert np.array_equal(x2[:, 0].numpy(), x_np)
    assert np.array_equal(y2.numpy(), y_np.astype(np.int64))


def test_fashion_mnist_found_in_home_cache(tmp_path, no_default_dirs):
    cache = no_default_dirs / ".cache" / "openjepa" / "fashion-mnist"
    _fake_fashion(cache, "train", n=2, gz=False)
    dirs = fashion_mnist_dirs(None)
    assert dirs[0] == cache
    assert dirs[-1] == tmp_path / "no-debian"
    x, _ = load_fashion_mnist("train")
    assert x.shape == (2, 1, 28, 28)


@pytest.mark.parametrize("gz", [True, False])
def test_fashion_mnist_truncated_names_file(tmp_path, no_default_dirs, gz):
    d = tmp_path / "fm"
    d.mkdir()
    x = np.zeros((4, 28, 28), np.uint8)
    data = _idx_bytes(x)[:-100]  # cut the payload short
    img = d / ("t10k-images-idx3-ubyte" + (".gz" if gz else ""))
    if gz:
        full = gzip.compress(_idx_bytes(x))
        img.write_bytes(full[: len(full) // 2])  # truncated gzip stream
    else:
        img.write_bytes(data)
    _write_idx(d / "t10k-labels-idx1-ubyte", np.zeros(4, np.uint8), gz)
    with pytest.raises(ValueError, match="t10k-images-idx3-ubyte"):
        load_fashion_mnist("test", path=d)


def test_fashion_mnist_bad_magic_names_file(tmp_path, no_default_dirs):
    d = tmp_path / "fm"
    _fake_fashion(d, "test", n=2, gz=False)
    p = d / "t10k-labels-idx1-ubyte"
    raw = bytearray(p.read_bytes())
    raw[3] = 3  # claims 3 dims
    p.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte.*magic"):
        load_fashion_mnist("test", path=d)


def test_fashion_mnist_missing_everywhere(tmp_path, no_default_dirs):
    user = tmp_path / "user-dir"
    with pytest.raises(FileNotFoundError) as ei:
        load_fashion_mnist("train", path=user)
    msg = str(ei.value)
    assert "sudo apt-get install dataset-fashion-mnist" in msg
    assert "zalandoresearch/fashion-mnist" in msg
    assert str(user) in msg
    assert str(no_default_dirs / ".cache" / "openjepa" / "fashion-mnist") in msg
    assert str(tmp_path / "no-debian") in msg


def test_fashion_mnist_bad_split():
    with pytest.raises(ValueError, match="train"):
        load_fashion_mnist("val")


REAL = pathlib.Path("/usr/share/datasets/fashion-mnist")


def test_real_fashion_mnist_test_split():
    names = ("t10k-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte")
    if not any((REAL / n).exists() for n in names):
        pytest.skip("Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
    x, y = load_fashion_mnist("test", path=str(REAL))
    assert x.shape == (10000, 1, 28, 28) and x.dtype == torch.uint8
    assert y.shape == (10000,) and y.dtype == torch.int64
    assert torch.unique(y).tolist() == list(range(10))


# --------------------------------------------------------------------------- image folders


def test_image_folder_with_class_subfolders(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "imgs"
    _save_png(root / "dog" / "a.png", rng.integers(0, 256, (12, 16, 3), dtype=np.uint8))
    _save_png(root / "cat" / "b.PNG", rng.integers(0, 256, (16, 12, 3), dtype=np.uint8))
    _save_png(root / "cat" / "sub" / "c.png", rng.integers(0, 256, (8, 8), dtype=np.uint8))
    Image.fromarray(rng.integers(0, 256, (9, 9, 3), dtype=np.uint8)).save(root / "dog" / "d.JPEG")
    (root / "dog" / "notes.txt").write_text("ignored")
    x, y = load_image_folder(root, size=8, channels=3)
    assert x.shape == (4, 3, 8, 8) and x.dtype == torch.uint8
    # sorted paths: cat/b.PNG, cat/sub/c.png, dog/a.png, dog/d.JPEG ; cat=0, dog=1
    assert y.tolist() == [0, 0, 1, 1]
    x1, _ = load_image_folder(root, size=5, channels=1)
    assert x1.shape == (4, 1, 5, 5)


def test_image_folder_flat_has_no_labels_and_crops(tmp_path):
    root = tmp_path / "flat"
    arr = np.zeros((4, 8), np.uint8)
    arr[:, 2:6] = 200  # bright centre columns; crop to 4x4 keeps them
    _save_png(root / "x.png", arr)
    _save_png(root / "sub" / "y.png", arr)  # one image in a subfolder, one not -> no labels
    x, y = load_image_folder(root, size=4, channels=1)
    assert y is None
    assert x.shape == (2, 1, 4, 4)
    assert (x[0, 0] == 200).all()


def test_image_folder_corrupt_file(tmp_path):
    root = tmp_path / "imgs"
    _save_png(root / "a" / "good.png", np.full((6, 6), 10, np.uint8))
    bad = root / "a" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    with pytest.raises(ValueError, match="broken.png"):
        load_image_folder(root, size=6, channels=1)
    with pytest.warns(RuntimeWarning, match=r"skipped 1 of 2.*broken\.png"):
        x, y = load_image_folder(root, size=6, channels=1, skip_bad=True)
    assert x.shape == (1, 1, 6, 6) and y.tolist() == [0]


def test_image_folder_empty_or_all_bad(tmp_path):
    root = tmp_path / "empty"
    root.mkdir()
    with pytest.raises(ValueError, match="no images found under .*empty"):
        load_image_folder(root, size=4, channels=1)
    (root / "bad.jpg").write_bytes(b"nope")
    with pytest.warns(RuntimeWarning):
        with pytest.raises(ValueError, match=r"empty were unreadable"):
            load_image_folder(root, size=4, channels=1, skip_bad=True)
    with pytest.raises(FileNotFoundError):
        load_image_folder(tmp_path / "missing", size=4, channels=1)


# --------------------------------------------------------------------------- npy


def test_npy_shapes_and_dtypes(tmp_path):
    rng = np.random.default_rng(0)
    a3 = rng.integers(0, 256, (3, 5, 6), dtype=np.uint8)
    np.save(tmp_path / "a3.npy", a3)
    x = load_npy_images(tmp_path / "a3.npy")
    assert x.shape == (3, 1, 5, 6) and x.dtype == torch.uint8
    assert np.array_equal(x[:, 0].numpy(), a3)

    a4 = rng.integers(0, 256, (2, 5, 5, 4), dtype=np.uint8)
    np.save(tmp_path / "a4.npy", a4)
    x = load_npy_images(tmp_path / "a4.npy")
    assert x.shape == (2, 3, 5, 5)
    assert np.array_equal(x.permute(0, 2, 3, 1).numpy(), a4[..., :3])

    x = load_npy_images(tmp_path / "a4.npy", size=4, channels=1)
    assert x.shape == (2, 1, 4, 4)

    f = np.linspace(0, 1, 2 * 4 * 4, dtype=np.float32).reshape(2, 4, 4, 1)
    np.save(tmp_path / "f.npy", f)
    x = load_npy_images(tmp_path / "f.npy")
    assert x.dtype == torch.uint8 and x.shape == (2, 1, 4, 4)
    assert int(x.min()) == 0 and int(x.max()) == 255


def test_npy_errors(tmp_path):
    np.save(tmp_path / "rank2.npy", np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match=r"rank2\.npy.*\(4, 4\).*\(N, H, W\)"):
        load_npy_images(tmp_path / "rank2.npy")
    np.save(tmp_path / "i64.npy", np.zeros((2, 4, 4), np.int64))
    with pytest.raises(ValueError, match=r"i64\.npy.*int64.*uint8"):
        load_npy_images(tmp_path / "i64.npy")
    np.save(tmp_path / "f255.npy", np.full((2, 4, 4), 200.0, np.float32))
    with pytest.raises(ValueError, match=r"f255\.npy.*\[0, 1\]"):
        load_npy_images(tmp_path / "f255.npy")
    np.save(tmp_path / "chw.npy", np.zeros((2, 3, 8, 8), np.uint8))
    with pytest.raises(ValueError, match="transpose"):
        load_npy_images(tmp_path / "chw.npy")
    with pytest.raises(FileNotFoundError, match="nothere.npy"):
        load_npy_images(tmp_path / "nothere.npy")


def test_load_images_dispatch(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((2, 6, 6), np.uint8))
    x, y = load_images(tmp_path / "a.npy", size=4, channels=3)
    assert x.shape == (2, 3, 4, 4) and y is None
    root = tmp_path / "dir"
    _save_png(root / "k" / "a.png", np.zeros((6, 6), np.uint8))
    x, y = load_images(root, size=4, channels=1)
    assert x.shape == (1, 1, 4, 4) and y.tolist() == [0]
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(ValueError, match="accepted inputs"):
        load_images(tmp_path / "a.txt", size=4, channels=1)


# --------------------------------------------------------------------------- conversions


def test_to_model_input_conversions():
    rgb = torch.zeros(2, 3, 4, 4, dtype=torch.uint8)
    rgb[:, 0] = 255  # pure red
    g = to_model_input(rgb, size=4, channels=1)
    assert g.shape == (2, 1, 4, 4) and g.dtype == torch.uint8
    assert (g == round(0.299 * 255)).all()

    grey = torch.randint(0, 256, (2, 1, 4, 4), dtype=torch.uint8)
    c3 = to_model_input(grey, size=4, channels=3)
    assert c3.shape == (2, 3, 4, 4)
    assert torch.equal(c3[:, 0], grey[:, 0]) and torch.equal(c3[:, 2], grey[:, 0])

    assert to_model_input(grey, size=4, channels=1) is grey  # no-op

    big = torch.full((1, 1, 8, 8), 77, dtype=torch.uint8)
    small = to_model_input(big, size=4, channels=1)
    assert torch.equal(small, torch.full((1, 1, 4, 4), 77, dtype=torch.uint8))

    wide = torch.zeros(1, 1, 4, 8, dtype=torch.uint8)
    wide[..., 2:6] = 200
    out = to_model_input(wide, size=4, channels=1)  # short side already 4: centre crop
    assert out.shape == (1, 1, 4, 4) and (out == 200).all()
    tall = to_model_input(torch.zeros(1, 3, 12, 6, dtype=torch.uint8), size=3, channels=3)
    assert tall.shape == (1, 3, 3, 3)

    with pytest.raises(ValueError):
        to_model_input(grey.float(), size=4, channels=1)


def test_normalize():
    x = torch.tensor([0, 255, 128], dtype=torch.uint8)
    n = normalize(x)
    assert n.dtype == torch.float32
    assert torch.allclose(n[:2], torch.tensor([-1.0, 1.0]))
    with pytest.raises(TypeError):
        normalize(x.float())


# --------------------------------------------------------------------------- random_resized_crop


def test_random_resized_crop_identity():
    x = torch.rand(3, 2, 9, 9)
    g = torch.Generator().manual_seed(0)
    out = random_resized_crop(x, g, scale=(1.0, 1.0), ratio=(1.0, 1.0), flip=False)
    assert out.shape == x.shape
    assert torch.allclose(out, x, atol=1e-5)
    rect = torch.rand(2, 1, 6, 10)
    out = random_resized_crop(rect, g, scale=(1.0, 1.0), ratio=(1.0, 1.0))
    assert torch.allclose(out, rect, atol=1e-5)


def test_random_resized_crop_deterministic_and_changes():
    x = torch.rand(8, 3, 16, 16)
    a = random_resized_crop(x, torch.Generator().manual_seed(1), scale=(0.3, 1.0), flip=True)
    b = random_resized_crop(x, torch.Generator().manual_seed(1), scale=(0.3, 1.0), flip=True)
    c = random_resized_crop(x, torch.Generator().manual_seed(2), scale=(0.3, 1.0), flip=True)
    assert a.shape == x.shape and a.dtype == x.dtype
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    changed = (a - x).abs().flatten(1).amax(1) > 1e-3
    assert changed.sum() >= 6
    # bilinear resampling of a crop never leaves the input's value range
    assert a.min() >= x.min() - 1e-5 and a.max() <= x.max() + 1e-5


def test_random_resized_crop_flip_only():
    x = torch.rand(16, 1, 5, 7)
    g = torch.Generator().manual_seed(3)
    out = random_resized_crop(x, g, scale=(1, 1), ratio=(1, 1), flip=True)
    flipped = torch.isclose(out, x.flip(-1), atol=1e-5).flatten(1).all(1)
    same = torch.isclose(out, x, atol=1e-5).flatten(1).all(1)
    assert bool((flipped | same).all())
    assert flipped.any() and same.any()


def test_random_resized_crop_bad_input():
    g = torch.Generator().manual_seed(0)
    with pytest.raises(ValueError):
        random_resized_crop(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), g)
    with pytest.raises(ValueError):
        random_resized_crop(torch.zeros(2, 1, 4, 4), g, scale=(0.5, 1.5))
