"""The driving world (data/driving/): determinism, ground truth that agrees with the pixels, config checks."""

import numpy as np
import pytest

from openjepa.data.driving import (DrivingConfig, VEHICLE_TYPES, box_corners, frame_objects, render, render_drive,
                                   simulate)
from openjepa.data.driving.render import pose_matrix

CFG = DrivingConfig(vehicles=10)


@pytest.fixture(scope="module")
def drive():
    return render_drive(CFG, seed=3, frames=40)


def test_same_seed_same_arrays_other_seed_other_drive(drive):
    again = render_drive(CFG, seed=3, frames=40)
    assert drive.keys() == again.keys()
    for k in drive:
        assert np.array_equal(drive[k], again[k]), k
    other = render_drive(CFG, seed=4, frames=40)
    assert not np.array_equal(drive["rgb"], other["rgb"])
    assert drive["rgb"].shape == (40, 64, 192, 3) and drive["rgb"].dtype == np.uint8
    assert drive["depth"].shape == (40, 64, 192) and drive["depth"].dtype == np.float32


def test_projected_boxes_land_on_their_vehicle(drive):
    """Points on a labelled vehicle's 3-D box, projected with P2, fall on pixels of that vehicle whose rendered
    depth is the points' depth, inside the vehicle's 2-D box; for every fully visible vehicle of the drive."""
    P2 = drive["P2"]
    checked = 0
    for t in range(len(drive["rgb"])):
        obj = frame_objects(drive, t)
        for i in np.flatnonzero((obj["occluded"] == 0) & (obj["truncated"] == 0) & (obj["box_height"] >= 6)):
            h, w, l = obj["dims"][i]
            x, y, z = obj["loc"][i]
            ry = obj["rotation_y"][i]
            # the face nearest the camera among the two length ends: the box's centre line, inset from the edges
            heading = np.array([np.cos(ry), 0.0, -np.sin(ry)])
            sgn = -1.0 if heading @ np.array([x, 0, z]) > 0 else 1.0
            side = np.array([np.sin(ry), 0.0, np.cos(ry)])
            for a in (-0.25, 0.0, 0.25):
                for b in (0.3, 0.5, 0.7):
                    p = np.array([x, y - b * h, z]) + sgn * heading * l / 2 + a * w * side
                    u, v, s = P2 @ np.append(p, 1.0)
                    u, v = int(round(u / s)), int(round(v / s))
                    x1, y1, x2, y2 = obj["box2d"][i]
                    assert x1 - 0.5 <= u <= x2 + 0.5 and y1 - 0.5 <= v <= y2 + 0.5
                    if drive["ids"][t, v, u] == obj["obj_track"][i] + 1:  # points behind a side face are hidden
                        assert drive["depth"][t, v, u] == pytest.approx(p[2], rel=0.05, abs=0.3)
                        checked += 1
            # all eight corners inside the 2-D box (it is the projection of the 3-D box)
            c = box_corners(obj["dims"][i:i + 1], obj["loc"][i:i + 1], obj["rotation_y"][i:i + 1])[0]
            uvw = np.c_[c, np.ones(8)] @ P2.T
            uv = uvw[:, :2] / uvw[:, 2:]
            assert np.all(uv[:, 0] >= x1 - 1e-6) and np.all(uv[:, 0] <= x2 + 1e-6)
            assert np.all(uv[:, 1] >= y1 - 1e-6) and np.all(uv[:, 1] <= y2 + 1e-6)
    assert checked > 50


