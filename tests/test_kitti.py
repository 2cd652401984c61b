"""KITTI layouts (data/kitti.py): writer -> reader round trip, raw drives' oxts poses, and training on a tree."""

import numpy as np
import pytest
import yaml
from PIL import Image

from openjepa.cli import main
from openjepa.config import build_config
from openjepa.data.driving import VEHICLE_TYPES, DrivingConfig, frame_objects, render_drive
from openjepa.data.kitti import (EARTH_RADIUS, image_folders, load_kitti_clips, read_depth, read_raw_drive,
                                 read_sequence, write_sequence)
from openjepa.train.loop import train
from openjepa.train.run import find_preset
from openjepa.validate import check_config

CFG = DrivingConfig(vehicles=10)


def smoke_size():
    """The model section of the smoke preset (its eval section is for image encoders, which vjepa refuses)."""
    model = yaml.safe_load(find_preset("smoke").read_text())["model"]
    return [f"--model.{k}={v}" for k, v in model.items()]


SMOKE_SIZE = smoke_size()


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("kitti")
    drives = [render_drive(CFG, seed, 12) for seed in (0, 1)]
    for i, d in enumerate(drives):
        write_sequence(root, i, d, VEHICLE_TYPES, CFG.max_depth)
    return root, drives


def test_odometry_round_trip(tree):
    """Poses, intrinsics, labels, depth and images read back equal to what was rendered, to the printed
    precision (poses %e: 7 significant digits; labels 2 decimals; depth 1/256 m)."""
    root, drives = tree
    for i, d in enumerate(drives):
        seq = read_sequence(root, i)
        assert len(seq["images"]) == 12
        assert np.allclose(seq["poses"], d["poses"], rtol=1e-6, atol=1e-6)
        assert np.allclose(seq["K"], d["K"], rtol=1e-12) and np.allclose(seq["P2"], d["P2"], rtol=1e-12)
        for k in ("P0", "P1", "P3"):
            assert np.allclose(seq["calib"][k], d[k], rtol=1e-12)
        assert seq["calib"]["Tr"].shape == (3, 4)
        assert np.allclose(seq["times"], np.arange(12) * CFG.dt)
        labelled = 0
        for t in range(12):
            assert np.array_equal(np.asarray(Image.open(seq["images"][t])), d["rgb"][t])
            got, want = seq["labels"][t], frame_objects(d, t)
            assert list(got["type"]) == [VEHICLE_TYPES[k] for k in want["obj_type"]]
            assert np.array_equal(got["occluded"], want["occluded"])
            for k in ("truncated", "alpha", "box2d", "dims", "loc", "rotation_y"):
                assert np.allclose(got[k], want[k], atol=0.005 + 1e-9), k
            labelled += len(got["type"])
            depth = read_depth(seq["depth"][t])
            sky = d["depth"][t] >= CFG.max_depth
            assert np.all(depth[sky] == 0)
            assert np.allclose(depth[~sky], d["depth"][t][~sky], atol=1 / 512 + 1e-6)
        assert labelled > 10


def test_kitti_label_lines_have_15_columns(tree):
    root, _ = tree
    lines = [ln for p in sorted((root / "sequences" / "00" / "label_2").glob("*.txt"))
             for ln in p.read_text().splitlines()]
    assert lines and all(len(ln.split()) == 15 and ln.split()[0] in VEHICLE_TYPES for ln in lines)
    poses = (root / "poses" / "00.txt").read_text().splitlines()
    assert len(poses) == 12 and all(len(ln.split()) == 12 for ln in poses)


def _oxts_tree(root, lat0, lon0, steps, yaw, with_calib=True):
    """A hand-written raw drive: the vehicle heads north (yaw = pi/2, east = 0) `steps[i]` metres from the start."""
    date = root / "2011_09_26"
    drive = date / "2011_09_26_drive_0001_sync"
    (drive / "image_02" / "data").mkdir(parents=True)
    (drive / "oxts" / "data").mkdir(parents=True)
    for i, (north, y) in enumerate(zip(steps, yaw)):
        Image.fromarray(np.full((8, 24, 3), 10 * i, np.uint8)).save(drive / "image_02" / "data" / f"{i:010d}.png")
        rec = np.zeros(30)
        rec[:6] = [lat0 + np.degrees(north / EARTH_RADIUS), lon0, 100.0, 0.0, 0.0, y]
        (drive / "oxts" / "data" / f"{i:010d}.txt").write_text(" ".join(f"{v:.12f}" for v in rec) + "\n")
    (date / "calib_cam_to_cam.txt").write_text(
        "calib_time: 09-Jan-2012 13:57:47\nR_rect_00: 1 0 0 0 1 0 0 0 1\n"
        "P_rect_02: 721.5 0 609.6 44.86 0 721.5 172.9 0.2164 0 0 1 0.002746\n")
    if with_calib:
        (date / "calib_imu_to_velo.txt").write_text("calib_time: x\nR: 1 0 0 0 1 0 0 0 1\nT: -0.81 0.32 -0.80\n")
        (date / "calib_velo_to_cam.txt").write_text("calib_time: x\nR: 0 -1 0 0 0 -1 1 0 0\nT: 0 -0.08 -0.27\n")
    return drive


