"""Streaming datasets (data/streaming/): batches are a function of (seed, step, world, rank) whatever the number of
workers, resume at step k is exact, ranks split each global batch, shards read the same pixels as folders, bad
files are replaced, counted and named, and the index is cached and refreshed."""

import io
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image

from openjepa.data.streaming import (BadDataError, ClipDecoder, ImageDecoder, StreamingSource, SubsetRecords,
                                     index_image_folder, index_shards, index_video_folder, sequential_batches)
from openjepa.data.streaming import index as index_module
from openjepa.data.streaming.decode import crop_box

CLASSES = ("cat", "dog", "eel")
DEC = ImageDecoder(size=12, channels=3, crop_scale=(0.3, 1.0), flip=True)


def image_bytes(rng, fmt, w, h):
    im = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    buf = io.BytesIO()
    im.save(buf, format=fmt)
    return buf.getvalue()


def make_folder(root, per_class=8, seed=0):
    """per_class images in each of CLASSES (mixed JPEG / PNG, mixed sizes and letter case), nested one level
    deeper for one class; returns {relative path: bytes} in sorted order."""
    rng = np.random.default_rng(seed)
    files = {}
    for c in CLASSES:
        for k in range(per_class):
            fmt, ext = (("JPEG", ".JPEG"), ("PNG", ".png"), ("JPEG", ".jpg"))[k % 3]
            sub = "deep/" if c == "eel" and k % 2 else ""
            rel = f"{c}/{sub}{c}_{k:02d}{ext}"
            files[rel] = image_bytes(rng, fmt, 16 + 2 * k, 14 + k)
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return dict(sorted(files.items()))


def source(records, batch_size=8, workers=0, decoder=DEC, **kw):
    return StreamingSource(records, decoder, batch_size, seed=5, workers=workers, **kw)


def same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]) if isinstance(a[k], torch.Tensor) else a[k] == b[k], k


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "train"
    make_folder(root)
    return index_image_folder(root, index_dir=tmp_path / "idx")


def test_labels_from_sorted_class_folders_and_none_without_them(folder, tmp_path):
    assert len(folder) == 24 and folder.classes == list(CLASSES)
    for i in range(len(folder)):
        rel = folder.names[i]
        assert folder.label(i) == CLASSES.index(rel.split("/")[0])
    flat = tmp_path / "flat"
    make_folder(flat)
    (flat / "loose.png").write_bytes((flat / "cat/cat_01.png").read_bytes())  # an image outside any class folder
    r = index_image_folder(flat, index_dir=tmp_path / "idx")
    assert not r.labelled and r.label(0) == -1
    b = source(r).batch(0)
    assert "y" not in b and b["x"].shape == (8, 3, 12, 12) and b["x"].dtype == torch.uint8


def test_same_batches_with_and_without_workers_and_exact_resume(folder):
    # 24 samples, batch 8: 3 steps per epoch, so steps 0..6 cross two epoch boundaries
    plain = list(source(folder, workers=0).batches(0, 7))
    pooled = list(source(folder, workers=2).batches(0, 7))
    resumed = list(source(folder, workers=2).batches(4, 7))  # a fresh source started at step 4
    for a, b in zip(plain, pooled):
        same(a, b)
    for a, b in zip(plain[4:], resumed):
        same(a, b)
    assert [b["step"] for b in resumed] == [4, 5, 6]
    # an epoch shows every sample once, the next one another order; crops differ from step to step
    epoch0 = torch.cat([b["index"] for b in plain[:3]])
    epoch1 = torch.cat([b["index"] for b in plain[3:6]])
    assert sorted(epoch0.tolist()) == sorted(epoch1.tolist()) == list(range(24))
    assert not torch.equal(epoch0, epoch1)
    assert not torch.equal(plain[0]["x"], plain[3]["x"])
    # the seed matters
    other = StreamingSource(folder, DEC, 8, seed=6).batch(0)
    assert not torch.equal(other["index"], plain[0]["index"])


def test_ranks_are_disjoint_and_make_up_the_world_batch(folder):
    whole = source(folder)
    ranks = [StreamingSource(folder, DEC, 8, seed=5, rank=r, world=2, workers=w) for r, w in ((0, 2), (1, 0))]
    for step in (0, 2, 4):
        full = whole.batch(step)
        parts = [s.batch(step) for s in ranks]
        assert parts[0]["x"].shape[0] == parts[1]["x"].shape[0] == 4
        assert not set(parts[0]["index"].tolist()) & set(parts[1]["index"].tolist())
        for k in ("x", "y", "index"):
            assert torch.equal(torch.cat([p[k] for p in parts]), full[k]), k
    with pytest.raises(ValueError, match="divisible"):
        StreamingSource(folder, DEC, 8, seed=5, rank=0, world=3)