def test_pixels_of_a_vehicle_lie_inside_its_box(drive):
    """Each labelled vehicle's pixels (instance map) lie inside its 2-D box and at depths inside its 3-D box's z
    range; the road below the horizon is at the ground plane's depth."""
    for t in (0, 20, 39):
        obj = frame_objects(drive, t)
        for i, track in enumerate(obj["obj_track"]):
            v, u = np.nonzero(drive["ids"][t] == track + 1)
            x1, y1, x2, y2 = obj["box2d"][i]
            assert u.min() >= x1 - 0.5 and u.max() <= x2 + 0.5 and v.min() >= y1 - 0.5 and v.max() <= y2 + 0.5
            c = box_corners(obj["dims"][i:i + 1], obj["loc"][i:i + 1], obj["rotation_y"][i:i + 1])[0]
            d = drive["depth"][t][v, u]
            assert d.min() >= c[:, 2].min() - 1e-3 and d.max() <= c[:, 2].max() + 1e-3
    K, cfg = drive["K"], CFG
    road = (drive["ids"][0] == 0) & (drive["depth"][0] < cfg.max_depth)
    v, _ = np.nonzero(road)
    assert np.allclose(drive["depth"][0][road], cfg.camera_height * K[1, 1] / (v - K[1, 2]), rtol=1e-5)
    top = drive["ids"][:, 0] == 0  # the top row, where no box covers it, is sky
    assert top.mean() > 0.3 and np.all(drive["depth"][:, 0][top] == cfg.max_depth)


def test_labels_are_kitti_conventions(drive):
    assert len(drive["obj_frame"]) > 40
    assert set(np.unique(drive["occluded"])) <= {0, 1, 2} and 1 in drive["occluded"]
    assert np.all((drive["truncated"] >= 0) & (drive["truncated"] <= 1))
    assert np.all(np.abs(drive["rotation_y"]) <= np.pi) and np.all(np.abs(drive["alpha"]) <= np.pi)
    # vehicles on the road stand on it: their bottom is camera_height below camera 0
    assert np.allclose(drive["loc"][:, 1], CFG.camera_height)
    assert set(np.unique(drive["obj_type"])) <= set(range(len(VEHICLE_TYPES)))
    # occlusion levels agree with the visible fractions they come from
    assert np.all(drive["visible"][drive["occluded"] == 0] >= 0.95)
    assert np.all(drive["visible"][drive["occluded"] == 2] < 0.5)
    # a vehicle driving ahead in the ego's direction has rotation_y near -pi/2 (KITTI: 0 faces camera x)
    assert np.median(drive["rotation_y"]) == pytest.approx(-np.pi / 2, abs=0.2)


def test_poses_follow_speed_and_yaw_rate(drive):
    poses, dt = drive["poses"], CFG.dt
    assert np.allclose(poses[0], np.eye(4))
    step = np.linalg.norm(np.diff(poses[:, :3, 3], axis=0), axis=1)
    assert np.allclose(step, drive["speed"][1:] * dt, rtol=0.05, atol=0.02)
    yaw = np.unwrap(np.arctan2(poses[:, 0, 2], poses[:, 2, 2]))
    assert np.allclose(np.gradient(yaw, dt), drive["yaw_rate"], atol=1e-9)
    assert np.allclose(poses[:, 1, 3], 0) and np.allclose(poses[:, :3, :3] @ poses[:, :3, :3].transpose(0, 2, 1),
                                                          np.eye(3))


def test_curvature_turns_the_ego():
    """A road of constant bends makes the ego turn at a yaw rate of about speed x curvature."""
    cfg = DrivingConfig(max_curvature=0.02, straight_share=0.0, vehicles=0, ego_lane_change_rate=0.0)
    scene = simulate(cfg, seed=1, frames=200)
    rate = np.abs(scene.yaw_rate) / scene.speed
    assert rate.max() > 0.004 and rate.max() <= 0.02 + 1e-6


def test_edited_states_render_what_they_say():
    """render() draws whatever states it is given: a vehicle moved 10 m further away is drawn smaller."""
    cfg = DrivingConfig(vehicles=1, lanes=1, tree_spacing=0, pole_spacing=0, building_spacing=0)
    scene = simulate(cfg, seed=0, frames=2)
    ex, ez, psi = scene.ego[1]
    scene.cars[1, 0] = (ex + 10 * np.sin(psi), ez + 10 * np.cos(psi), psi)
    scene.track[1, 0] = scene.track[0, 0]
    near = render(scene, [1])
    scene.cars[1, 0, :2] += 10 * np.array([np.sin(psi), np.cos(psi)])
    far = render(scene, [1])
    assert near["loc"][0, 2] == pytest.approx(10.0, abs=0.5) and far["loc"][0, 2] == pytest.approx(20.0, abs=0.5)
    assert far["box_height"][0] < 0.6 * near["box_height"][0]
    assert (far["ids"] > 0).sum() < 0.5 * (near["ids"] > 0).sum()


