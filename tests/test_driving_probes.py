"""Driving probes (eval/driving.py) and `openjepa bench driving` (bench/driving.py): metric functions against
hand-computed values, probes near perfect on oracle features and near chance on noise, the suite end to end on a
tiny budget."""

import json

import numpy as np
import pytest
import torch
import yaml

import openjepa.bench.driving as bd
from openjepa.cli import main
from openjepa.data.driving import DrivingConfig, render_drive
from openjepa.data.driving.violations import KINDS
from openjepa.eval import driving as dp
from openjepa.train.run import find_preset


def test_depth_metrics_by_hand():
    gt = np.array([1.0, 4.0, 80.0, 0.0, 50.0])  # 80 (sky, max_depth) and 0 (none) are not valid pixels
    pred = np.array([2.0, 4.0, 7.0, 7.0, 100.0])  # 100 is clipped to 80
    m = dp.depth_metrics(pred, gt, 80.0)
    assert m["abs_rel"] == pytest.approx((1.0 + 0.0 + 30 / 50) / 3)
    assert m["sq_rel"] == pytest.approx((1.0 + 0.0 + 900 / 50) / 3)
    assert m["rmse"] == pytest.approx(np.sqrt((1.0 + 0.0 + 900) / 3))
    assert m["delta1"] == pytest.approx(1 / 3)  # 2/1 and 80/50 miss, 4/4 hits


def straight(n: int, step: float = 1.0) -> np.ndarray:
    return dp.integrate(np.tile([0.0, step, 0.0], (n, 1)))


def test_odometry_errors_on_known_trajectories():
    gt = straight(300)
    assert dp.odometry_errors(gt, gt)["t_err"] == pytest.approx(0.0, abs=1e-9)
    e = dp.odometry_errors(gt, straight(300, 1.1))  # 10% too far every step
    assert e["t_err"] == pytest.approx(10.0) and e["r_err"] == pytest.approx(0.0, abs=1e-6)
    assert e["stretches"] == sum(len(range(0, 301 - int(L), 10)) for L in dp.LENGTHS)
    drift = dp.integrate(np.tile([0.0, 1.0, 0.001], (300, 1)))  # 0.001 rad too much yaw per metre
    assert dp.odometry_errors(gt, drift)["r_err"] == pytest.approx(np.degrees(0.001) * 100, rel=1e-6)
    assert np.isnan(dp.odometry_errors(straight(20), straight(20))["t_err"])  # shorter than every length


def test_relative_motion_integrates_back_to_the_poses():
    d = render_drive(DrivingConfig(height=16, width=16), 1, 60)  # turns by 0.5 rad
    idx = np.arange(0, 60, 3)
    motion = dp.relative_motion(d["poses"][idx], np.arange(len(idx) - 1), np.arange(1, len(idx)))
    assert np.allclose(dp.integrate(motion, d["poses"][0]), d["poses"][idx], atol=1e-9)
    assert (motion[:, 1] > 0.5).all()  # driving forward along z at >= 6 m/s over 0.3 s


def test_average_precision_by_hand():
    big = lambda x: np.array([x, 10.0, x + 10, 30.0])  # noqa: E731 (20 px tall: every level at half KITTI focal)
    gts = [{"box2d": np.stack([big(0), big(40)]), "occluded": np.array([0, 0]), "truncated": np.array([0.0, 0.0])},
           {"box2d": big(0)[None], "occluded": np.array([0]), "truncated": np.array([0.0])}]
    dets = [(np.stack([big(0), big(20)]), np.array([0.9, 0.8])),  # a hit, then a false alarm
            (big(1)[None], np.array([0.7]))]  # a hit (IoU 9/11)
    # precision 1, 1/2, 2/3 at recall 1/3, 1/3, 2/3: R40 = (13 * 1 + 13 * 2/3) / 40
    assert dp.average_precision(dets, gts, "moderate", dp.KITTI_FOCAL / 2) == pytest.approx((13 + 13 * 2 / 3) / 40)
    # a detection on a box outside the level (occluded for easy), or one too small to count, changes nothing
    gts[0]["box2d"] = np.concatenate([gts[0]["box2d"], big(60)[None]])
    gts[0]["occluded"], gts[0]["truncated"] = np.array([0, 0, 2]), np.zeros(3)
    tiny = np.array([[80.0, 10.0, 85.0, 12.0]])
    dets[0] = (np.concatenate([dets[0][0], big(60)[None], tiny]), np.array([0.9, 0.8, 0.95, 0.99]))
    assert dp.average_precision(dets, gts, "easy", 40.0 / 0.5) == pytest.approx((13 + 13 * 2 / 3) / 40)
    # hard counts the occluded box (its detection scores highest): precision 1, 1, 2/3, 3/4 at recall 1/4 .. 3/4
    assert dp.average_precision(dets, gts, "hard", 40.0 / 0.5) == pytest.approx((20 * 1 + 10 * 3 / 4) / 40)
    assert np.isnan(dp.average_precision([(np.zeros((0, 4)), np.zeros(0))], [{"box2d": np.zeros((0, 4)),
                    "occluded": np.zeros(0), "truncated": np.zeros(0)}], "easy", dp.KITTI_FOCAL))


