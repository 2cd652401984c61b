"""A projective renderer of a DriveScene as KITTI's colour camera 2 sees it, with ground truth per frame.

    render(scene, frames=None) -> dict of arrays (see `render`'s docstring)

Camera: a pinhole K (fx = fy = focal * width, cx = (width - 1) / 2, cy = horizon * height; pixel centres at
integer coordinates, as in KITTI), looking along the world's z at the ego's heading, no pitch or roll. Camera 2
sits `cam2_offset` metres left of camera 0 (KITTI's P2 = K [I | (cam2_offset, 0, 0)]); poses, 3-D boxes and
depth are in camera 0 coordinates (depth along z is the same for both cameras).

Each pixel's ray is cast exactly:
- sky (a vertical gradient) at depth max_depth;
- the road plane y = camera_height below the horizon: depth = camera_height / ray_y, mapped to road coordinates
  (s, d) by one Newton step on the centre line; asphalt, lane paint (dashed between lanes, solid at the edges,
  box-filtered over the pixel's footprint so that far paint does not flicker), a gravel shoulder and a verge, with
  a value-noise texture fixed to the road (it moves with the world, a cue for ego-motion) that fades with the
  footprint; anything past max_depth is capped at max_depth and drawn in the haze colour;
- boxes (vehicles, trunks, canopies, poles, buildings): every box's pixels (its projected rectangle, after
  clipping the box at the near plane) are tested against it with the slab method in the box's own frame, all
  boxes of a frame in one vectorised pass; the nearest hit per pixel wins (a z-buffer), so vehicles occlude one
  another exactly. Faces are lit by the drive's sun (ambient + Lambert); vehicles get windows, dark sills and tail
  lights (bright while braking), buildings get window grids.
Haze blends every colour towards the horizon colour with distance, wholly at max_depth (nothing pops up there);
the drive's gain scales the brightness.

Labels follow KITTI's object format (camera 0 coordinates): type, truncated (share of the box's projected
rectangle outside the image), occluded (0: >= 95% of the vehicle's pixels visible, 1: >= 50%, 2: less),
alpha = rotation_y - atan2(x, z), the 2-D box (the projection of the 3-D box, clipped to the image, as KITTI's
boxes cover occluded parts), h w l, the bottom centre x y z, rotation_y (0: the vehicle faces camera x, -pi/2:
it drives away along z). A vehicle is labelled in a frame when >= min_pixels of its pixels are visible.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from openjepa.data.driving.world import PROP_KINDS, DriveScene, DrivingConfig, road_at

NEAR = 0.1  # metres: the near plane boxes are clipped at
OCCLUSION_LEVELS = (0.95, 0.5)  # visible fractions at or above which occluded = 0, 1 (below: 2)
# unit box corners (x along the length, y down from the bottom, z along the width), KITTI devkit order
_CORNERS = np.array([[0.5, 0.5, -0.5, -0.5, 0.5, 0.5, -0.5, -0.5],
                     [0.0, 0.0, 0.0, 0.0, -1.0, -1.0, -1.0, -1.0],
                     [0.5, -0.5, -0.5, 0.5, 0.5, -0.5, -0.5, 0.5]]).T  # (8, 3)
_EDGES = np.array([[0, 1], [1, 2], [2, 3], [3, 0], [4, 5], [5, 6], [6, 7], [7, 4], [0, 4], [1, 5], [2, 6], [3, 7]])


def intrinsics(cfg: DrivingConfig) -> np.ndarray:
    """(3, 3) pinhole K of the rendered images."""
    f = cfg.focal * cfg.width
    return np.array([[f, 0.0, (cfg.width - 1) / 2], [0.0, f, cfg.horizon * cfg.height], [0.0, 0.0, 1.0]])


def projections(cfg: DrivingConfig) -> dict[str, np.ndarray]:
    """KITTI's four (3, 4) projection matrices P0..P3 for our K: cameras 0/1 grey (1: 0.54 m right of 0), 2/3
    colour (2: cam2_offset left of 0, the one rendered; 3: 0.54 m right of 2), all rectified to the same K."""
    K = intrinsics(cfg)
    out = {}
    for name, tx in (("P0", 0.0), ("P1", -0.54), ("P2", cfg.cam2_offset), ("P3", cfg.cam2_offset - 0.54)):
        out[name] = K @ np.hstack([np.eye(3), [[tx], [0.0], [0.0]]])
    return out


def box_corners(dims: np.ndarray, loc: np.ndarray, ry: np.ndarray) -> np.ndarray:
    """(B, 8, 3) corners in camera coordinates of KITTI boxes: dims (B, 3) h w l, loc (B, 3) bottom centre,
    ry (B,) rotation about camera y."""
    h, w, l = dims[:, 0:1], dims[:, 1:2], dims[:, 2:3]
    local = _CORNERS[None] * np.stack([l, h, w], axis=-1)  # (B, 8, 3)
    c, s = np.cos(ry)[:, None], np.sin(ry)[:, None]
    x = c * local[..., 0] + s * local[..., 2]
    z = -s * local[..., 0] + c * local[..., 2]
    return np.stack([x, local[..., 1], z], axis=-1) + loc[:, None, :]


def pose_matrix(x: float, z: float, psi: float) -> np.ndarray:
    """(4, 4) camera-to-world pose of a camera at (x, 0, z) with heading psi (a rotation about y)."""
    c, s = np.cos(psi), np.sin(psi)
    return np.array([[c, 0, s, x], [0, 1, 0, 0], [-s, 0, c, z], [0, 0, 0, 1.0]])


@dataclass
class _Camera:
    """Per-config constants: rays and the road pixels' geometry in camera 0 coordinates."""
    K: np.ndarray
    xn: np.ndarray  # (W,) ray x per unit depth, from camera 2's centre
    yn: np.ndarray  # (H,) ray y per unit depth
    ground: np.ndarray  # (G,) flat indices of road pixels nearer than max_depth
    gx: np.ndarray  # (G,) their camera 0 x
    gz: np.ndarray  # (G,) their depth
    foot: np.ndarray  # (G,) metres of road one pixel row spans there (along the view)
    far: np.ndarray  # (F,) flat indices of road pixels past max_depth
    sky_mix: np.ndarray  # (H,) 0 at the top row .. 1 at the horizon

    @classmethod
    def build(cls, cfg: DrivingConfig) -> "_Camera":
        K = intrinsics(cfg)
        H, W = cfg.height, cfg.width
        xn = (np.arange(W) - K[0, 2]) / K[0, 0]
        yn = (np.arange(H) - K[1, 2]) / K[1, 1]
        yy = np.repeat(yn, W)
        with np.errstate(divide="ignore"):
            depth = np.where(yy > 1e-9, cfg.camera_height / np.maximum(yy, 1e-9), np.inf)
        flat = np.arange(H * W)
        near = depth < cfg.max_depth
        g = flat[near]
        gz = depth[near]
        gx = -cfg.cam2_offset + np.tile(xn, H)[near] * gz
        foot = gz ** 2 / (K[1, 1] * cfg.camera_height)
        far = flat[np.isfinite(depth) & ~near]
        sky_mix = np.clip((np.arange(H) + 1) / max(K[1, 2] + 1, 1), 0, 1)
        return cls(K, xn, yn, g, gx, gz, foot, far, sky_mix)


