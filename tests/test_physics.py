"""Procedural physics videos: determinism, shapes, and the IntPhys construction of the quadruplets."""

import numpy as np
import pytest

from openjepa.data.physics import (OCCLUSION_KINDS, PROPERTIES, TEST_SEED, make_quadruplet, occlusion_video, train_video,
                                   train_videos)


def test_train_videos_deterministic_and_shaped():
    a = train_videos(3, T=12, size=32, channels=3, seed=5)
    b = train_videos(3, T=12, size=32, channels=3, seed=5)
    assert a.shape == (3, 3, 12, 32, 32) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a[0], a[1])  # different seeds, different videos
    g = train_videos(2, T=8, size=64, channels=1, seed=5)
    assert g.shape == (2, 1, 8, 64, 64)


def test_train_video_ball_moves_and_state_is_returned():
    frames, pos, vel = train_video(3, T=16)
    assert pos.shape[0] == 16 and vel.shape == pos.shape
    assert np.abs(vel).sum() > 0
    assert np.abs(frames[1:].astype(int) - frames[:-1]).sum() > 0  # something changes between frames


def _hidden_frames(f, pos, vel) -> list[int]:
    """Frames t where the ball moves on inside the frame while frames t and t+1 stay equal: it is behind an
    occluder."""
    inside = (pos[:, 0, 0] > 0.1) & (pos[:, 0, 0] < 0.9)
    return [t for t in range(len(f) - 1) if np.array_equal(f[t], f[t + 1]) and inside[t] and inside[t + 1]
            and np.abs(vel[t, 0]).sum() > 1e-3]


def _footprint(x, t_axis: int, c_axis: int) -> int:
    """Pixels (over time) that differ from their per-pixel median over time: what moves, e.g. the ball."""
    return int((np.abs(x.astype(int) - np.median(x, t_axis, keepdims=True)) > 8).any(c_axis).sum())


def test_occlusion_videos_hide_a_moving_ball_and_are_deterministic():
    hidden_then_seen = empty = 0
    for seed in range(40):
        f, pos, vel = occlusion_video(seed, T=32)
        assert f.shape == (32, 32, 32, 3) and np.array_equal(f, occlusion_video(seed, T=32)[0])
        moving = [t for t in range(31) if not np.array_equal(f[t], f[t + 1])]
        if not moving:  # an empty scene: nothing changes
            empty += 1
            continue
        hidden_then_seen += bool(_hidden_frames(f, pos, vel))
    assert empty < 10 and hidden_then_seen >= 25


def test_occlusion_share_of_training_videos():
    base = train_videos(6, T=8, seed=11)
    assert np.array_equal(train_videos(6, T=8, seed=11, occlusion=0.0), base)
    allocc = train_videos(6, T=8, seed=11, occlusion=1.0)
    for i in range(6):
        assert np.array_equal(allocc[i], occlusion_video(11 + i, T=8)[0].transpose(3, 0, 1, 2))
    half = train_videos(40, T=8, seed=0, occlusion=0.5)
    n_occ = sum(np.array_equal(half[i], occlusion_video(i, T=8)[0].transpose(3, 0, 1, 2)) for i in range(40))
    assert 10 <= n_occ <= 30
    with pytest.raises(ValueError, match="occlusion"):
        train_videos(2, occlusion=1.5)
    assert len(OCCLUSION_KINDS) == 5


def test_occlusion_kind_weights():
    # the default weights are the old fixed mix: explicit defaults draw the same videos
    assert np.array_equal(train_videos(8, T=8, seed=3, occlusion=1.0),
                          train_videos(8, T=8, seed=3, occlusion=1.0, kinds=(0.3, 0.2, 0.2, 0.2, 0.1)))
    only_empty = (0, 0, 0, 0, 1)  # OCCLUSION_KINDS[-1] == "empty": no ball, nothing moves
    for seed in range(6):
        f = occlusion_video(seed, T=12, kinds=only_empty)[0]
        assert (f == f[:1]).all()
    moving = [not (f == f[:1]).all() for f in (occlusion_video(s, T=12, kinds=(1, 1, 1, 1, 0))[0] for s in range(6))]
    assert all(moving)
    for bad in ((0, 0, 0, 0, 0), (1, -1, 1, 1, 1), (1, 1)):
        with pytest.raises(ValueError, match="kind weights"):
            occlusion_video(0, T=8, kinds=bad)


