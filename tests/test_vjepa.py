"""vjepa / vpixel: config checks, learning, a real training run on physics videos, and surprise."""

import pytest
import torch

from openjepa.config import ConfigError, build_config
from openjepa.data.physics import train_videos
from openjepa.data.images import normalize
from openjepa.methods import METHODS
from openjepa.methods.vjepa import temporal_crop

TINY = ["--data.dataset=physics", "--data.img_size=16", "--data.channels=1", "--model.patch_size=4",
        "--model.dim=32", "--model.depth=1", "--model.heads=2", "--model.pred_dim=16", "--model.pred_depth=1",
        "--model.pred_heads=2", "--video.frames=8", "--video.context_frames=4", "--video.physics_frames=12",
        "--mask.context_scale=[1.0,1.0]", "--mask.min_context=2", "--train.precision=fp32"]


def tiny(name, *extra):
    return METHODS[name](build_config({}, [f"--train.method={name}", *TINY, *extra]))


def test_video_config_checks():
    with pytest.raises(ConfigError, match="video.context_frames"):
        build_config({}, ["--train.method=vjepa", *TINY, "--video.context_frames=8"])
    with pytest.raises(ConfigError, match="video.frames"):
        build_config({}, ["--train.method=vjepa", *TINY, "--video.frames=7"])
    with pytest.raises(ConfigError, match="data.dataset"):
        build_config({}, ["--train.method=vjepa"])  # fashion_mnist is not video
    with pytest.raises(ConfigError, match="data.dataset"):
        build_config({}, ["--data.dataset=physics"])  # ijepa on videos


def test_temporal_crop_is_a_window():
    x = torch.arange(10.0).view(1, 1, 10, 1, 1).expand(3, 1, 10, 2, 2)
    out = temporal_crop(x, 4, torch.Generator().manual_seed(0))
    assert out.shape == (3, 1, 4, 2, 2)
    for row in out[:, 0, :, 0, 0]:
        assert torch.equal(row - row[0], torch.arange(4.0))


@pytest.mark.parametrize("name", ["vjepa", "vpixel"])
@pytest.mark.parametrize("mask", ["future", "tube", "mixed"])
def test_video_methods_learn_in_five_steps(name, mask, five_steps):
    method = tiny(name, f"--video.mask={mask}")
    x = normalize(torch.from_numpy(train_videos(8, T=12, size=16, channels=1)))
    losses, logs = five_steps(method, x)
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < losses[0], losses
    if name == "vjepa":
        assert all(p.grad is None for p in method.target_encoder.parameters())
    err = method.future_error(x[:2, :, :8], 4)
    assert err.shape == (2, 2) and bool((err >= 0).all())


def test_future_error_rises_when_predicted_frames_are_scrambled():
    """The per-slice surprise compares predictions with what the clip shows: replacing the predicted frames by
    noise changes it; recomputing it gives the same numbers."""
    method = tiny("vjepa").eval()
    x = normalize(torch.from_numpy(train_videos(2, T=8, size=16, channels=1)))
    base = method.future_error(x, 4)
    assert torch.equal(base, method.future_error(x, 4))
    x2 = x.clone()
    x2[:, :, 4:] = torch.rand_like(x2[:, :, 4:]) * 2 - 1
    assert not torch.allclose(method.future_error(x2, 4), base)


def test_residual_target_removes_each_positions_clip_mean():
    """video.target=residual: the LayerNormed target tokens minus their mean over the clip's time slices, so the
    targets sum to zero over time at every position (the static layout is gone); a bad value is refused."""
    with pytest.raises(ConfigError, match="video.target"):
        build_config({}, ["--train.method=vjepa", *TINY, "--video.target=pixels"])
    torch.manual_seed(0)
    res = tiny("vjepa", "--video.target=residual").eval()
    torch.manual_seed(0)
    tok = tiny("vjepa").eval()
    x = normalize(torch.from_numpy(train_videos(2, T=8, size=16, channels=1)))
    n = res.grid[0] * res.grid[1] * res.grid[2]
    idx = torch.arange(n).expand(2, 1, n)
    zr, zt = res._targets(x, idx)[:, 0], tok._targets(x, idx)[:, 0]  # (2, N, D)
    zr, zt = zr.view(2, res.grid[0], -1, zr.shape[-1]), zt.view(2, res.grid[0], -1, zt.shape[-1])
    assert torch.allclose(zr.mean(1), torch.zeros_like(zr[:, 0]), atol=1e-5)
    assert torch.allclose(zr, zt - zt.mean(1, keepdim=True), atol=1e-5)
    err = res.future_error(x, 4)
    assert err.shape == (2, 2) and bool(torch.isfinite(err).all())