def _hash(i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Value noise in [0, 1) of integer cells (i, j): a fixed integer hash, so a texture is tied to the world."""
    h = (i.astype(np.int64) * 73856093) ^ (j.astype(np.int64) * 19349663)
    h = (h ^ (h >> 13)) * 1274126177
    return ((h >> 16) & 1023) / 1024.0


def _overlap(a0: np.ndarray, a1: np.ndarray, b0: float, b1: float) -> np.ndarray:
    """Length of the intersection of the intervals [a0, a1] and [b0, b1] (a box filter's coverage)."""
    return np.maximum(np.minimum(a1, b1) - np.maximum(a0, b0), 0.0)


def _ground(scene: DriveScene, cam: _Camera, t: int) -> tuple[np.ndarray, np.ndarray]:
    """(G, 3) colours of the road pixels nearer than max_depth and their haze weight (G,)."""
    cfg, look = scene.cfg, scene.look
    ex, ez, epsi = scene.ego[t]
    c, s = np.cos(epsi), np.sin(epsi)
    xw = ex + c * cam.gx + s * cam.gz
    zw = ez - s * cam.gx + c * cam.gz
    sg = scene.ego_s[t] + cam.gz  # first guess, then one Newton step along the centre line's tangent
    p = road_at(scene.road, sg)
    sg = sg + (xw - p[:, 0]) * np.sin(p[:, 2]) + (zw - p[:, 1]) * np.cos(p[:, 2])
    p = road_at(scene.road, sg)
    d = (xw - p[:, 0]) * np.cos(p[:, 2]) - (zw - p[:, 1]) * np.sin(p[:, 2])
    lat = cam.gz / cam.K[0, 0]  # metres one pixel column spans across the view
    half = cfg.half_road
    on_road = np.abs(d) <= half
    # texture cells of 0.6 m on the road, 1.2 m on the verge, faded where a pixel covers several cells
    cell = np.where(on_road, 0.6, 1.2)
    noise = _hash(np.floor(sg / cell), np.floor(d / cell)) - 0.5
    amp = np.where(on_road, 0.35, 0.6) * np.clip(1.5 - cam.foot / cell, 0, 1)
    base = np.where(on_road[:, None], look["road"], np.where((np.abs(d) < half + 0.8)[:, None], look["shoulder"],
                                                             look["verge"]))
    col = base * (1 + amp * noise)[:, None]
    # lane paint: 0.15 m lines at the lane boundaries; dashes 3 m of every 12 m between lanes
    k = np.clip(np.round(d / cfg.lane_width + cfg.lanes / 2), 0, cfg.lanes)
    dist = np.abs(d - (k * cfg.lane_width - half))
    cover = _overlap(dist - lat / 2, dist + lat / 2, -0.075, 0.075) / lat
    phase, f = np.mod(sg, 12.0), np.minimum(cam.foot, 12.0)
    dash = sum(_overlap(phase - f / 2, phase + f / 2, 12.0 * k, 12.0 * k + 3.0) for k in (-1, 0, 1)) / f
    cover = cover * np.where((k > 0) & (k < cfg.lanes), dash, 1.0)
    col = col * (1 - cover[:, None]) + look["paint"] * cover[:, None]
    return col, _haze(cam.gz, cfg.max_depth, look["haze"])


def _haze(depth: np.ndarray, max_depth: float, haze: float) -> np.ndarray:
    """Weight of the horizon colour at `depth`: the drive's haze growing with distance, and a fade to 1 over the
    last 30% before max_depth, so that things (the road's far end, a vehicle coming into range) appear out of
    the haze instead of popping up at max_depth."""
    r = np.clip(depth / max_depth, 0, 1)
    return 1 - (1 - haze * r ** 1.5) * (1 - np.clip((r - 0.7) / 0.3, 0, 1) ** 2)


def _frame_boxes(scene: DriveScene, t: int) -> dict[str, np.ndarray]:
    """Camera 0 boxes of frame t near the view: vehicles first (id = track + 1), then props (id = -1)."""
    cfg = scene.cfg
    ex, ez, epsi = scene.ego[t]
    c, s = np.cos(epsi), np.sin(epsi)
    live = scene.track[t] >= 0
    tr = scene.track[t][live]
    world = np.concatenate([scene.cars[t][live], scene.props])  # (B, 3)
    dims = np.concatenate([scene.track_dims[tr], scene.prop_dims])
    base = np.concatenate([np.zeros(len(tr)), scene.prop_base])
    dx, dz = world[:, 0] - ex, world[:, 1] - ez
    x, z = c * dx - s * dz, s * dx + c * dz
    r = 0.5 * np.hypot(dims[:, 1], dims[:, 2])
    half_fov = (cfg.width / 2 + 2) / (cfg.focal * cfg.width)
    keep = (z + r > NEAR) & (z - r < cfg.max_depth) & (np.abs(x) - r < (np.maximum(z, 0) + r) * half_fov + 1)
    nv = len(tr)
    return {
        "dims": dims[keep], "ry": np.angle(np.exp(1j * (world[keep, 2] - epsi - np.pi / 2))),
        "loc": np.stack([x, cfg.camera_height - base, z], axis=1)[keep],
        "colour": np.concatenate([scene.track_colour[tr], scene.prop_colour])[keep],
        "id": np.concatenate([tr + 1, np.full(len(scene.props), -1)])[keep],
        "kind": np.concatenate([np.full(nv, -1), scene.prop_kind])[keep],  # -1: a vehicle
        "braking": np.concatenate([scene.braking[t][live], np.zeros(len(scene.props), dtype=bool)])[keep],
        "track": np.concatenate([tr, np.full(len(scene.props), -1)])[keep],
    }


def _rects(corners: np.ndarray, K: np.ndarray, b: float) -> np.ndarray:
    """(B, 4) u0, v0, u1, v1 of the boxes' projections in camera 2 after clipping them at the near plane (the
    corners in front plus the edges' crossings of z = NEAR); a box wholly behind it gets an empty rectangle."""
    p = corners + np.array([b, 0.0, 0.0])  # camera 2 coordinates
    a, e = p[:, _EDGES[:, 0]], p[:, _EDGES[:, 1]]  # (B, 12, 3)
    with np.errstate(divide="ignore", invalid="ignore"):
        lam = (NEAR - a[..., 2]) / (e[..., 2] - a[..., 2])
    cross = (a[..., 2] - NEAR) * (e[..., 2] - NEAR) < 0
    inter = a + np.where(cross, lam, 0.0)[..., None] * (e - a)
    pts = np.concatenate([p, inter], axis=1)  # (B, 20, 3)
    ok = np.concatenate([p[..., 2] >= NEAR, cross], axis=1)
    z = np.where(ok, pts[..., 2], 1.0)
    u = K[0, 0] * pts[..., 0] / z + K[0, 2]
    v = K[1, 1] * pts[..., 1] / z + K[1, 2]
    big = np.inf
    return np.stack([np.where(ok, u, big).min(1), np.where(ok, v, big).min(1),
                     np.where(ok, u, -big).max(1), np.where(ok, v, -big).max(1)], axis=1)


def _cast(boxes: dict, rect: np.ndarray, cam: _Camera, cfg: DrivingConfig) -> dict[str, np.ndarray]:
    """Every hit of a pixel ray with a box: flat pixel index, depth, box index, entry face axis (0 length,
    1 height, 2 width) and hit point in the box's frame (centre origin)."""
    H, W = cfg.height, cfg.width
    u0 = np.clip(np.ceil(rect[:, 0]), 0, W).astype(np.int64)
    v0 = np.clip(np.ceil(rect[:, 1]), 0, H).astype(np.int64)
    u1 = np.clip(np.floor(rect[:, 2]), -1, W - 1).astype(np.int64)
    v1 = np.clip(np.floor(rect[:, 3]), -1, H - 1).astype(np.int64)
    nu, nv = np.maximum(u1 - u0 + 1, 0), np.maximum(v1 - v0 + 1, 0)
    count = nu * nv
    box = np.repeat(np.arange(len(count)), count)
    within = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)  # 0.. count-1 per box
    u = u0[box] + within % np.maximum(nu[box], 1)
    v = v0[box] + within // np.maximum(nu[box], 1)
    dims, ry = boxes["dims"], boxes["ry"]
    centre = boxes["loc"] - np.stack([np.zeros(len(ry)), dims[:, 0] / 2, np.zeros(len(ry))], axis=1)
    c, s = np.cos(ry), np.sin(ry)
    # ray origin (camera 2's centre) and direction in each box's frame: R(ry)^T (p - centre)
    ox, oz = -cfg.cam2_offset - centre[:, 0], -centre[:, 2]
    o = np.stack([c * ox - s * oz, -centre[:, 1], s * ox + c * oz], axis=1)[box]  # (M, 3)
    xn, yn = cam.xn[u], cam.yn[v]
    cb, sb = c[box], s[box]
    dirs = np.stack([cb * xn - sb, yn, sb * xn + cb], axis=1)
    dirs = np.where(np.abs(dirs) < 1e-12, 1e-12, dirs)
    half = (np.stack([dims[:, 2], dims[:, 0], dims[:, 1]], axis=1) / 2)[box]  # (M, 3) along x, y, z
    t1, t2 = (-half - o) / dirs, (half - o) / dirs
    lo, hi = np.minimum(t1, t2), np.maximum(t1, t2)
    axis = lo.argmax(1)
    tn = lo.max(1)
    hit = (tn <= hi.min(1)) & (tn > NEAR) & (tn < cfg.max_depth)
    tn, axis, box, o, dirs = tn[hit], axis[hit], box[hit], o[hit], dirs[hit]
    return {"pix": (v * W + u)[hit], "t": tn, "box": box, "axis": axis, "local": o + tn[:, None] * dirs,
            "sign": -np.sign(dirs[np.arange(len(axis)), axis])}


def _shade(boxes: dict, hits: dict, look: dict) -> np.ndarray:
    """(M, 3) colours of the winning box hits: the box colour, lit per face, plus vehicle and building details."""
    b, axis, sign, p = hits["box"], hits["axis"], hits["sign"], hits["local"]
    ry = boxes["ry"][b]
    # the entry face's normal in camera coordinates: R(ry) applied to sign * e_axis
    n = np.zeros((len(b), 3))
    c, s = np.cos(ry), np.sin(ry)
    n[axis == 0] = np.stack([c, np.zeros_like(c), -s], 1)[axis == 0]
    n[axis == 1] = [0.0, 1.0, 0.0]
    n[axis == 2] = np.stack([s, np.zeros_like(c), c], 1)[axis == 2]
    n *= sign[:, None]
    light = look["ambient"] + (1 - look["ambient"]) * np.clip(n @ look["sun"], 0, 1)
    col = boxes["colour"][b] * light[:, None]
    dims, kind = boxes["dims"][b], boxes["kind"][b]
    hy = 0.5 - p[:, 1] / dims[:, 0]  # 0 at the box's bottom, 1 at its top
    side = axis != 1
    car = kind == -1
    glass = car & side & (hy > 0.62) & (hy < 0.92) & ((axis == 0) | (np.abs(p[:, 0]) < 0.32 * dims[:, 2]))
    col[glass] = 0.3 * col[glass] + np.array([0.05, 0.07, 0.1])
    col[car & side & (hy < 0.12)] = 0.06
    tail = car & (axis == 0) & (sign < 0) & (hy > 0.4) & (hy < 0.55) & (np.abs(p[:, 2]) > 0.3 * dims[:, 1])
    col[tail] = np.where(boxes["braking"][b][tail, None], [1.0, 0.15, 0.1], [0.45, 0.03, 0.03])
    building = (kind == PROP_KINDS.index("building")) & side
    along = np.where(axis == 0, p[:, 2], p[:, 0])
    win = building & (np.mod(along, 3.0) > 0.9) & (np.mod(along, 3.0) < 2.1) & (np.mod(p[:, 1], 3.0) > 1.0) & \
        (np.mod(p[:, 1], 3.0) < 2.2)
    col[win] = col[win] * 0.35
    return col


def _labels(boxes: dict, hits: dict, winner: np.ndarray, cfg: DrivingConfig, rect: np.ndarray
            ) -> dict[str, np.ndarray]:
    """KITTI labels of the vehicles with >= min_pixels visible pixels (see the module docstring)."""
    nb = len(boxes["id"])
    own = np.bincount(hits["box"], minlength=nb)
    seen = np.bincount(hits["box"][winner], minlength=nb)
    keep = (boxes["kind"] == -1) & (seen >= cfg.min_pixels)
    frac = seen[keep] / np.maximum(own[keep], 1)
    r = rect[keep]
    W, H = cfg.width, cfg.height
    box2d = np.stack([np.clip(r[:, 0], 0, W - 1), np.clip(r[:, 1], 0, H - 1),
                      np.clip(r[:, 2], 0, W - 1), np.clip(r[:, 3], 0, H - 1)], axis=1)
    area = np.maximum(r[:, 2] - r[:, 0], 1e-6) * np.maximum(r[:, 3] - r[:, 1], 1e-6)
    inside = np.maximum(box2d[:, 2] - box2d[:, 0], 0) * np.maximum(box2d[:, 3] - box2d[:, 1], 0)
    loc, ry = boxes["loc"][keep], boxes["ry"][keep]
    return {
        "track": boxes["track"][keep], "box2d": box2d, "truncated": np.clip(1 - inside / area, 0, 1),
        "occluded": np.where(frac >= OCCLUSION_LEVELS[0], 0, np.where(frac >= OCCLUSION_LEVELS[1], 1, 2)),
        "alpha": np.angle(np.exp(1j * (ry - np.arctan2(loc[:, 0], loc[:, 2])))),
        "dims": boxes["dims"][keep], "loc": loc, "rotation_y": ry, "visible": frac,
        "box_height": box2d[:, 3] - box2d[:, 1], "braking": boxes["braking"][keep],
    }


def render_frame(scene: DriveScene, t: int, cam: _Camera | None = None) -> dict:
    """One frame: rgb uint8 (H, W, 3), depth float32 (H, W), ids int32 (H, W) (0 road/sky, track + 1 for a
    vehicle, -1 for a roadside box) and its vehicle labels (dict of arrays, one row per vehicle)."""
    cfg, look = scene.cfg, scene.look
    cam = cam or _Camera.build(cfg)
    H, W = cfg.height, cfg.width
    rows = look["sky_top"] * (1 - cam.sky_mix[:, None]) + look["sky_horizon"] * cam.sky_mix[:, None]  # (H, 3)
    col = np.repeat(rows, W, axis=0)  # (H W, 3)
    depth = np.full(H * W, cfg.max_depth)
    ids = np.zeros(H * W, dtype=np.int32)
    g, haze = _ground(scene, cam, t)
    col[cam.ground] = g * (1 - haze[:, None]) + look["sky_horizon"] * haze[:, None]
    col[cam.far] = look["sky_horizon"]
    depth[cam.ground] = cam.gz
    boxes = _frame_boxes(scene, t)
    corners = box_corners(boxes["dims"], boxes["loc"], boxes["ry"])
    rect = _rects(corners, cam.K, cfg.cam2_offset)
    hits = _cast(boxes, rect, cam, cfg)
    order = np.lexsort((hits["t"], hits["pix"]))  # by pixel, nearest first
    first = np.ones(len(order), dtype=bool)
    first[1:] = hits["pix"][order[1:]] != hits["pix"][order[:-1]]
    win = order[first]
    win = win[hits["t"][win] < depth[hits["pix"][win]]]
    winner = np.zeros(len(order), dtype=bool)
    winner[win] = True
    shaded = _shade(boxes, {k: v[win] for k, v in hits.items()}, look)
    haze_w = _haze(hits["t"][win], cfg.max_depth, look["haze"])[:, None]
    pix = hits["pix"][win]
    col[pix] = shaded * (1 - haze_w) + look["sky_horizon"] * haze_w
    depth[pix] = hits["t"][win]
    ids[pix] = boxes["id"][hits["box"][win]]
    rgb = np.clip(col * look["gain"] * 255 + 0.5, 0, 255).astype(np.uint8).reshape(H, W, 3)
    return {"rgb": rgb, "depth": depth.astype(np.float32).reshape(H, W), "ids": ids.reshape(H, W),
            "labels": _labels(boxes, hits, winner, cfg, rect)}


LABEL_KEYS = ("track", "box2d", "truncated", "occluded", "alpha", "dims", "loc", "rotation_y", "visible",
              "box_height", "braking")
# the per-vehicle arrays of a rendered drive (one row per labelled vehicle and frame)
OBJECT_KEYS = ("obj_frame", "obj_type", "obj_track", *LABEL_KEYS[1:])


def render(scene: DriveScene, frames: list[int] | range | None = None) -> dict[str, np.ndarray]:
    """Draw the frames of a scene (all by default). Returns, for T frames and M labelled vehicles in all:

        rgb uint8 (T, H, W, 3)        depth float32 (T, H, W) metres along z, max_depth for the sky and beyond
        ids int32 (T, H, W)           0 road/sky, track + 1 for a vehicle, -1 for a roadside box
        poses float64 (T, 4, 4)       camera 0 to world (world = camera 0 at frame 0), KITTI odometry
        K (3, 3), P0 .. P3 (3, 4)     intrinsics and KITTI projection matrices (P2: the rendered camera)
        speed (T,) m/s, yaw_rate (T,) rad/s, times (T,) s
        obj_frame (M,) index of the row's frame in the returned arrays, obj_type (M,) index into VEHICLE_TYPES,
        obj_track (M,), box2d (M, 4) x1 y1 x2 y2 pixels, truncated (M,), occluded (M,) 0/1/2, alpha (M,),
        dims (M, 3) h w l, loc (M, 3) x y z bottom centre, rotation_y (M,), visible (M,) visible pixel fraction,
        box_height (M,) pixels, braking (M,) bool
    """
    cfg = scene.cfg
    idx = list(range(scene.frames) if frames is None else frames)
    cam = _Camera.build(cfg)
    out = [render_frame(scene, t, cam) for t in idx]
    labels = {k: [o["labels"][k] for o in out] for k in LABEL_KEYS}
    res = {
        "rgb": np.stack([o["rgb"] for o in out]), "depth": np.stack([o["depth"] for o in out]),
        "ids": np.stack([o["ids"] for o in out]),
        "poses": np.stack([pose_matrix(*scene.ego[t]) for t in idx]), "K": cam.K,
        **projections(cfg),
        "speed": scene.speed[idx], "yaw_rate": scene.yaw_rate[idx], "times": np.asarray(idx) * cfg.dt,
        "obj_frame": np.concatenate([np.full(len(o["labels"]["track"]), i)
                                     for i, o in enumerate(out)]).astype(np.int64),
    }
    for k, parts in labels.items():
        res["obj_track" if k == "track" else k] = np.concatenate(parts)
    res["obj_type"] = scene.track_type[res["obj_track"]] if len(res["obj_track"]) else np.zeros(0, dtype=np.int64)
    return res