def test_a_held_out_subset_never_reaches_the_training_batches(folder):
    perm = np.random.default_rng(0).permutation(len(folder))
    held, rest = SubsetRecords(folder, perm[:4]), SubsetRecords(folder, perm[4:])
    held_names = {held.name(i) for i in range(len(held))}
    assert len(held_names) == 4 and len(rest) == 20
    assert [rest.label(i) for i in range(20)] == [folder.label(int(k)) for k in perm[4:]]
    s = StreamingSource(rest, DEC, 4, seed=5)
    seen = {rest.name(i) for b in s.batches(0, 10) for i in b["index"].tolist()}  # two epochs
    assert len(seen) == 20 and not seen & held_names
    with pytest.raises(IndexError):
        SubsetRecords(folder, [24])


def make_shards(root, files, per_shard=10):
    """The folder's images as WebDataset shards (key = path without extension, label in key.cls)."""
    root.mkdir(parents=True)
    items = list(files.items())
    for s in range(0, len(items), per_shard):
        with tarfile.open(root / f"shard-{s // per_shard:03d}.tar", "w") as tar:
            for rel, data in items[s:s + per_shard]:
                key, ext = rel.rsplit(".", 1)
                members = [(f"{key}.{ext}", data), (f"{key}.cls", str(CLASSES.index(rel.split("/")[0])).encode())]
                for name, payload in members:
                    info = tarfile.TarInfo(name)
                    info.size = len(payload)
                    tar.addfile(info, io.BytesIO(payload))


def test_shards_read_the_same_samples_as_the_folder(tmp_path):
    files = make_folder(tmp_path / "train")
    make_shards(tmp_path / "shards", files)
    folder = index_image_folder(tmp_path / "train", index_dir=tmp_path / "idx")
    shards = index_shards(tmp_path / "shards", index_dir=tmp_path / "idx")
    assert len(shards) == len(folder) == 24 and len(shards.shards) == 3
    assert shards.labels.tolist() == folder.labels.tolist()  # from .cls members / from class folders
    assert shards.name(0).endswith("shard-000.tar:cat/cat_00.JPEG")
    for a, b in zip(source(folder).batches(0, 4), source(shards, workers=2).batches(0, 4)):
        same(a, b)


def test_compressed_shards_are_refused_with_the_reason(tmp_path):
    (tmp_path / "s").mkdir()
    with tarfile.open(tmp_path / "s" / "a.tar", "w:gz") as tar:
        info = tarfile.TarInfo("x.png")
        tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(ValueError, match="uncompressed"):
        index_shards(tmp_path / "s", index_dir=tmp_path / "idx")


