"""Resolution and frame-rate variation of the procedural physics training videos (data/physics.py: render_scale,
fps_scale, video_scales; config video.physics_render_scales / physics_fps_scales): a scaled render is the
box-downsample of the bigger render, a scaled frame rate is the same scene sampled at another rate, the draws are per
seed and apart from the physics, quadruplets stay exact splices, and the config keys are checked and refused where
unused."""

import numpy as np
import pytest

from openjepa.config import ConfigError, build_config
from openjepa.data.physics import (PROPERTIES, TEST_SEED, Scene, make_quadruplet, occlusion_video, simulate,
                                   train_video, train_videos, video_scales)
from openjepa.data.physics_styles import draw_style
from openjepa.train.run import physics_videos
from openjepa.validate import check_config


def _box(v: np.ndarray, k: int) -> np.ndarray:
    """uint8 (T, kH, kW, C) -> the mean of each k x k block, rounded (written apart from physics.downsample)."""
    T, H, W, C = v.shape
    return np.round(v.astype(np.float64).reshape(T, H // k, k, W // k, k, C).mean((2, 4))).astype(np.uint8)


@pytest.mark.parametrize("make", [train_video, occlusion_video])
@pytest.mark.parametrize("style", ["plain", "train"])
def test_render_scale_is_the_box_downsample_of_the_bigger_render(make, style):
    softer = 0
    for seed in range(4):
        small = make(seed, T=8, style=style, render_scale=2)
        big = make(seed, T=8, size=64, style=style)
        assert np.array_equal(small[0], _box(big[0], 2))
        assert np.array_equal(small[1], big[1])  # the same trajectories
        softer += not np.array_equal(small[0], make(seed, T=8, style=style)[0])
    assert softer == 4  # and not the native 32 px render
    grey = make(1, T=8, channels=1, style=style, render_scale=3)[0]
    assert grey.shape == (8, 32, 32, 1) and np.array_equal(grey, _box(make(1, T=8, size=96, channels=1,
                                                                           style=style)[0], 3))


def test_camera_noise_is_drawn_at_the_render_resolution():
    """A style's sensor noise is per render pixel: a 2x render's downsample has about half the frame-to-frame
    noise of the native render (the mean of 4 independent draws)."""
    ratios = []
    for seed in range(3, 8):
        if draw_style("train", (seed,)).noise != "gauss":
            continue
        native = train_video(seed, T=8, style="train")[0].astype(np.float64)
        scaled = train_video(seed, T=8, style="train", render_scale=2)[0].astype(np.float64)
        ratios.append(np.median(np.diff(scaled, axis=0).std(0)) / np.median(np.diff(native, axis=0).std(0)))
    assert len(ratios) >= 3 and all(0.35 < r < 0.65 for r in ratios), ratios


@pytest.mark.parametrize("prop", PROPERTIES)
def test_render_scaled_quadruplets_stay_exact_splices(prop):
    q = make_quadruplet(prop, TEST_SEED, style="train", render_scale=2)
    A, B = q.possible
    assert A.shape == (32, 32, 32, 3)
    for imp in q.impossible:
        assert not np.array_equal(imp, A) and not np.array_equal(imp, B)
        for t in range(imp.shape[0]):  # every frame is a frame of A or of B at the same time index
            assert np.array_equal(imp[t], A[t]) or np.array_equal(imp[t], B[t])
    assert q.splice <= q.violation < A.shape[0]


@pytest.mark.parametrize("f,base_T,T", [(2.0, 16, 8), (0.5, 8, 16)])
def test_fps_scale_films_the_same_scene_at_another_rate(f, base_T, T):
    """Every kind of training video (throws, falls with bounces, rolls, collisions, walls): T frames at fps_scale f
    are the base video's frames f base frames apart (f = 2: every other frame; f = 0.5: the base frames are every
    other frame of the scaled video)."""
    for seed in range(12):
        frames, pos, _ = train_video(seed, T=T, fps_scale=f)
        bframes, bpos, _ = train_video(seed, T=base_T)
        if f > 1:
            assert np.allclose(pos, bpos[::2], rtol=0, atol=1e-12) and np.array_equal(frames, bframes[::2])
        else:
            assert np.allclose(pos[::2], bpos, rtol=0, atol=1e-12) and np.array_equal(frames[::2], bframes)


def test_fps_scale_keeps_the_settle_speed_physical():
    """A dropped ball that bounces, settles and rolls: at fps_scale 2 the same trajectory every other base frame,
    so the ball settles at the same physical time (the settle threshold, 2.5 g per base frame, is not 2.5 g per
    scaled frame). fps_scale 3 (substeps not powers of two): the same up to rounding."""
    scene = Scene(np.zeros(3), 0.0, 0.1, np.zeros(3), np.array([0.05]), np.zeros((1, 3)))
    state = np.array([[0.3, 0.8, 0.004, 0.0]])
    for restitution in (0.5, 0.7):
        base = simulate(scene, state, 121, 0.008, restitution=restitution, side_walls=False)
        assert np.allclose(base[-5:, 0, 1], 0.15)  # it settled on the floor
        assert np.array_equal(simulate(scene, state, 61, 0.008, restitution=restitution, side_walls=False,
                                       fps_scale=2), base[::2])
        three = simulate(scene, state, 41, 0.008, restitution=restitution, side_walls=False, fps_scale=3)
        assert np.allclose(three, base[::3], rtol=0, atol=1e-9)


def test_fps_scale_doubles_displacement_and_quadruples_gravity():
    """Balls in free flight over the first 8 base frames (no bounce: constant horizontal speed and vertical
    acceleration; 4 frames at fps_scale 2): per-frame horizontal displacement x 2, per-frame change of vertical
    velocity x 4 (= -4 g)."""
    free = 0
    for seed in range(30):
        p1, p2 = train_video(seed, T=9)[1][:, 0], train_video(seed, T=5, fps_scale=2.0)[1][:, 0]  # (T, 2)
        a1 = np.diff(p1[:, 1], 2)
        if np.ptp(np.diff(p1[:, 0])) > 1e-12 or np.ptp(a1) > 1e-12 or abs(a1[0]) < 1e-6:  # a bounce, or rolling
            continue
        free += 1
        assert np.allclose(np.diff(p2[:, 0]), 2 * np.diff(p1[:5, 0]), rtol=1e-9, atol=1e-15)
        assert np.allclose(np.diff(p2[:, 1], 2), 4 * a1[:3], rtol=1e-9) and (a1 < 0).all()
    assert free >= 5


def test_occlusion_video_fps_scale_keeps_the_hidden_frame():
    """Rolling occlusion scenes at fps_scale 2: the ball rolls twice as fast per frame and is still behind the
    occluder's centre at the same clip frame (x2(t) - x1(t) = v (t - t_hide) for the base speed v)."""
    rolling = 0
    for seed in range(16):
        p1, p2 = occlusion_video(seed, T=16)[1][:, 0], occlusion_video(seed, T=16, fps_scale=2.0)[1][:, 0]
        if np.ptp(p1[:, 1]) > 0 or np.ptp(p2[:, 1]) > 0:
            continue  # an arc
        rolling += 1
        v = p1[1, 0] - p1[0, 0]
        assert np.isclose(p2[1, 0] - p2[0, 0], 2 * v)
        t_hide = [t - (p2[t, 0] - p1[t, 0]) / v for t in (0, 1)]
        assert np.isclose(*t_hide) and 4 <= t_hide[0] <= 12
    assert rolling >= 8


def test_scale_draws_are_per_seed_and_apart_from_the_physics():
    ks = [video_scales(s, (1, 2, 3), (0.5, 1.0, 2.0)) for s in range(300)]
    assert ks == [video_scales(s, (1, 2, 3), (0.5, 1.0, 2.0)) for s in range(300)]  # deterministic
    assert {k for k, _ in ks} == {1, 2, 3} and {f for _, f in ks} == {0.5, 1.0, 2.0}
    assert [k for k, _ in ks] == [video_scales(s, (1, 2, 3), (1.0,))[0] for s in range(300)]  # independent draws
    assert [f for _, f in ks] == [video_scales(s, (1,), (0.5, 1.0, 2.0))[1] for s in range(300)]
    # a scaled run's videos: those that drew the base scales are the default videos byte for byte, the others are
    # the same scenes (the same trajectories) rendered or filmed otherwise
    base = train_videos(8, T=8, seed=20, occlusion=0.5)
    for lists in (((1, 2), (1.0,)), ((1,), (1.0, 2.0))):
        got = train_videos(8, T=8, seed=20, occlusion=0.5, render_scales=lists[0], fps_scales=lists[1])
        drawn = [video_scales(20 + i, *lists) for i in range(8)]
        same = [np.array_equal(got[i], base[i]) for i in range(8)]
        assert same == [d == (1, 1.0) for d in drawn] and 0 < sum(same) < 8
    for seed in range(6):
        for make in (train_video, occlusion_video):
            assert np.array_equal(make(seed, T=8, render_scale=2)[1], make(seed, T=8)[1])


BASE = ["--train.method=vjepa", "--data.dataset=physics", "--data.img_size=32", "--model.patch_size=8",
        "--video.frames=4", "--video.context_frames=2", "--video.physics_frames=4", "--video.physics_videos=3"]


def test_config_keys_reach_the_data_and_are_checked():
    cfg = check_config(build_config({}, BASE + ["--video.physics_render_scales=[2]",
                                                "--video.physics_fps_scales=[1,2.5]"]))
    assert cfg.video.physics_render_scales == (2,) and cfg.video.physics_fps_scales == (1.0, 2.5)
    x = physics_videos(cfg)[0].numpy()
    want = train_videos(3, T=4, channels=cfg.data.channels, seed=0, render_scales=(2,), fps_scales=(1.0, 2.5))
    assert np.array_equal(x, want)
    assert not np.array_equal(x, physics_videos(check_config(build_config({}, BASE)))[0].numpy())
    for key, bad in (("physics_render_scales", "[0]"), ("physics_render_scales", "[]"),
                     ("physics_render_scales", "[1.5]"), ("physics_fps_scales", "[0]"),
                     ("physics_fps_scales", "[4.5]"), ("physics_fps_scales", "[]")):
        with pytest.raises(ConfigError, match=f"^video.{key}"):
            build_config({}, BASE + [f"--video.{key}={bad}"])
    for key in ("physics_render_scales=[2]", "physics_fps_scales=[2.0]"):  # only data.dataset=physics reads them
        cfg = build_config({}, BASE[:1] + ["--data.dataset=videos", "--data.path=clips", f"--video.{key}"])
        with pytest.raises(ConfigError, match="^video." + key.split("=")[0]):
            check_config(cfg)
