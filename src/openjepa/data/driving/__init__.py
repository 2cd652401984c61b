"""A procedural driving world seen by a forward camera, with ground truth (numpy; seeded; no assets, no files).

    render_drive(cfg, seed, frames) -> dict of arrays      = render(simulate(cfg, seed, frames))
    simulate(cfg, seed, frames) -> DriveScene              per-frame states (world.py): edit them, then
    render(scene, frames=None) -> dict of arrays           draw them (render.py)
    violations.make_quadruplet(kind, seed, cfg) -> ...     matched possible / impossible clips (teleport, vanish,
                                                           pass_through) for surprise tests (violations.py)

A road with lanes and bends, other vehicles (cars, vans, trucks) that follow, brake, change lanes and occlude
one another, trees, poles and buildings on both sides, and a drive-wide look (sky, road, verge, paint, sun,
brightness, haze). The ego vehicle drives with a speed and a yaw rate that follow the traffic and the road's
curvature. Per frame: RGB uint8 (H, W, 3) (64 x 192 by default), metric depth (z-buffer; the sky and anything
past `max_depth` = 80 m read max_depth), an instance map, KITTI-style labels of the visible vehicles (2-D and
3-D boxes, truncation, occlusion level), the camera-to-world pose of camera 0 (KITTI odometry convention) and
the intrinsics (K and KITTI's P0..P3). data/kitti.py writes and reads the same data in KITTI's layouts.
"""

from __future__ import annotations

import numpy as np

from openjepa.data.driving.render import OBJECT_KEYS, box_corners, intrinsics, projections, render, render_frame
from openjepa.data.driving.world import VEHICLE_TYPES, DriveScene, DrivingConfig, simulate

__all__ = ["DrivingConfig", "DriveScene", "OBJECT_KEYS", "VEHICLE_TYPES", "box_corners", "frame_objects", "intrinsics",
           "projections", "render", "render_drive", "render_frame", "simulate"]


def render_drive(cfg: DrivingConfig, seed: int, frames: int) -> dict[str, np.ndarray]:
    """A `frames`-frame drive drawn from `seed` (see `render` for the arrays); same (cfg, seed, frames), same
    arrays."""
    return render(simulate(cfg, seed, frames))


def frame_objects(drive: dict[str, np.ndarray], t: int) -> dict[str, np.ndarray]:
    """The label rows (obj_*, box2d, ...) of frame t of a rendered drive."""
    rows = drive["obj_frame"] == t
    return {k: drive[k][rows] for k in OBJECT_KEYS if k != "obj_frame"}