def test_nms_keeps_the_best_of_overlapping_boxes():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30.0]])
    assert dp.nms(boxes, np.array([0.5, 0.9, 0.1])).tolist() == [1, 2]


@pytest.fixture(scope="module")
def frames():
    """Depth maps of rendered frames (32 x 32, patches of 8): train, val, test."""
    cfg = DrivingConfig(height=32, width=32, focal=1.3)
    return [render_drive(cfg, s, 24)["depth"][::2] for s in (11, 12, 13)]


def test_depth_probe_oracle_and_noise(frames):
    p, grid = 8, (4, 4)
    tok = [dp.patch_log_depth(d, p, 80.0).float().view(len(d), 16, p * p) for d in frames]  # the truth as tokens
    head, _ = dp.fit_depth(tok[0], frames[0], tok[1], frames[1], grid, p, 80.0)
    oracle = dp.depth_metrics(dp.predict_depth(head, tok[2], grid, p), frames[2])
    assert oracle["abs_rel"] < 0.03 and oracle["delta1"] > 0.98  # ridge shrinkage on 12 frames keeps it off 0
    g = torch.Generator().manual_seed(0)
    noise = [torch.randn(t.shape, generator=g) for t in tok]
    head, _ = dp.fit_depth(noise[0], frames[0], noise[1], frames[1], grid, p, 80.0)
    chance = dp.depth_metrics(dp.predict_depth(head, noise[2], grid, p), frames[2])
    assert chance["abs_rel"] > 5 * oracle["abs_rel"] and chance["delta1"] < 0.9


def test_motion_probe_oracle_and_noise():
    cfg = DrivingConfig(height=16, width=16)
    idx = np.arange(0, 400, 2)
    sets = []
    for seed in (1, 2, 3):
        poses = render_drive(cfg, seed, 400)["poses"][idx] if seed == 3 else \
            render_drive(cfg, seed, 200)["poses"][idx[:100]]
        a, b = np.arange(len(poses) - 1), np.arange(1, len(poses))
        sets.append((poses, dp.relative_motion(poses, a, b)))
    g = torch.Generator().manual_seed(0)
    for kind in ("oracle", "noise"):
        xs = [torch.from_numpy(y).float() if kind == "oracle" else torch.randn(len(y), 8, generator=g)
              for _, y in sets]
        head, _ = dp.fit_motion(xs[0], sets[0][1], xs[1], sets[1][1])
        poses, _ = sets[2]
        err = dp.odometry_errors(poses, dp.integrate(head(xs[2]).numpy(), poses[0]), step=5)
        if kind == "oracle":
            assert err["t_err"] < 0.5 and err["r_err"] < 0.5
        else:
            assert err["t_err"] > 3.0


