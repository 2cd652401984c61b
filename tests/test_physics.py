"""Procedural physics videos: determinism, shapes, and the IntPhys construction of the quadruplets."""

import numpy as np
import pytest

from openjepa.data.physics import PROPERTIES, TEST_SEED, make_quadruplet, train_video, train_videos


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


def test_quadruplet_grey_and_64():
    q = make_quadruplet("inertia", TEST_SEED, T=32, size=64, channels=1)
    assert q.possible[0].shape == (32, 64, 64, 1)
