"""vjepa / vpixel: config checks, learning, a real training run on physics videos, and surprise."""

import pytest
import torch

from openjepa.config import ConfigError, build_config
from openjepa.data.physics import train_videos
from openjepa.data.transforms import normalize
from openjepa.methods import METHODS
from openjepa.methods.vjepa import temporal_crop
from openjepa.validate import check_config

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
        check_config(build_config({}, ["--train.method=vjepa"]))  # fashion_mnist is not video
    with pytest.raises(ConfigError, match="data.dataset"):
        check_config(build_config({}, ["--data.dataset=physics"]))  # ijepa on videos
    with pytest.raises(ConfigError, match="video.physics_occlusion"):
        build_config({}, ["--train.method=vjepa", *TINY, "--video.physics_occlusion=1.2"])
    with pytest.raises(ConfigError, match="video.physics_kinds"):
        build_config({}, ["--train.method=vjepa", *TINY, "--video.physics_kinds=[1,0,0,-1,0]"])
    with pytest.raises(ConfigError, match="video.physics_swap"):
        build_config({}, ["--train.method=vjepa", *TINY, "--video.physics_swap=2"])
    with pytest.raises(ConfigError, match="video.stem"):
        build_config({}, ["--train.method=vjepa", *TINY, "--video.stem=conv"])
    with pytest.raises(ConfigError, match="video.stem"):  # hmlp merges 2 x 2: patch 6 cannot be split
        build_config({}, ["--train.method=vjepa", *TINY, "--data.img_size=12", "--model.patch_size=6",
                          "--video.stem=hmlp"])


def test_temporal_crop_is_a_window():
    x = torch.arange(10.0).view(1, 1, 10, 1, 1).expand(3, 1, 10, 2, 2)
    out = temporal_crop(x, 4, torch.Generator().manual_seed(0))
    assert out.shape == (3, 1, 4, 2, 2)
    for row in out[:, 0, :, 0, 0]:
        assert torch.equal(row - row[0], torch.arange(4.0))


@pytest.mark.parametrize("name", ["vjepa", "vpixel"])
@pytest.mark.parametrize("mask,stem", [("future", "linear"), ("tube", "linear"), ("mixed", "linear"),
                                       ("next", "linear"), ("future", "hmlp")])
def test_video_methods_learn_in_five_steps(name, mask, stem, five_steps):
    method = tiny(name, f"--video.mask={mask}", f"--video.stem={stem}")
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


@pytest.mark.parametrize("name", ["vjepa", "vpixel"])
@pytest.mark.parametrize("delta", [False, True])
def test_next_mode_predicts_each_slice_from_earlier_frames_only(name, delta):
    """video.mask=next (teacher-forced next-slice prediction): the prediction of time slice s (frames 2s, 2s+1)
    does not change when frames of slice s or later change, and does change when an earlier frame changes;
    the targets of the jepa twin come from a frame-causal target encoder (no look-ahead either)."""
    torch.manual_seed(0)
    m = tiny(name, "--video.mask=next", f"--video.delta={str(delta).lower()}").eval()
    x = normalize(torch.from_numpy(train_videos(2, T=8, size=16, channels=1)))
    hw = m.grid[1] * m.grid[2]
    ctx_idx, tgt_idx = m.future_masks(x, 2)  # slices 1..3 predicted
    pred = m.predict(x, ctx_idx, tgt_idx)[0]
    assert tgt_idx.shape == (2, 1, 3 * hw)
    for s in (1, 2, 3):
        x2 = x.clone()
        x2[:, :, 2 * s:] = torch.rand_like(x2[:, :, 2 * s:]) * 2 - 1
        p2 = m.predict(x2, ctx_idx, tgt_idx)[0]
        early = s * hw  # predictions of slices 1..s (the first s slices of tgt)
        assert torch.allclose(p2[:, :, :early], pred[:, :, :early], atol=1e-5)
        if s < 3:
            assert (p2[:, :, early:] - pred[:, :, early:]).abs().max() > 1e-5
    if name == "vjepa":
        full = torch.arange(m.grid[0] * hw).expand(2, 1, -1)
        t0 = m._targets(x, full)
        x3 = x.clone()
        x3[:, :, 6:] = 0.0  # the last slice
        assert torch.allclose(m._targets(x3, full)[:, :, :3 * hw], t0[:, :, :3 * hw], atol=1e-5)