def synthetic_boxes(n: int, rng: np.random.Generator, p: int = 8, grid: int = 4) -> list[np.ndarray]:
    """Per frame 1-3 boxes 6-14 px tall, centres in distinct patches."""
    out = []
    for _ in range(n):
        cells = rng.choice(grid * grid, rng.integers(1, 4), replace=False)
        rows = []
        for c in cells:
            cy, cx = (c // grid + rng.uniform(0.2, 0.8)) * p - 0.5, (c % grid + rng.uniform(0.2, 0.8)) * p - 0.5
            h, w = rng.uniform(6, 14), rng.uniform(6, 14)
            rows.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
        out.append(np.array(rows))
    return out


def test_detection_probe_oracle_and_noise():
    rng = np.random.default_rng(0)
    p, grid, focal = 8, (4, 4), dp.KITTI_FOCAL / 10  # least heights 4 / 2.5 px
    boxes = [synthetic_boxes(n, rng) for n in (80, 20, 20)]
    gts = [[{"box2d": b, "occluded": np.zeros(len(b)), "truncated": np.zeros(len(b))} for b in bs] for bs in boxes]
    tok = []
    for bs in boxes:  # the targets themselves as tokens
        obj, box = dp.detection_targets(bs, grid, p)
        tok.append(torch.cat([obj[:, None], box.float()], 1).view(len(bs), 16, 5))
    det, _ = dp.fit_detector(tok[0], boxes[0], tok[1], gts[1], grid, p, focal)
    assert dp.average_precision(dp.detect(det, tok[2], grid, p), gts[2], "moderate", focal) > 0.95
    g = torch.Generator().manual_seed(0)
    noise = [torch.randn(t.shape, generator=g) for t in tok]
    det, _ = dp.fit_detector(noise[0], boxes[0], noise[1], gts[1], grid, p, focal)
    assert dp.average_precision(dp.detect(det, noise[2], grid, p), gts[2], "moderate", focal) < 0.3


def test_the_pixel_preset_is_the_jepa_presets_twin():
    j = yaml.safe_load(find_preset("vjepa_driving_cpu").read_text())
    px = yaml.safe_load(find_preset("vpixel_driving_cpu").read_text())
    assert j["train"].pop("method") == "vjepa" and px["train"].pop("method") == "vpixel"
    assert j == px


TINY = {"drives": 2, "drive_frames": 8, "probe_drives": 1, "val_drives": 1, "test_drives": 1,
        "probe_frames": 16, "test_frames": 40, "stride": 2, "seeds": 2, "surprise_quads": 1, "surprise_frames": 16,
        "overrides": ["--data.img_size=16", "--data.batch_size=4", "--model.patch_size=4", "--model.dim=16",
                      "--model.depth=1", "--model.heads=2", "--model.pred_dim=16", "--model.pred_depth=1",
                      "--model.pred_heads=2", "--video.frames=4", "--video.context_frames=2",
                      "--video.clip_frames=4", "--train.steps=1", "--train.monitor_every=0",
                      "--train.precision=fp32", "--train.ckpt_every=1"]}


def test_suite_rows(tmp_path, monkeypatch):
    monkeypatch.setattr(bd, "QUICK", TINY)
    monkeypatch.setattr(dp, "LAMBDAS", (1e-2, 1.0))
    monkeypatch.setattr(dp, "LENGTHS", (5.0, 10.0))
    out = tmp_path / "driving.json"
    assert main(["bench", "driving", "--quick", "--out", str(out), "--workdir", str(tmp_path / "work")]) == 0
    result = json.loads(out.read_text())
    assert result["suite"] == "driving" and result["git_sha"] and result["machine"] and result["configs"]["pixel"]
    rows = [r for r in result["rows"] if r["probe"] != "surprise"]
    assert {(r["model"], r["probe"]) for r in rows} == {(m, p) for m in ("jepa", "pixel", "untrained", "raw_pixels")
                                                        for p in ("depth", "ego_motion", "detection")}
    surprise = [r for r in result["rows"] if r["probe"] == "surprise"]
    assert {(r["model"], r["violation"]) for r in surprise} == {(m, k) for m in ("jepa", "pixel", "untrained",
                                                                                 "copy_last") for k in KINDS}
    for r in surprise:
        seeds = 1 if r["model"] == "copy_last" else 2
        assert r["seeds"] == seeds and r["n_quads"] == 1 and len(r["relative_accuracy_per_seed"]) == seeds
        assert all(v in (0.0, 0.5, 1.0) for v in r["relative_accuracy_per_seed"])
        assert r["relative_accuracy"] == pytest.approx(np.mean(r["relative_accuracy_per_seed"]))
        assert (r["relative_accuracy_ci95"] is None) == (seeds == 1)
        assert len(r["quad_scores"]) == seeds and all(len(q) == 1 and len(q[0]) == 4 for q in r["quad_scores"])
    for r in rows:
        if r["probe"] == "depth":
            assert r["abs_rel"] > 0 and 0 <= r["delta1"] <= 1 and r["rmse"] > 0
        if r["probe"] == "ego_motion":
            assert r["t_err"] >= 0 and min(r["stretches"]) > 0
        if r["probe"] == "detection":
            assert all(np.isnan(r[f"ap_{lvl}"]) or 0 <= r[f"ap_{lvl}"] <= 1 for lvl in dp.DIFFICULTY)
        seeds = 1 if r["model"] == "raw_pixels" else 2
        assert r["seeds"] == seeds
        key = {"depth": "abs_rel", "ego_motion": "t_err", "detection": "ap_easy"}[r["probe"]]
        assert len(r[f"{key}_per_seed"]) == seeds and (r[f"{key}_ci95"] is None) == (seeds == 1 or np.isnan(r[key]))
        if r["model"] in ("jepa", "pixel"):
            assert [c.split("/")[-3] for c in r["checkpoints"]] == ["seed0", "seed1"]
    assert all((tmp_path / f).exists() for f in [result["figures"][0]]) and result["figures"][0].endswith(".png")
    s = result["seeds"]
    assert len({s["pretrain"], s["probe_train"], s["probe_val"], s["test"], s["surprise"]}) == 5


def test_seed_intervals_use_the_t_quantile_of_their_degrees_of_freedom():
    from openjepa.bench.driving import _ci95

    for n, t in ((2, 12.706), (6, 2.571), (8, 2.365), (14, 2.179), (400, 1.980)):
        v = np.arange(n, dtype=np.float64)
        lo, hi = _ci95(list(v))
        assert abs((hi - lo) / 2 - t * v.std(ddof=1) / np.sqrt(n)) < 1e-9, n
    assert _ci95([1.0]) is None