def add_corrupt(root):
    good = (root / "dog/dog_00.JPEG").read_bytes()
    (root / "dog/dog_99.jpg").write_bytes(good[: len(good) // 2])  # truncated JPEG
    (root / "eel/eel_99.png").write_bytes(b"this is not a png" * 10)  # garbage
    (root / "cat/cat_07.png").unlink()  # keep 24 samples: every position is drawn each epoch
    (root / "cat/cat_06.JPEG").unlink()
    return {str(root / "dog/dog_99.jpg"), str(root / "eel/eel_99.png")}


@pytest.mark.parametrize("workers", [0, 2])
def test_corrupt_files_are_replaced_counted_and_named(tmp_path, workers):
    root = tmp_path / "train"
    make_folder(root)
    bad = add_corrupt(root)
    r = index_image_folder(root, index_dir=tmp_path / "idx")
    assert len(r) == 24
    s = source(r, workers=workers, max_bad_fraction=0.1)
    batches = list(s.batches(0, 6))  # two epochs
    assert set(s.bad) == bad and all(("Error" in why) for why in s.bad.values())
    assert {n for n, _ in s.new_bad_files()} == bad and s.new_bad_files() == []
    for b in batches:  # the bad files were replaced by readable ones: full batches
        assert b["x"].shape == (8, 3, 12, 12)
        assert not {r.name(i) for i in b["index"].tolist()} & bad
    # the same replacements whatever the number of workers
    for a, b in zip(batches, source(r, workers=2 - workers, max_bad_fraction=0.1).batches(0, 6)):
        same(a, b)
    # more than max_bad_fraction of the data unreadable: a clear error naming them
    with pytest.raises(BadDataError, match=r"2 of the 24 samples .*max_bad_fraction=0.05.*(dog_99|eel_99)"):
        list(source(r, workers=workers, max_bad_fraction=0.05).batches(0, 6))


def test_unreadable_dataset_fails_fast_and_missing_roots_are_named(tmp_path):
    root = tmp_path / "junk" / "a"
    root.mkdir(parents=True)
    for k in range(10):
        (root / f"{k}.jpg").write_bytes(b"\0" * 50)
    r = index_image_folder(tmp_path / "junk", index_dir=tmp_path / "idx")
    with pytest.raises(BadDataError, match="10 samples in a row are unreadable"):
        source(r, batch_size=2, max_bad_fraction=1.0).batch(0)
    for index in (index_image_folder, index_shards, index_video_folder):
        with pytest.raises(FileNotFoundError, match=str(tmp_path / "nowhere")):
            index(tmp_path / "nowhere", index_dir=tmp_path / "idx")


def test_sequential_pass_sees_every_readable_sample_once(tmp_path):
    root = tmp_path / "train"
    make_folder(root)
    bad = add_corrupt(root)
    r = index_image_folder(root, index_dir=tmp_path / "idx")
    centre = ImageDecoder(size=12, crop_scale=None)
    batches = list(sequential_batches(r, centre, batch_size=5, workers=2))
    seen = torch.cat([b["index"] for b in batches]).tolist()
    assert seen == [i for i in range(24) if r.name(i) not in bad]
    assert {n for b in batches for n, _ in b["bad"]} == bad
    assert torch.equal(torch.cat([b["y"] for b in batches]), torch.as_tensor(r.labels)[seen])


def test_index_is_cached_and_rebuilt_when_a_class_folder_changes(tmp_path, monkeypatch):
    root = tmp_path / "train"
    make_folder(root)
    first = index_image_folder(root, index_dir=tmp_path / "idx")
    assert len(list((tmp_path / "idx").glob("*.npz"))) == 1
    calls = []
    walk = index_module._walk
    monkeypatch.setattr(index_module, "_walk", lambda *a: calls.append(1) or walk(*a))
    again = index_image_folder(root, index_dir=tmp_path / "idx")
    assert calls == [] and [again.name(i) for i in range(24)] == [first.name(i) for i in range(24)]
    (root / "dog" / "dog_50.png").write_bytes((root / "cat/cat_01.png").read_bytes())
    grown = index_image_folder(root, index_dir=tmp_path / "idx")
    assert calls == [1] and len(grown) == 25


def test_crop_box_lies_inside_the_image_with_the_drawn_area():
    rng = np.random.default_rng(0)
    for _ in range(200):
        W, H = rng.integers(5, 60, 2)
        x0, y0, x1, y1 = crop_box(W, H, rng.random(4), (0.2, 1.0), (3 / 4, 4 / 3))
        assert -1e-9 <= x0 < x1 <= W + 1e-9 and -1e-9 <= y0 < y1 <= H + 1e-9
        assert (x1 - x0) * (y1 - y0) >= 0.2 * W * H * (1 - 1e-9)
    assert crop_box(30, 20, rng.random(4), None, (1, 1)) == (5.0, 0.0, 25.0, 20.0)


def write_mp4(path, frames, side=32):
    import av

    with av.open(str(path), "w") as out:
        st = out.add_stream("mpeg4", rate=10)
        st.width = st.height = side
        st.pix_fmt = "yuv420p"
        for t in range(frames):
            img = np.full((side, side, 3), 20 * t, dtype=np.uint8)
            out.mux(st.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(st.encode())


def test_video_folder_decodes_random_windows_of_npy_and_mp4_clips(tmp_path):
    root = tmp_path / "videos"
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for k in range(2):  # frame t of clip k is filled with 10*t + k: windows are checkable
            t = np.arange(10, dtype=np.uint8)[:, None, None, None]
            np.save(root / c / f"{k}.npy", np.broadcast_to(10 * t + k, (10, 8, 12, 3)).copy())
    np.save(root / "b" / "short.npy", np.zeros((2, 8, 8), dtype=np.uint8))  # grey, fewer frames than a window
    write_mp4(root / "a" / "clip.mp4", frames=12)
    write_mp4(root / "b" / "clip.mkv", frames=12)  # Matroska does not state its frame count: its packets are counted
    r = index_video_folder(root, index_dir=tmp_path / "idx")
    assert len(r) == 7 and r.classes == ["a", "b"]
    dec = ClipDecoder(size=8, frames=4, channels=3)
    s = StreamingSource(r, dec, batch_size=7, seed=1, workers=2)
    b = s.batch(0)
    assert b["x"].shape == (7, 3, 4, 8, 8) and b["x"].dtype == torch.uint8 and not s.bad
    for x, i in zip(b["x"], b["index"].tolist()):
        name = r.name(i)
        first = x[0, :, 4, 4].float()  # (T,) one pixel over the window
        if name.endswith("short.npy"):
            assert torch.equal(x, torch.zeros_like(x))  # padded with its last frame
        elif name.endswith((".mp4", ".mkv")):  # lossy: consecutive frames step by about 20
            assert torch.all((first.diff() - 20).abs() <= 4), first
        else:
            assert torch.equal(first.diff(), torch.full((3,), 10.0)), first
    same(b, StreamingSource(r, dec, batch_size=7, seed=1, workers=0).batch(0))
    with pytest.raises(TypeError, match="files"):
        ClipDecoder(size=8, frames=4)(b"bytes", np.zeros(6))
