"""KITTI's file layouts, written and read: odometry sequences (+ object labels and depth maps) and raw drives.

Odometry layout (`write_sequence` writes it from a rendered drive, `read_sequence` reads it; KITTI's own
download reads the same way):

    ROOT/sequences/SS/image_2/NNNNNN.png    colour camera 2 (the rendered camera)
    ROOT/sequences/SS/calib.txt             "P0: ..." to "P3: ..." (3x4 row-major) and "Tr: ..." (velodyne ->
                                            camera 0; ours is a nominal KITTI-like mounting: no lidar is drawn)
    ROOT/sequences/SS/times.txt             seconds since the first frame, one line per frame
    ROOT/poses/SS.txt                       12 numbers a line: camera 0 -> world (world = camera 0 at frame 0),
                                            the top 3x4 of the pose, row-major
  and, what KITTI odometry does not have, next to the images:
    ROOT/sequences/SS/label_2/NNNNNN.txt    KITTI object labels, 15 columns a line: type truncated occluded alpha
                                            x1 y1 x2 y2 h w l x y z rotation_y (camera 0 coordinates; a 16th
                                            column, a score, is read when present)
    ROOT/sequences/SS/depth_2/NNNNNN.png    depth of camera 2 as KITTI's depth benchmark stores it: uint16,
                                            metres * 256, 0 = no value (the sky and anything at max_depth)

Raw layout (read only: `read_raw_drive`):

    DATE/calib_cam_to_cam.txt               P_rect_02 (camera 2's projection), R_rect_00
    DATE/calib_imu_to_velo.txt, DATE/calib_velo_to_cam.txt    R and T of the two mountings (optional)
    DATE/DATE_drive_NNNN_sync/image_02/data/NNNNNNNNNN.png
    DATE/DATE_drive_NNNN_sync/oxts/data/NNNNNNNNNN.txt        30 numbers: lat lon alt roll pitch yaw vn ve vf vl
                                            vu ax ay az af al au wx wy wz wf wl wu pos_accuracy vel_accuracy
                                            navstat numsats posmode velmode orimode

oxts -> poses (`oxts_poses`), the KITTI devkit's convention: positions are projected with a Mercator projection
whose scale is the cosine of the first frame's latitude (x east = scale * R_earth * lon, y north = scale *
R_earth * ln tan(pi/4 + lat/2), z = altitude, R_earth = 6378137 m), the IMU's orientation is Rz(yaw) Ry(pitch)
Rx(roll), and every pose is expressed relative to the first frame's. The IMU frame is x forward, y left, z up;
with both mounting calibrations the camera 0 poses in KITTI odometry's convention follow (`read_raw_drive`).

`load_kitti_clips` turns the image folders of either layout into training clips (the `kitti` dataset).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

EARTH_RADIUS = 6378137.0  # metres (WGS84 equatorial), as the devkit uses
# velodyne -> camera 0 of KITTI's rig, rounded (x forward, y left, z up -> x right, y down, z forward)
NOMINAL_TR = np.array([[0.0, -1.0, 0.0, 0.0], [0.0, 0.0, -1.0, -0.08], [1.0, 0.0, 0.0, -0.27]])
# where the image folders of a KITTI root can be, relative to it: odometry (with or without the download's
# `dataset/` level, or one sequence), raw (a root of dates, one date, or one drive)
IMAGE_FOLDERS = ("sequences/*/image_2", "dataset/sequences/*/image_2", "image_2",
                 "*/*_drive_*_sync/image_02/data", "*_drive_*_sync/image_02/data", "image_02/data")


# ---------------------------------------------------------------- plain files: calibration, poses, labels, depth

def read_calib(path: str | Path) -> dict[str, np.ndarray]:
    """`KEY: numbers` lines -> {KEY: float64 array}; lines whose value is not numbers (calib_time) are skipped."""
    out = {}
    for line in Path(path).read_text().splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        try:
            out[key.strip()] = np.array([float(v) for v in value.split()])
        except ValueError:
            continue
    return out


def write_calib(path: str | Path, mats: dict[str, np.ndarray]) -> None:
    Path(path).write_text("".join(f"{k}: " + " ".join(f"{v:.12e}" for v in np.ravel(m)) + "\n"
                                  for k, m in mats.items()))


def read_poses(path: str | Path) -> np.ndarray:
    """poses/SS.txt -> float64 (T, 4, 4)."""
    a = np.loadtxt(path, ndmin=2)
    if a.shape[1] != 12:
        raise ValueError(f"{path}: expected 12 numbers a line (a 3x4 pose), got {a.shape[1]}")
    out = np.tile(np.eye(4), (len(a), 1, 1))
    out[:, :3, :] = a.reshape(-1, 3, 4)
    return out


def write_poses(path: str | Path, poses: np.ndarray) -> None:
    Path(path).write_text("".join(" ".join(f"{v:e}" for v in p[:3].ravel() + 0.0) + "\n" for p in poses))


def read_labels(path: str | Path) -> dict[str, np.ndarray]:
    """label_2/NNNNNN.txt -> {"type": str (M,), "truncated", "occluded", "alpha", "box2d" (M, 4), "dims" (M, 3)
    h w l, "loc" (M, 3), "rotation_y", and "score" when the file has a 16th column}."""
    rows = [line.split() for line in Path(path).read_text().splitlines() if line.strip()]
    bad = [r for r in rows if len(r) not in (15, 16)]
    if bad:
        raise ValueError(f"{path}: a KITTI label line has 15 (or 16, with a score) columns, got {len(bad[0])}")
    num = np.array([[float(v) for v in r[1:]] for r in rows], dtype=np.float64).reshape(len(rows), -1) if rows \
        else np.zeros((0, 14))
    out = {"type": np.array([r[0] for r in rows], dtype=str), "truncated": num[:, 0],
           "occluded": num[:, 1].astype(np.int64), "alpha": num[:, 2], "box2d": num[:, 3:7], "dims": num[:, 7:10],
           "loc": num[:, 10:13], "rotation_y": num[:, 13]}
    if num.shape[1] == 15:  # the 16th column of the line (the type is the first)
        out["score"] = num[:, 14]
    return out


def write_labels(path: str | Path, objects: dict[str, np.ndarray], types: tuple[str, ...]) -> None:
    """One frame's vehicles (data.driving.frame_objects) as a KITTI label file; obj_type indexes `types`."""
    lines = []
    for i in range(len(objects["obj_type"])):
        x1, y1, x2, y2 = objects["box2d"][i]
        h, w, l = objects["dims"][i]
        x, y, z = objects["loc"][i]
        lines.append(f"{types[objects['obj_type'][i]]} {objects['truncated'][i]:.2f} {int(objects['occluded'][i])} "
                     f"{objects['alpha'][i]:.2f} {x1:.2f} {y1:.2f} {x2:.2f} {y2:.2f} {h:.2f} {w:.2f} {l:.2f} "
                     f"{x:.2f} {y:.2f} {z:.2f} {objects['rotation_y'][i]:.2f}\n")
    Path(path).write_text("".join(lines))


