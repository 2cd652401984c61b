"""`openjepa surprise` on a tiny trained checkpoint, every video format, and clear errors for bad videos."""

import glob
import json

import numpy as np
import pytest
import torch
from PIL import Image

from openjepa.cli import main
from openjepa.config import build_config
from openjepa.data.video import load_video, load_video_clips
from openjepa.eval.surprise import video_surprise, window_starts
from openjepa.train.loop import train

TINY = ["--train.method=vjepa", "--data.dataset=physics", "--data.img_size=16", "--data.channels=1",
        "--data.batch_size=8", "--model.patch_size=4", "--model.dim=32", "--model.depth=1", "--model.heads=2",
        "--model.pred_dim=16", "--model.pred_depth=1", "--model.pred_heads=2", "--video.frames=8",
        "--video.context_frames=4", "--video.physics_frames=12", "--video.physics_videos=40",
        "--mask.context_scale=[1.0,1.0]", "--mask.min_context=2", "--train.precision=fp32", "--train.steps=3",
        "--train.monitor_every=3", "--train.monitor_samples=16", "--train.progress=false"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("vjepa")
    summary = train(build_config({}, TINY), d, log=lambda *a: None)
    assert summary["finished"]
    return d


def write_video_file(path, frames, codec="mpeg4"):
    import av

    with av.open(str(path), "w") as out:
        s = out.add_stream(codec, rate=10)
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for f in frames:
            for packet in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                out.mux(packet)
        for packet in s.encode():
            out.mux(packet)


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    d = tmp_path_factory.mktemp("videos")
    rng = np.random.default_rng(0)
    rgb = (rng.random((14, 24, 32, 3)) * 255).astype(np.uint8)
    np.save(d / "grey.npy", rgb[..., 0])  # (T, H, W), not square: resized + cropped
    np.save(d / "float_rgb.npy", rgb[:6].astype(np.float32) / 255)  # shorter than the model's clip: padded
    (d / "frames").mkdir()
    for t in range(10):
        Image.fromarray(rgb[t]).save(d / "frames" / f"{t:03d}.png")
    write_video_file(d / "clip.mp4", rgb)
    write_video_file(d / "clip.avi", rgb[:12])
    return d, {"grey.npy": 14, "float_rgb.npy": 6, "frames": 10, "clip.mp4": 14, "clip.avi": 12}


def test_each_format_loads_to_model_input(videos, tmp_path):
    d, lengths = videos
    for name, T in lengths.items():
        x = load_video(d / name, 16, 1)
        assert x.dtype == torch.uint8 and x.shape == (1, T, 16, 16), name
    assert load_video(d / "clip.mp4", 16, 3).shape == (3, 14, 16, 16)
    assert load_video(d / "clip.mp4", 16, 3, fps=5).shape[1] == 7  # 10 fps -> 5 fps
    # a folder of frames and the same frames as an array give the same model input
    frames = np.stack([np.asarray(Image.open(p)) for p in sorted((d / "frames").iterdir())])
    np.save(tmp_path / "same.npy", frames)
    assert torch.equal(load_video(d / "frames", 16, 3), load_video(tmp_path / "same.npy", 16, 3))
    # a flat-colour video survives the lossy codec within a few grey levels
    flat = np.full((6, 16, 16, 3), 90, np.uint8)
    write_video_file(tmp_path / "flat.mp4", flat)
    assert (load_video(tmp_path / "flat.mp4", 16, 3).float() - 90).abs().max() <= 4


def test_surprise_cli_every_format(run_dir, videos, tmp_path, capsys):
    d, lengths = videos
    paths = [str(d / n) for n in lengths]
    plot = tmp_path / "s.png"
    assert main(["surprise", str(run_dir), *paths, "--json", "--plot", str(plot)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["path"] for r in out] == paths
    for r, T in zip(out, lengths.values()):
        assert set(r) == {"path", "surprise_mean", "surprise_max", "per_frame"}
        assert len(r["per_frame"]) == T
        assert r["per_frame"][:4] == [None] * 4  # context frames are never predicted
        assert all(v is not None and v >= 0 for v in r["per_frame"][4:])
        assert 0 <= r["surprise_mean"] <= r["surprise_max"]
    assert plot.stat().st_size > 1000
    assert main(["surprise", str(run_dir), paths[0], "--context", "2"]) == 0
    assert "surprise_mean" in capsys.readouterr().out
    assert main(["surprise", str(run_dir), paths[0], "--context", "3"]) == 2  # not a multiple of the tubelet


def test_windows_slide_over_the_video(run_dir):
    from openjepa.train.checkpoint import load_method

    method, cfg, _ = load_method(run_dir)
    assert window_starts(14, 8, 2) == [0, 2, 4, 6]
    assert window_starts(13, 8, 2) == [0, 2, 4, 5]
    x = torch.randint(0, 255, (1, 14, 16, 16), dtype=torch.uint8)
    r = video_surprise(method, x)
    assert r["window_starts"] == [0, 2, 4, 6] and len(r["windows"]) == 4
    assert r["surprise_max"] == max(r["windows"])


def test_ensemble_scores_the_mean_of_its_members(run_dir, tmp_path, capsys):
    from openjepa.eval.surprise import Ensemble
    from openjepa.train.checkpoint import load_method

    other = tmp_path / "other"
    train(build_config({}, TINY + ["--train.seed=1"]), other, log=lambda *a: None)
    a, b = load_method(run_dir)[0], load_method(other)[0]
    x = torch.randint(0, 255, (1, 14, 16, 16), dtype=torch.uint8)
    ra, rb, re = (video_surprise(m, x) for m in (a, b, Ensemble([a, b])))
    assert ra["surprise_mean"] != rb["surprise_mean"]  # two different models
    assert re["windows"] == pytest.approx([(u + v) / 2 for u, v in zip(ra["windows"], rb["windows"])], rel=1e-5)
    assert re["per_frame"][4:] == pytest.approx([(u + v) / 2 for u, v in zip(ra["per_frame"][4:], rb["per_frame"][4:])],
                                                rel=1e-5)
    np.save(tmp_path / "v.npy", x[0].numpy())
    assert main(["surprise", str(run_dir), str(tmp_path / "v.npy"), "--ensemble", str(other), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["surprise_mean"] == pytest.approx(re["surprise_mean"], rel=1e-5)
    # members with another clip geometry are refused, naming the setting
    odd = tmp_path / "odd"
    train(build_config({}, TINY + ["--video.context_frames=2"]), odd, log=lambda *a: None)
    with pytest.raises(ValueError, match="video.context_frames"):
        Ensemble([a, load_method(odd)[0]])
    assert main(["surprise", str(run_dir), str(tmp_path / "v.npy"), "--ensemble", str(odd)]) == 2
    assert "context_frames" in capsys.readouterr().err


def test_bad_videos_name_the_file(run_dir, tmp_path, capsys):
    bad = {"rank.npy": np.zeros((4, 4), np.uint8), "empty.npy": np.zeros((0, 8, 8), np.uint8),
           "channels.npy": np.zeros((3, 8, 8, 5), np.uint8)}
    for name, a in bad.items():
        np.save(tmp_path / name, a)
    (tmp_path / "broken.mp4").write_bytes(b"this is not a video" * 10)
    (tmp_path / "broken.npy.npy").write_bytes(b"garbage")
    (tmp_path / "noframes").mkdir()
    for name in [*bad, "broken.mp4", "broken.npy.npy", "noframes"]:
        with pytest.raises(ValueError, match=name):
            load_video(tmp_path / name, 16, 1)
        assert main(["surprise", str(run_dir), str(tmp_path / name)]) == 2
        assert name in capsys.readouterr().err


def test_training_on_a_folder_of_user_videos(videos, tmp_path):
    d, _ = videos
    clips = load_video_clips(d, 16, 1, 4)
    assert clips.shape == (3 + 1 + 2 + 3 + 3, 1, 4, 16, 16)


REAL = sorted(glob.glob("/usr/share/doc/opencv-doc/examples/data/*.avi") +
              glob.glob("/usr/share/doc/opencv-doc/examples/data/*.mp4"))


@pytest.mark.skipif(not REAL, reason="Debian's opencv-doc clips are not installed")
def test_real_clip(run_dir):
    x = load_video(REAL[0], 16, 1)
    assert x.shape[0] == 1 and x.shape[1] > 8


def test_export_and_eval_know_video_models(run_dir, tmp_path, capsys):
    import openjepa

    assert main(["export", str(run_dir), "--out", str(tmp_path / "enc")]) == 0
    enc = openjepa.load_encoder(tmp_path / "enc")
    assert enc(torch.zeros(1, 1, 8, 16, 16)).shape == (1, 4 * 4 * 4, 32)  # 4 slices x 4 x 4
    assert main(["eval", str(run_dir)]) == 2
    assert "video world model" in capsys.readouterr().err


def test_per_frame_averages_every_window_that_predicts_the_frame():
    from types import SimpleNamespace

    class Fake(torch.nn.Module):  # window k's predicted slice j has error 10 k + j
        cfg = SimpleNamespace(video=SimpleNamespace(frames=4, tubelet=1, context_frames=2))

        def future_error(self, clips, context):
            b, S = clips.shape[0], clips.shape[2] - context
            return torch.arange(b)[:, None] * 10.0 + torch.arange(S)[None]

    r = video_surprise(Fake(), torch.zeros(1, 6, 4, 4, dtype=torch.uint8))
    assert r["window_starts"] == [0, 1, 2]
    assert r["per_frame"] == [None, None, 0.0, 5.5, 15.5, 21.0]
    assert r["surprise_mean"] == pytest.approx((0.5 + 10.5 + 20.5) / 3) and r["surprise_max"] == 20.5


def _up2(v, mode):
    """Every frame of v uint8 (T, H, W, C) at twice the size (nearest: pixel repetition; bilinear)."""
    if mode == "nearest":
        return v.repeat(2, 1).repeat(2, 2)
    x = torch.from_numpy(v).permute(0, 3, 1, 2).float()
    x = torch.nn.functional.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def test_a_2x_upsampled_copy_scores_the_same(run_dir, tmp_path):
    """The resize back to the model's size is not the identity: the antialiased bilinear 2x downsample blurs each
    pixel (0.75 itself + 0.125 of each neighbour for a pixel-repeated copy), so the model inputs differ by a few
    grey levels and the score by 0.4-1.8% over these clips. The tolerance is 2%; a flat grey clip, the control,
    scores 5% away, so the check can fail."""
    from openjepa.data.physics import train_video
    from openjepa.train.checkpoint import load_method

    method = load_method(run_dir)[0]
    for seed in range(3):
        v = train_video(seed, T=14, size=16, channels=1)[0]
        np.save(tmp_path / "v.npy", v)
        x = load_video(tmp_path / "v.npy", 16, 1)
        s = video_surprise(method, x)["surprise_mean"]
        for mode in ("nearest", "bilinear"):
            np.save(tmp_path / "up.npy", _up2(v, mode))
            xu = load_video(tmp_path / "up.npy", 16, 1)
            assert (xu.float() - x.float()).abs().mean() < 12, (seed, mode)  # grey levels of 255
            assert video_surprise(method, xu)["surprise_mean"] == pytest.approx(s, rel=0.02), (seed, mode)
        flat = torch.full_like(x, 128)
        assert video_surprise(method, flat)["surprise_mean"] != pytest.approx(s, rel=0.02)


def test_letterbox_keeps_the_whole_frame(run_dir, tmp_path, capsys):
    from openjepa.data.video import letterbox

    rng = np.random.default_rng(1)
    v = (rng.random((3, 20, 40)) * 200).astype(np.uint8)  # wide: 20 x 40
    v[:, :, 0] = v[:, :, -1] = 255  # bright outermost columns, which a centre crop cuts off
    np.save(tmp_path / "wide.npy", v)
    lb = load_video(tmp_path / "wide.npy", 16, 1, fit="letterbox")[0]  # (T, 16, 16)
    crop = load_video(tmp_path / "wide.npy", 16, 1)[0]
    assert lb.shape == crop.shape == (3, 16, 16)
    # the whole frame, resized to 8 x 16, sits in rows 4..11; the rest is one fill colour
    whole = torch.nn.functional.interpolate(torch.from_numpy(v)[:, None].float(), size=(8, 16), mode="bilinear",
                                            align_corners=False, antialias=True).round().clamp(0, 255)[:, 0]
    assert torch.equal(lb[:, 4:12].float(), whole)
    pad = torch.cat([lb[:, :4], lb[:, 12:]], 1)
    assert (pad == pad[0, 0, 0]).all()
    border = torch.cat([whole[:, 0], whole[:, -1], whole[:, :, 0], whole[:, :, -1]], 1)
    assert int(pad[0, 0, 0]) == round(float(border.mean()))
    assert lb[:, 4:12, 0].float().mean() > 150 and crop[:, :, 0].float().mean() < 150  # the edge survives only here
    # a tall clip pads columns; a square clip is the same either way; RGB keeps a colour fill
    np.save(tmp_path / "tall.npy", v.transpose(0, 2, 1).copy())
    tall = load_video(tmp_path / "tall.npy", 16, 1, fit="letterbox")[0]
    assert torch.equal(tall, lb.transpose(1, 2))
    np.save(tmp_path / "sq.npy", v[:, :, :20].copy())
    assert torch.equal(load_video(tmp_path / "sq.npy", 16, 3, fit="letterbox"), load_video(tmp_path / "sq.npy", 16, 3))
    rgb = torch.zeros(2, 3, 4, 8, dtype=torch.uint8)
    rgb[:, 0] = 200
    assert letterbox(rgb, 8)[:, :, 0, 0].tolist() == [[200, 0, 0]] * 2
    with pytest.raises(ValueError, match="fit"):
        load_video(tmp_path / "wide.npy", 16, 1, fit="stretch")
    assert main(["surprise", str(run_dir), str(tmp_path / "wide.npy"), "--fit", "letterbox", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["per_frame"]) == 3


def test_zscore_normalises_each_video_and_keeps_the_raw_numbers(run_dir, videos, capsys):
    d, _ = videos
    path = str(d / "grey.npy")
    assert main(["surprise", str(run_dir), path, "--json"]) == 0
    raw = json.loads(capsys.readouterr().out)
    assert main(["surprise", str(run_dir), path, "--json", "--normalize", "zscore"]) == 0
    z = json.loads(capsys.readouterr().out)
    assert z["raw"] == {k: raw[k] for k in ("surprise_mean", "surprise_max", "per_frame")}
    vals = np.array([v for v in z["per_frame"] if v is not None])
    assert z["per_frame"][:4] == [None] * 4 and len(vals) == 10
    assert vals.mean() == pytest.approx(0, abs=1e-9) and vals.std() == pytest.approx(1, rel=1e-9)
    mu, sd = z["normalization"]["mean"], z["normalization"]["std"]
    assert sd > 0 and mu == pytest.approx(np.mean([v for v in raw["per_frame"] if v is not None]))
    for k in ("surprise_mean", "surprise_max"):
        assert z[k] == pytest.approx((raw[k] - mu) / sd)
    assert main(["surprise", str(run_dir), path, "--normalize", "zscore"]) == 0  # the table: normalised numbers
    assert f"{z['surprise_max']:.4f}" in capsys.readouterr().out
    from openjepa.eval.surprise import normalize_surprise

    flat = normalize_surprise({"surprise_mean": 2.0, "surprise_max": 2.0, "per_frame": [None, 2.0, 2.0]}, "zscore")
    assert flat["per_frame"] == [None, 0.0, 0.0] and flat["surprise_max"] == 0.0  # a flat curve: zeros, no NaN


def test_fps_needs_timestamps(run_dir, videos, capsys):
    d, _ = videos
    for name in ("grey.npy", "frames"):
        with pytest.raises(ValueError, match="fps"):
            load_video(d / name, 16, 1, fps=5)
        assert main(["surprise", str(run_dir), str(d / name), "--fps", "5"]) == 2
        assert "timestamps" in capsys.readouterr().err