def test_raw_oxts_poses_follow_a_known_motion(tmp_path):
    """Driving 0, 1.5, 3, ... m north at 49 deg latitude gives IMU translations (d, 0, 0) (x forward) and camera
    translations (0, 0, d) (z forward); a yaw that falls (a right turn) turns the camera towards +x."""
    steps = np.arange(5) * 1.5
    drive = _oxts_tree(tmp_path, 49.0, 8.4, steps, np.full(5, np.pi / 2))
    raw = read_raw_drive(drive)
    assert len(raw["images"]) == 5 and raw["oxts"].shape == (5, 30)
    assert np.allclose(raw["imu_poses"][:, :3, 3], np.c_[steps, np.zeros(5), np.zeros(5)], atol=1e-3)
    assert np.allclose(raw["poses"][:, :3, 3], np.c_[np.zeros(5), np.zeros(5), steps], atol=1e-3)
    assert np.allclose(raw["poses"][:, :3, :3], np.eye(3), atol=1e-9)
    assert np.allclose(raw["K"], [[721.5, 0, 609.6], [0, 721.5, 172.9], [0, 0, 1]])
    turn = _oxts_tree(tmp_path / "turn", 49.0, 8.4, np.zeros(3), np.pi / 2 - np.array([0.0, 0.1, 0.2]))
    R = read_raw_drive(turn)["poses"][2, :3, :3]
    assert np.allclose(R[:, 2], [np.sin(0.2), 0, np.cos(0.2)], atol=1e-9)  # camera z rotated towards +x
    bare = _oxts_tree(tmp_path / "bare", 49.0, 8.4, steps, np.full(5, np.pi / 2), with_calib=False)
    assert read_raw_drive(bare)["poses"] is None


def test_clips_from_both_layouts(tree, tmp_path):
    root, _ = tree
    assert [p.parent.name for p in image_folders(root)] == ["00", "01"]
    clips = load_kitti_clips(root, 16, 3, 5)  # 12 frames a sequence: two clips of 5 each
    assert clips.shape == (4, 3, 5, 16, 16) and clips.dtype.is_floating_point is False
    drive = _oxts_tree(tmp_path, 49.0, 8.4, np.arange(3.0), np.full(3, np.pi / 2))
    raw = load_kitti_clips(tmp_path, 8, 1, 4)  # a root of dates; 3 frames padded to one clip of 4
    assert raw.shape == (1, 1, 4, 8, 8) and raw[0, 0, 3].equal(raw[0, 0, 2])
    assert image_folders(drive.parent) == image_folders(tmp_path)
    with pytest.raises(ValueError, match="no KITTI frames"):
        image_folders(tmp_path / "2011_09_26" / "2011_09_26_drive_0001_sync" / "oxts")


def test_vjepa_trains_on_a_generated_tree(tmp_path):
    """`openjepa data driving` writes a tree that `data.dataset=kitti` trains the smoke-sized vjepa on."""
    root = tmp_path / "tree"
    assert main(["data", "driving", "--sequences", "2", "--frames", "16", "--out", str(root),
                 "--env.vehicles=4"]) == 0
    cfg = build_config({}, [
        *SMOKE_SIZE, "--train.method=vjepa", "--train.precision=fp32", "--train.threads=1", "--data.dataset=kitti", f"--data.path={root}", "--data.img_size=16",
        "--data.channels=3", "--data.batch_size=4", "--model.patch_size=4", "--video.frames=8",
        "--video.context_frames=4", "--video.clip_frames=8", "--train.steps=3", "--train.log_every=1",
        "--train.monitor_every=0", "--train.ckpt_every=3", "--train.progress=false"])
    check_config(cfg)
    summary = train(cfg, tmp_path / "run", log=lambda *a: None)
    assert summary["finished"] and np.isfinite(summary["final_loss"])


def test_kitti_dataset_needs_a_path_and_a_video_method():
    from openjepa.config import ConfigError

    with pytest.raises(ConfigError, match="data.path"):
        build_config({}, ["--train.method=vjepa", "--data.dataset=kitti"])
    with pytest.raises(ConfigError, match="data.dataset"):
        check_config(build_config({}, ["--data.dataset=kitti", "--data.path=x"]))  # ijepa trains on images


def test_writer_refuses_a_sequence_that_holds_frames(tree):
    root, drives = tree
    with pytest.raises(FileExistsError, match="sequences/00"):
        write_sequence(root, 0, drives[0], VEHICLE_TYPES, CFG.max_depth)
    assert main(["data", "driving", "--sequences", "1", "--frames", "2", "--out", str(root)]) == 2