def write_depth(path: str | Path, depth: np.ndarray, max_depth: float) -> None:
    """float (H, W) metres -> uint16 PNG of depth * 256, with 0 where depth >= max_depth (no value)."""
    from PIL import Image

    d = np.where(depth < max_depth, np.round(depth * 256.0), 0).clip(0, 65535).astype(np.uint16)
    Image.fromarray(d).save(path)


def read_depth(path: str | Path) -> np.ndarray:
    """uint16 depth PNG -> float32 (H, W) metres; 0 where there is no value."""
    from PIL import Image

    with Image.open(path) as im:
        a = np.asarray(im)
    if a.dtype not in (np.uint16, np.int32) or a.ndim != 2:
        raise ValueError(f"{path}: expected a 16-bit single-channel depth PNG, got {a.dtype} {a.shape}")
    return a.astype(np.float32) / 256.0


# ---------------------------------------------------------------- odometry sequences

def write_sequence(root: str | Path, seq: int, drive: dict[str, np.ndarray], types: tuple[str, ...],
                   max_depth: float) -> Path:
    """A rendered drive (data.driving.render) as KITTI odometry sequence `seq` under root (see the module
    docstring); returns the sequence folder."""
    from PIL import Image

    from openjepa.data.driving import frame_objects

    root = Path(root)
    name = f"{seq:02d}"
    d = root / "sequences" / name
    if (d / "image_2").is_dir() and any((d / "image_2").iterdir()):
        # frames left from an earlier, longer drive would no longer match the poses
        raise FileExistsError(f"{d} already holds frames; write to an empty folder")
    for sub in ("image_2", "label_2", "depth_2"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    (root / "poses").mkdir(parents=True, exist_ok=True)
    write_calib(d / "calib.txt", {k: drive[k] for k in ("P0", "P1", "P2", "P3")} | {"Tr": NOMINAL_TR})
    (d / "times.txt").write_text("".join(f"{t:e}\n" for t in drive["times"] - drive["times"][0]))
    write_poses(root / "poses" / f"{name}.txt", drive["poses"])
    for t in range(len(drive["rgb"])):
        Image.fromarray(drive["rgb"][t]).save(d / "image_2" / f"{t:06d}.png")
        write_depth(d / "depth_2" / f"{t:06d}.png", drive["depth"][t], max_depth)
        write_labels(d / "label_2" / f"{t:06d}.txt", frame_objects(drive, t), types)
    return d


def read_sequence(root: str | Path, seq: int | str) -> dict:
    """A KITTI odometry sequence: {"images": [paths], "calib": {P0..P3, Tr: (3, 4)}, "P2", "K" (3, 3), "times"
    (T,) or None, "poses" (T, 4, 4) or None (KITTI's test sequences have none), "labels": [per-frame dicts] or
    None, "depth": [paths] or None}."""
    root = Path(root)
    name = seq if isinstance(seq, str) else f"{seq:02d}"
    d = root / "sequences" / name
    images = sorted((d / "image_2").glob("*.png"))
    if not images:
        raise FileNotFoundError(f"{d / 'image_2'}: no frames (*.png)")
    calib = {k: v.reshape(3, 4) for k, v in read_calib(d / "calib.txt").items() if v.size == 12}
    if "P2" not in calib:
        raise ValueError(f"{d / 'calib.txt'}: no P2 line")
    out = {"images": images, "calib": calib, "P2": calib["P2"], "K": calib["P2"][:, :3].copy(),
           "times": np.loadtxt(d / "times.txt", ndmin=1) if (d / "times.txt").is_file() else None,
           "poses": None, "labels": None, "depth": None}
    if (root / "poses" / f"{name}.txt").is_file():
        out["poses"] = read_poses(root / "poses" / f"{name}.txt")
        if len(out["poses"]) != len(images):
            raise ValueError(f"{root / 'poses' / f'{name}.txt'}: {len(out['poses'])} poses for {len(images)} frames")
    if (d / "label_2").is_dir():
        out["labels"] = [read_labels(d / "label_2" / f"{p.stem}.txt") for p in images]
    if (d / "depth_2").is_dir():
        out["depth"] = [d / "depth_2" / p.name for p in images]
    return out


def write_drives(root: str | Path, sequences: int, frames: int, cfg=None, seed: int = 0,
                 progress: bool = False) -> Path:
    """`sequences` generated drives of `frames` frames (seeds seed, seed + 1, ...) as KITTI odometry sequences
    00, 01, ... under root (`openjepa data driving`)."""
    from openjepa.data.driving import VEHICLE_TYPES, DrivingConfig, render_drive

    cfg = cfg or DrivingConfig()
    if sequences < 1 or frames < 1:
        raise ValueError(f"need >= 1 sequence and >= 1 frame, got {sequences} sequences of {frames} frames")
    root = Path(root)
    for i in range(sequences):
        d = write_sequence(root, i, render_drive(cfg, seed + i, frames), VEHICLE_TYPES, cfg.max_depth)
        if progress:
            print(f"wrote {d} ({frames} frames)", flush=True)
    return root


# ---------------------------------------------------------------- raw drives (oxts)

def _rot(axis: int, a: np.ndarray) -> np.ndarray:
    """(T, 3, 3) rotations by angles a (T,) about x (0), y (1) or z (2)."""
    c, s = np.cos(a), np.sin(a)
    R = np.tile(np.eye(3), (len(a), 1, 1))
    i, j = [(1, 2), (0, 2), (0, 1)][axis]
    R[:, i, i], R[:, j, j] = c, c
    R[:, i, j], R[:, j, i] = (-s, s) if axis != 1 else (s, -s)
    return R


def oxts_poses(oxts: np.ndarray) -> np.ndarray:
    """oxts records (T, >= 6) -> IMU-to-world poses (T, 4, 4), world = the IMU at the first frame (see the
    module docstring for the projection)."""
    lat, lon, alt = np.radians(oxts[:, 0]), np.radians(oxts[:, 1]), oxts[:, 2]
    scale = np.cos(lat[0])
    T = np.tile(np.eye(4), (len(oxts), 1, 1))
    T[:, 0, 3] = scale * EARTH_RADIUS * lon
    T[:, 1, 3] = scale * EARTH_RADIUS * np.log(np.tan(np.pi / 4 + lat / 2))
    T[:, 2, 3] = alt
    T[:, :3, :3] = _rot(2, oxts[:, 5]) @ _rot(1, oxts[:, 4]) @ _rot(0, oxts[:, 3])
    return np.linalg.inv(T[0]) @ T


def _rigid(calib: dict[str, np.ndarray], path: Path) -> np.ndarray:
    if "R" not in calib or "T" not in calib:
        raise ValueError(f"{path}: needs R (9 numbers) and T (3 numbers) lines")
    M = np.eye(4)
    M[:3, :3], M[:3, 3] = calib["R"].reshape(3, 3), calib["T"]
    return M


def read_raw_drive(drive: str | Path) -> dict:
    """A KITTI raw drive folder (DATE/DATE_drive_NNNN_sync): {"images": [paths of image_02/data], "oxts" (T, 30),
    "imu_poses" (T, 4, 4) (oxts_poses), "P2" (3, 4) = P_rect_02, "K" (3, 3), "poses" (T, 4, 4): camera 0
    (rectified) to world = camera 0 at the first frame, KITTI odometry's convention, or None when the date folder
    lacks calib_imu_to_velo.txt / calib_velo_to_cam.txt}."""
    drive = Path(drive)
    date = drive.parent
    images = sorted((drive / "image_02" / "data").glob("*.png"))
    if not images:
        raise FileNotFoundError(f"{drive / 'image_02' / 'data'}: no frames (*.png)")
    oxts_files = sorted((drive / "oxts" / "data").glob("*.txt"))
    if len(oxts_files) != len(images):
        raise ValueError(f"{drive / 'oxts' / 'data'}: {len(oxts_files)} oxts records for {len(images)} frames")
    oxts = np.stack([np.loadtxt(f, ndmin=1) for f in oxts_files])
    if oxts.shape[1] != 30:
        raise ValueError(f"{oxts_files[0]}: an oxts record has 30 numbers, got {oxts.shape[1]}")
    cam = read_calib(date / "calib_cam_to_cam.txt")
    if "P_rect_02" not in cam:
        raise ValueError(f"{date / 'calib_cam_to_cam.txt'}: no P_rect_02 line")
    P2 = cam["P_rect_02"].reshape(3, 4)
    imu = oxts_poses(oxts)
    out = {"images": images, "oxts": oxts, "imu_poses": imu, "P2": P2, "K": P2[:, :3].copy(), "poses": None}
    iv, vc = date / "calib_imu_to_velo.txt", date / "calib_velo_to_cam.txt"
    if iv.is_file() and vc.is_file():
        R_rect = np.eye(4)
        R_rect[:3, :3] = cam["R_rect_00"].reshape(3, 3) if "R_rect_00" in cam else np.eye(3)
        cam_imu = R_rect @ _rigid(read_calib(vc), vc) @ _rigid(read_calib(iv), iv)  # IMU -> camera 0 (rectified)
        # camera pose at t relative to the first camera: C (I_0^-1 I_t) C^-1, with I_0 = identity
        out["poses"] = cam_imu @ imu @ np.linalg.inv(cam_imu)
    return out


# ---------------------------------------------------------------- training clips

def image_folders(root: str | Path) -> list[Path]:
    """The frame folders (odometry image_2, raw image_02/data) under a KITTI root, sorted (see IMAGE_FOLDERS)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"no such KITTI folder: {root}")
    found = sorted({p for pat in IMAGE_FOLDERS for p in root.glob(pat) if p.is_dir() and any(p.glob("*.png"))})
    if not found:
        raise ValueError(f"{root}: no KITTI frames found (looked for {', '.join(IMAGE_FOLDERS)} holding *.png)")
    return found


def load_kitti_clips(root: str | Path, size: int, channels: int, frames: int) -> torch.Tensor:
    """Every frame folder under a KITTI root cut into non-overlapping clips of `frames` frames (a shorter drive
    gives one clip padded with its last frame): uint8 (N, C, frames, size, size). Frames are brought to the model
    as data/transforms.py:to_model_input does (short side resized to `size`, centre crop: a 3:1 KITTI frame
    keeps its middle third), one clip at a time so that a long drive is never held at full resolution."""
    from PIL import Image

    from openjepa.data.transforms import to_model_input

    def read(paths: list[Path]) -> torch.Tensor:
        arr = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in paths])  # (T, H, W, 3)
        return to_model_input(torch.from_numpy(arr).permute(0, 3, 1, 2), size, channels).permute(1, 0, 2, 3)

    clips = []
    for folder in image_folders(root):
        files = sorted(folder.glob("*.png"))
        if len(files) < frames:
            files = files + [files[-1]] * (frames - len(files))
        for s in range(0, len(files) - frames + 1, frames):
            clips.append(read(files[s:s + frames]).contiguous())  # (C, frames, size, size)
    return torch.stack(clips)