def test_pose_matrix_heading():
    """psi > 0 turns camera z towards world +x (a right turn in KITTI's x-right, y-down frame)."""
    P = pose_matrix(0.0, 0.0, 0.3)
    assert P[0, 2] > 0 and np.isclose(np.linalg.det(P[:3, :3]), 1)


@pytest.mark.parametrize("key,value", [("lanes", 0), ("max_depth", 300.0), ("ego_speed", (5.0, 2.0)),
                                       ("height", 4), ("tree_spacing", 1.0)])
def test_config_errors_name_the_key(key, value):
    with pytest.raises(ValueError, match=f"env.{key}"):
        DrivingConfig(**{key: value})


def _footprints(scene, t):
    """(n, 4, 2) ground rectangles (x, z) of the ego (4.5 x 1.8 m) and every vehicle at frame t."""
    live = scene.track[t] >= 0
    dims = scene.track_dims[scene.track[t][live]]
    states = np.concatenate([scene.ego[t:t + 1], scene.cars[t][live]])
    lw = np.concatenate([[[4.5, 1.8]], dims[:, [2, 1]]])
    f = np.stack([np.sin(states[:, 2]), np.cos(states[:, 2])], 1)  # forward
    r = np.stack([f[:, 1], -f[:, 0]], 1)  # right
    signs = np.array([[1, 1], [1, -1], [-1, -1], [-1, 1]]) / 2
    return states[:, None, :2] + signs[None, :, :1] * lw[:, None, :1] * f[:, None] \
        + signs[None, :, 1:] * lw[:, None, 1:] * r[:, None]


def test_vehicles_never_interpenetrate():
    """The simulated traffic is physically possible: no two vehicles (the ego included) overlap on the ground in
    any frame (separating-axis test of their footprints); the test sees a crowded road with lane changes."""
    cfg = DrivingConfig(vehicles=12, lane_change_rate=0.1)
    for seed in (0, 1):
        scene = simulate(cfg, seed, 150)
        for t in range(0, 150, 2):
            c = _footprints(scene, t)  # (n, 4, 2)
            edges = np.concatenate([c[:, 1] - c[:, 0], c[:, 3] - c[:, 0]])  # two axes per rectangle
            proj = np.einsum("nkd,ad->ank", c, edges)  # (axes, n, 4)
            lo, hi = proj.min(2), proj.max(2)  # (axes, n)
            apart = (hi[:, :, None] < lo[:, None, :]) | (hi[:, None, :] < lo[:, :, None])  # (axes, n, n)
            overlap = ~apart.any(0)
            np.fill_diagonal(overlap, False)
            assert not overlap.any(), (seed, t, np.argwhere(overlap))


def test_vehicles_come_and_go_out_of_sight():
    """A track's first and last labelled frames (inside the drive) are far away, at the image's edge or
    occluded: replacement vehicles never pop up or vanish in plain view."""
    d = render_drive(DrivingConfig(vehicles=12), seed=5, frames=150)
    inside = 0
    for tr in np.unique(d["obj_track"]):
        rows = np.flatnonzero(d["obj_track"] == tr)
        for i, edge in ((rows[0], 0), (rows[-1], 149)):
            if d["obj_frame"][i] != edge:
                inside += 1
                assert d["loc"][i, 2] > 55 or d["truncated"][i] > 0 or d["occluded"][i] > 0, (tr, d["loc"][i])
    assert inside >= 3  # the test saw vehicles arrive or leave during the drive