def test_training_ball_scale_shrinks_only_the_balls():
    def footprint(x):  # (n, C, T, H, W)
        return _footprint(x, 2, 1)
    base = train_videos(12, T=16, seed=5, occlusion=0.5)
    assert np.array_equal(train_videos(12, T=16, seed=5, occlusion=0.5, ball_scale=1.0), base)
    small = train_videos(12, T=16, seed=5, occlusion=0.5, ball_scale=0.7)
    assert footprint(small) < 0.85 * footprint(base)
    assert np.array_equal(small[:, :, 0, -1], base[:, :, 0, -1])  # same scenes: the floor row of frame 0


def test_training_seeds_must_stay_below_test_seeds():
    with pytest.raises(ValueError, match="below"):
        train_videos(2, seed=TEST_SEED - 1)


@pytest.mark.parametrize("prop", PROPERTIES)
def test_quadruplet_frames_all_occur_in_possible_videos(prop):
    for seed in (TEST_SEED, TEST_SEED + 1):
        q = make_quadruplet(prop, seed, T=32, size=32, channels=3)
        A, B = q.possible
        for imp in q.impossible:
            assert imp.shape == A.shape
            assert not np.array_equal(imp, A) and not np.array_equal(imp, B)
            for t in range(imp.shape[0]):  # every frame is a frame of A or of B at the same time
                assert np.array_equal(imp[t], A[t]) or np.array_equal(imp[t], B[t])
        assert q.splice <= q.violation < A.shape[0]
        q2 = make_quadruplet(prop, seed, T=32, size=32, channels=3)
        assert all(np.array_equal(x, y) for x, y in zip(q.impossible + q.possible, q2.impossible + q2.possible))


@pytest.mark.parametrize("prop", PROPERTIES)
def test_quadruplet_ball_scale_keeps_the_scene_and_the_matching(prop):
    def moving(v):  # (T, H, W, C)
        return _footprint(v, 0, -1)
    same = 0
    for seed in range(TEST_SEED, TEST_SEED + 4):
        q, big = make_quadruplet(prop, seed), make_quadruplet(prop, seed, ball_scale=1.3)
        A, Ab = q.possible[0], big.possible[0]
        if np.array_equal(A[0, -1], Ab[0, -1]):  # same scene (a draw the bigger ball makes unusable is redrawn)
            same += 1
            assert moving(Ab) > 1.3 * moving(A)
        for imp in big.impossible:  # still a matched quadruplet
            for t in range(imp.shape[0]):
                assert np.array_equal(imp[t], big.possible[0][t]) or np.array_equal(imp[t], big.possible[1][t])
    assert same >= 2


def test_quadruplet_grey_and_64():
    q = make_quadruplet("inertia", TEST_SEED, T=32, size=64, channels=1)
    assert q.possible[0].shape == (32, 64, 64, 1)


def test_occlusion_swap_gives_full_height_walls_and_leaves_defaults():
    assert np.array_equal(train_videos(6, T=8, seed=3, occlusion=1.0),
                          train_videos(6, T=8, seed=3, occlusion=1.0, swap=0.0))

    def wall_reaches_top(f):  # a sharp edge along the top row: the wall runs the full height
        return bool((np.abs(np.diff(f[0, 0].astype(int), axis=0)).sum(-1) > 40).any())

    wall = (0, 0, 0, 1, 0)
    assert all(wall_reaches_top(occlusion_video(s, T=8, kinds=wall, swap=1.0)[0]) for s in range(8))
    assert not any(wall_reaches_top(occlusion_video(s, T=8, kinds=wall)[0]) for s in range(8))
    hidden = 0  # swapped cross scenes (a low occluder) still hide the rolling ball for a while
    for s in range(8):
        hidden += bool(_hidden_frames(*occlusion_video(s, T=32, kinds=(1, 0, 0, 0, 0), swap=1.0)))
    assert hidden >= 6