@pytest.mark.parametrize("mask", ["future", "next"])
def test_delta_prediction_starts_from_the_last_seen_slice(mask):
    """video.delta: with the predictor's output zeroed, the pixel twin predicts each slice as the last frame seen
    before it (held for the tubelet), so a static clip has zero error and a moving one does not; the latent twin
    predicts the target tokens of the same position at the previous slice (next) or the last context slice
    (future). delta needs future or next masks."""
    with pytest.raises(ConfigError, match="video.delta"):
        build_config({}, ["--train.method=vjepa", *TINY, "--video.delta=true", "--video.mask=tube"])
    x = normalize(torch.from_numpy(train_videos(2, T=8, size=16, channels=1)))
    static = x[:, :, :1].expand(-1, -1, 8, -1, -1).contiguous()
    for name in ("vpixel", "vjepa"):
        m = tiny(name, f"--video.mask={mask}", "--video.delta=true").eval()
        torch.nn.init.zeros_(m.predictor.head.weight)
        torch.nn.init.zeros_(m.predictor.head.bias)
        if name == "vpixel":
            assert m.future_error(static, 4).abs().max() < 1e-6
            assert m.future_error(x, 4).max() > 1e-3  # moving balls: the last frame is not the next one
        else:
            ctx_idx, tgt_idx = m.future_masks(x, 4)
            hw = m.grid[1] * m.grid[2]
            base_slice = (tgt_idx // hw - 1) if mask == "next" else torch.full_like(tgt_idx, 1)
            pred = m.predict(x, ctx_idx, tgt_idx)[0]
            assert torch.allclose(pred, m._targets(x, base_slice * hw + tgt_idx % hw), atol=1e-6)


@pytest.mark.parametrize("name", ["vjepa", "vpixel"])
def test_copy_last_gain_separates_a_stalled_predictor_from_a_perfect_one(name, monkeypatch):
    """copy_last_gain is 0 for a predictor that predicts "nothing moves" (pixels: delta with the head zeroed; latent:
    the copy guess itself, which is exact on a clip that does not move), 1 for one that predicts the targets."""
    x = normalize(torch.from_numpy(train_videos(4, T=8, size=16, channels=1)))
    m = tiny(name, "--video.mask=future", "--video.delta=true").eval()
    torch.nn.init.zeros_(m.predictor.head.weight)
    torch.nn.init.zeros_(m.predictor.head.bias)
    real = m.predict
    if name == "vpixel":
        assert abs(m.copy_last_gain(x, 4)) < 1e-5
    else:  # the latent guess is the target of the clip frozen at frame 4: exact when nothing moves after it
        frozen = torch.cat([x[:, :, :4], x[:, :, 3:4].expand(-1, -1, 4, -1, -1)], 2)
        ctx_idx, tgt_idx = m.future_masks(frozen, 4)
        assert torch.allclose(m.copy_guess(frozen, ctx_idx, tgt_idx), real(frozen, ctx_idx, tgt_idx)[1], atol=1e-6)
        assert not torch.allclose(m.copy_guess(x, ctx_idx, tgt_idx), real(x, ctx_idx, tgt_idx)[1], atol=1e-3)
        monkeypatch.setattr(m, "predict", lambda x, c, t: (m.copy_guess(x, c, t),) + real(x, c, t)[1:])
        assert abs(m.copy_last_gain(x, 4)) < 1e-6
    monkeypatch.setattr(m, "predict", lambda x, c, t: (real(x, c, t)[1],) + real(x, c, t)[1:])
    assert m.copy_last_gain(x, 4) == pytest.approx(1.0)
    # measured in the training objective: small errors everywhere (cheap in MSE, dear in L1) still beat copying
    ctx_idx, tgt_idx = m.future_masks(x, 4)
    tgt = real(x, ctx_idx, tgt_idx)[1]
    guess = m.copy_guess(x, ctx_idx, tgt_idx)
    noisy = tgt + 0.5 * ((guess - tgt) ** 2).mean().sqrt() * torch.randn_like(tgt)  # a quarter of copy's MSE
    monkeypatch.setattr(m, "predict", lambda x, c, t: (noisy,) + real(x, c, t)[1:])
    expected = 1 - m.loss(noisy, tgt) / m.loss(guess, tgt)
    assert m.copy_last_gain(x, 4) == pytest.approx(float(expected), rel=1e-5)
    if name == "vpixel":  # here the noisy prediction is worse than copying in L1 but better in MSE
        assert (noisy - tgt).abs().mean() > (guess - tgt).abs().mean() and expected > 0


def test_training_warns_when_the_video_predictor_stalls(tmp_path, capsys):
    """A predictor that never learns (lr 0, delta with the head zeroed: it copies the last frame forward) is
    flagged once half the steps are done; the monitor logs copy_last_gain."""
    import json
    from openjepa.train.loop import train
    cfg = build_config({}, ["--train.method=vpixel", *TINY, "--video.mask=future", "--video.delta=true",
                            "--video.physics_videos=80", "--data.batch_size=8", "--train.steps=4",
                            "--train.monitor_every=2", "--train.monitor_samples=16", "--train.progress=false",
                            "--optim.lr=0", "--optim.start_lr=0", "--optim.final_lr=0", "--optim.weight_decay=0",
                            "--optim.final_weight_decay=0"])
    real_build = METHODS["vpixel"]

    class Copying(real_build):
        def __init__(self, c):
            super().__init__(c)
            torch.nn.init.zeros_(self.predictor.head.weight)
            torch.nn.init.zeros_(self.predictor.head.bias)
    METHODS["vpixel"] = Copying
    try:
        summary = train(cfg, tmp_path / "run")
    finally:
        METHODS["vpixel"] = real_build
    assert summary["stall_warned"]
    assert "STALLED" in capsys.readouterr().out
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    gains = [r["copy_last_gain"] for r in rows if "copy_last_gain" in r]
    assert len(gains) == 2 and all(abs(g) < 1e-4 for g in gains)
    capsys.readouterr()
    again = train(cfg, tmp_path / "run", resume=True)  # the checkpoint remembers the warning
    assert again["steps"] == 4 and again["stall_warned"] and "STALLED" not in capsys.readouterr().out
