"""`openjepa bench driving`: pretrain a V-JEPA and its pixel twin on generated drives, then probe frozen features of
held-out drives for metric depth, ego-motion and vehicle detection (eval/driving.py) against the renderer's truth.

Data (data/driving, all square frames of data.img_size px at focal FOCAL x width, see docs/driving.md for why):
    pretraining   `drives` drives of `drive_frames` frames, seeds PRETRAIN_SEED + i, written as a KITTI odometry
                  tree under <workdir>/driving[_quick]/kitti and read back by data.dataset=kitti
    probe train   `probe_drives` drives, seeds PROBE_SEED + i      (the probes' fit)
    probe val     `val_drives` drives, seeds VAL_SEED + i          (the probes' L2 strength)
    test          `test_drives` drives of `test_frames`, seeds TEST_SEED + i (scored only)
    surprise      `surprise_quads` quadruplets per violation, drives of seeds SURPRISE_SEED + i (scored only)
The five seed ranges are disjoint. Probe frames are every `stride`-th frame from video.frames - 1 on; a frame's
features are the tokens of the encoder's last time slice on the video.frames frames ending at it (the clip
length it trained on), (hw, D); raw pixels are that slice's pixel tubelets, (hw, C*t*p*p).

Models (rows' `model`): `jepa` (vjepa_driving_cpu) and `pixel` (vpixel_driving_cpu), each pretrained at
`seeds` training seeds (train.seed, + 1, ...); `untrained` (the jepa architecture at the same number of random
inits); `raw_pixels`. Rows, one per model and probe:
    depth      abs_rel, sq_rel, rmse, delta1 (Monodepth2 conventions, no median scaling)
    ego_motion t_err (%), r_err (deg / 100 m) (KITTI odometry style over the test drives), step_rmse of (dx, dz,
               dyaw)
    detection  ap_easy, ap_moderate, ap_hard (AP@0.5, R40, KITTI levels with heights scaled by our focal)
    surprise   one row per violation (`violation`: teleport, vanish, pass_through; data/driving/violations.py):
               relative_accuracy over `surprise_quads` matched quadruplets of `surprise_frames`-frame clips (seeds
               SURPRISE_SEED + i): the share whose two impossible clips are together more surprising (mean window
               prediction error, eval/surprise.py) than the two possible ones, ties 1/2; `relative_accuracy_ensemble`
               scores the mean of the seeds' surprises (eval/surprise.Ensemble); `failures` (quadruplet seeds
               wrong or tied) and `quad_scores` (A, B, C, D) per seed. `copy_last` (no learning: every future frame
               is the last context frame, physics_scoring.CopyLast) takes raw pixels' place in these rows.
Each metric is the mean over seeds, with `<metric>_per_seed` values and a 95% t-interval `<metric>_ci95` when
there are >= 2 seeds; `lambda` (the probe's L2 strength chosen on val) and `stretches` are lists per seed.
`quick` uses 1 seed and a tiny budget: a smoke run of the pipeline, not a result. A figure (a test frame, its
true and predicted depth, true and predicted boxes of the jepa model's first seed) goes beside `out`.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from openjepa.bench.physics_scoring import CopyLast, quad_outcomes, surprise_table
from openjepa.config import load_config
from openjepa.data.driving import DrivingConfig, frame_objects, render_drive
from openjepa.data.driving.violations import KINDS, test_quadruplets
from openjepa.data.kitti import write_drives
from openjepa.data.transforms import normalize
from openjepa.eval import driving as probes
from openjepa.methods import METHODS
from openjepa.models.video import patchify3d
from openjepa.train.checkpoint import load_method
from openjepa.train.loop import stop_if_unfinished, train
from openjepa.train.run import find_preset, provenance
from openjepa.validate import resolve_config

PRESETS = {"jepa": "vjepa_driving_cpu", "pixel": "vpixel_driving_cpu"}
FOCAL = 1.3  # focal length / image width of the bench's square camera (KITTI's 0.581 of a 3:1 frame; see docs)
PRETRAIN_SEED, PROBE_SEED, VAL_SEED, TEST_SEED, SURPRISE_SEED = 0, 1_000_000, 2_000_000, 3_000_000, 4_000_000
FULL = {"drives": 96, "drive_frames": 160, "probe_drives": 12, "val_drives": 3, "test_drives": 4,
        "probe_frames": 200, "test_frames": 400, "stride": 2, "seeds": 2, "surprise_quads": 40,
        "surprise_frames": 24, "overrides": []}
QUICK = {"drives": 12, "drive_frames": 64, "probe_drives": 3, "val_drives": 1, "test_drives": 1,
         "probe_frames": 80, "test_frames": 240, "stride": 2, "seeds": 1, "surprise_quads": 4, "surprise_frames": 24,
         "overrides": ["--train.steps=60", "--data.batch_size=8", "--model.dim=64", "--model.depth=2",
                       "--model.heads=2", "--model.pred_dim=32", "--model.pred_depth=2", "--model.pred_heads=2",
                       "--train.monitor_every=0", "--train.ckpt_every=60"]}


def camera(cfg) -> DrivingConfig:
    """The bench's square camera for a model config: data.img_size px a side."""
    return DrivingConfig(height=cfg.data.img_size, width=cfg.data.img_size, focal=FOCAL)


def probe_frames(n_frames: int, window: int, stride: int) -> np.ndarray:
    """The frames of a drive that get features: every stride-th from window - 1 (a full clip ends there)."""
    return np.arange(window - 1, n_frames, stride)


@torch.no_grad()
def frame_tokens(encoder, rgb: np.ndarray, frames: np.ndarray, window: int, hw: int, batch: int = 32) -> torch.Tensor:
    """Tokens of the last time slice of `encoder` on the `window` frames ending at each of `frames` of a drive:
    rgb uint8 (T, H, W, 3) -> (len(frames), hw, D)."""
    x = torch.from_numpy(rgb).permute(3, 0, 1, 2)  # (C, T, H, W)
    out = []
    for i in range(0, len(frames), batch):
        clips = torch.stack([x[:, t - window + 1:t + 1] for t in frames[i:i + batch]])  # (b, C, window, H, W)
        out.append(encoder(normalize(clips)).float()[:, -hw:])
    return torch.cat(out)


def pixel_tokens(rgb: np.ndarray, frames: np.ndarray, tubelet: int, patch: int) -> torch.Tensor:
    """Raw pixels as tokens: the pixel tubelets of the tubelet frames ending at each frame, (len(frames), hw,
    C*t*p*p)."""
    x = torch.from_numpy(rgb).permute(3, 0, 1, 2)
    clips = torch.stack([x[:, t - tubelet + 1:t + 1] for t in frames])
    return patchify3d(normalize(clips), tubelet, patch).float()


def render_split(cam: DrivingConfig, seed0: int, n: int, frames: int, window: int, stride: int) -> list[dict]:
    """n drives (seeds seed0 + i) with the probe frames' truth: rgb, frames, depth, poses, boxes."""
    drives = []
    for i in range(n):
        d = render_drive(cam, seed0 + i, frames)
        idx = probe_frames(frames, window, stride)
        gts = [{k: o[k] for k in ("box2d", "occluded", "truncated")} for o in (frame_objects(d, t) for t in idx)]
        drives.append({"seed": seed0 + i, "rgb": d["rgb"], "frames": idx, "depth": d["depth"][idx],
                       "poses": d["poses"][idx], "gts": gts})
    return drives


def _pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.arange(n - 1), np.arange(1, n)


def motion_set(toks: list[torch.Tensor], drives: list[dict], grid) -> tuple[torch.Tensor, np.ndarray]:
    """Pair features and true relative motions of consecutive probe frames of each drive."""
    xs, ys = [], []
    for tok, d in zip(toks, drives):
        a, b = _pairs(len(d["frames"]))
        xs.append(probes.pair_features(tok, grid, a, b))
        ys.append(probes.relative_motion(d["poses"], a, b))
    return torch.cat(xs), np.concatenate(ys)


def probe_model(toks: dict[str, list[torch.Tensor]], splits: dict[str, list[dict]], grid, p: int, cam: DrivingConfig,
                stride: int) -> tuple[dict[str, dict], dict]:
    """Fit the three probes on train tokens (L2 on val) and score the test drives -> ({probe: metrics}, the
    first test frame's predictions for the figure)."""
    cat = lambda split: torch.cat(toks[split])  # noqa: E731
    depth = {s: np.concatenate([d["depth"] for d in splits[s]]) for s in splits}
    gts = {s: [g for d in splits[s] for g in d["gts"]] for s in splits}
    focal = cam.focal * cam.width
    out = {}

    head, lam = probes.fit_depth(cat("train"), depth["train"], cat("val"), depth["val"], grid, p, cam.max_depth)
    pred_depth = probes.predict_depth(head, cat("test"), grid, p)
    out["depth"] = {**probes.depth_metrics(pred_depth, depth["test"], cam.max_depth), "lambda": lam}

    xm, ym = motion_set(toks["train"], splits["train"], grid)
    vxm, vym = motion_set(toks["val"], splits["val"], grid)
    mhead, lam = probes.fit_motion(xm, ym, vxm, vym)
    errs, sq = [], []
    for tok, d in zip(toks["test"], splits["test"]):
        a, b = _pairs(len(d["frames"]))
        pred = mhead(probes.pair_features(tok, grid, a, b)).numpy()
        sq.append((pred - probes.relative_motion(d["poses"], a, b)) ** 2)
        traj = probes.integrate(pred, d["poses"][0])
        errs.append(probes.odometry_errors(d["poses"], traj, step=max(1, round(1.0 / (cam.dt * stride)))))
    n = sum(e["stretches"] for e in errs)  # every stretch of every test drive weighs the same (NaN: none)

    def mean(k: str) -> float:
        return float(sum(e[k] * e["stretches"] for e in errs if e["stretches"]) / n) if n else float("nan")

    out["ego_motion"] = {"t_err": mean("t_err"), "r_err": mean("r_err"), "stretches": n,
                         "step_rmse": np.sqrt(np.concatenate(sq).mean(0)).round(5).tolist(), "lambda": lam}

    boxes = [g["box2d"] for g in gts["train"]]
    det, lam = probes.fit_detector(cat("train"), boxes, cat("val"), gts["val"], grid, p, focal)
    dets = probes.detect(det, cat("test"), grid, p)
    out["detection"] = {f"ap_{lvl}": probes.average_precision(dets, gts["test"], lvl, focal)
                        for lvl in probes.DIFFICULTY} | {"lambda": lam}
    return out, {"depth": pred_depth[0], "boxes": dets[0]}


# Student t 0.975 quantiles by degrees of freedom (above 120 the 120 value: at most 1% wider than the limit 1.960)
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
       12: 2.179, 15: 2.131, 20: 2.086, 30: 2.042, 60: 2.000, 120: 1.980}


def _ci95(values: list[float]) -> list[float] | None:
    """95% t-interval of the mean over seeds (None for one seed)."""
    v = np.asarray(values, dtype=np.float64)
    if len(v) < 2 or np.isnan(v).any():
        return None
    df = len(v) - 1  # the t quantile of the largest tabulated df <= df (wider, never narrower, in between)
    t = T95[max(k for k in T95 if k <= df)]
    half = t * v.std(ddof=1) / np.sqrt(len(v))
    return [float(v.mean() - half), float(v.mean() + half)]


def aggregate(model: str, per_seed: list[dict[str, dict]]) -> list[dict]:
    """One row per probe: each metric's mean over seeds, per_seed values and (>= 2 seeds) its ci95."""
    rows = []
    for probe in per_seed[0]:
        row: dict[str, Any] = {"model": model, "probe": probe, "seeds": len(per_seed)}
        for k, v in per_seed[0][probe].items():
            vals = [s[probe][k] for s in per_seed]
            if k == "step_rmse":
                row[k] = np.mean(vals, 0).round(5).tolist()
            elif k in ("lambda", "stretches"):  # per seed
                row[k] = vals
            else:
                row[k] = float(np.mean(vals))
                row[f"{k}_per_seed"] = vals
                row[f"{k}_ci95"] = _ci95(vals)
        rows.append(row)
    return rows


def score_surprise(method, quads) -> dict[str, dict]:
    """Per violation kind: relative accuracy of `method` (anything with cfg and future_error, see eval/surprise.py)
    on the quadruplets of that kind, the seeds it got wrong or tied (`failures`) and the (A, B, C, D) surprises."""
    table = surprise_table(method, quads, "cpu")
    out = {}
    for kind in KINDS:
        sel = [(q, [v["surprise_mean"] for v in r]) for q, r in zip(quads, table) if q.kind == kind]
        if sel:
            outcome = quad_outcomes([sc for _, sc in sel])
            out[kind] = {"relative_accuracy": float(outcome.mean()), "quad_scores": [sc for _, sc in sel],
                         "failures": [q.seed for (q, _), o in zip(sel, outcome) if o < 1]}
    return out


def surprise_rows(model: str, per_seed: list[dict[str, dict]]) -> list[dict]:
    """One row per violation kind from score_surprise results per seed: the mean relative accuracy, per seed,
    ci95, and the ensemble's (the seeds' surprises averaged, as eval/surprise.Ensemble scores)."""
    rows = []
    for kind in per_seed[0]:
        vals = [s[kind]["relative_accuracy"] for s in per_seed]
        ens = np.mean([s[kind]["quad_scores"] for s in per_seed], 0)  # (n, 4)
        rows.append({"model": model, "probe": "surprise", "violation": kind, "seeds": len(per_seed),
                     "n_quads": len(ens), "relative_accuracy": float(np.mean(vals)),
                     "relative_accuracy_per_seed": vals, "relative_accuracy_ci95": _ci95(vals),
                     "relative_accuracy_ensemble": float(quad_outcomes(ens).mean()),
                     "failures": [s[kind]["failures"] for s in per_seed],
                     "quad_scores": [s[kind]["quad_scores"] for s in per_seed]})
    return rows


def figure(drive: dict, pred: dict, cam: DrivingConfig, path: Path, title: str) -> str:
    """A test frame with true boxes, predicted boxes, true and predicted depth, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = drive["frames"][0]
    rgb = drive["rgb"][t]
    fig, ax = plt.subplots(1, 4, figsize=(12, 3.4))
    for a, name, boxes, colour in ((ax[0], "ground truth boxes", drive["gts"][0]["box2d"], "lime"),
                                   (ax[1], "predicted boxes (score >= 0.3)", pred["boxes"][0][pred["boxes"][1] >= 0.3],
                                    "red")):
        a.imshow(rgb)
        for b in boxes:
            a.add_patch(plt.Rectangle((b[0], b[1]), b[2] - b[0], b[3] - b[1], fill=False, color=colour, lw=1))
        a.set_title(name, fontsize=9)
    gt = np.where(drive["depth"][0] < cam.max_depth, drive["depth"][0], np.nan)
    for a, name, d in ((ax[2], "true depth (m; sky: none)", gt), (ax[3], "predicted depth (m)", pred["depth"])):
        im = a.imshow(d, cmap="magma_r", vmin=0, vmax=cam.max_depth)
        a.set_title(name, fontsize=9)
    fig.colorbar(im, ax=ax[2:].tolist(), fraction=0.03)
    for a in ax:
        a.set_xticks([])
        a.set_yticks([])
    fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return str(path)


def run_driving(quick: bool, workdir: Path, overrides: list[str], out: Path) -> dict[str, Any]:
    b = QUICK if quick else FULL
    suite_dir = Path(workdir) / ("driving_quick" if quick else "driving")
    if suite_dir.exists():
        shutil.rmtree(suite_dir)
    meta = provenance()
    base = ["--train.progress=false", "--train.device=cpu", *b["overrides"], *overrides]
    cfg0 = resolve_config(load_config(find_preset(PRESETS["jepa"]), base))
    cam = camera(cfg0)
    window, tubelet, p = cfg0.video.frames, cfg0.video.tubelet, cfg0.model.patch_size
    grid = (cfg0.data.img_size // p, cfg0.data.img_size // p)
    hw = grid[0] * grid[1]

    t0 = time.time()
    root = write_drives(suite_dir / "kitti", b["drives"], b["drive_frames"], cam, seed=PRETRAIN_SEED)
    splits = {"train": render_split(cam, PROBE_SEED, b["probe_drives"], b["probe_frames"], window, b["stride"]),
              "val": render_split(cam, VAL_SEED, b["val_drives"], b["probe_frames"], window, b["stride"]),
              "test": render_split(cam, TEST_SEED, b["test_drives"], b["test_frames"], window, b["stride"])}
    quads = test_quadruplets(b["surprise_quads"], cam, b["surprise_frames"], seed=SURPRISE_SEED)
    data_seconds = round(time.time() - t0, 1)
    print(f"== bench driving: {b['drives']} pretraining drives written to {root}, probe drives and "
          f"{len(quads)} surprise quadruplets rendered ({data_seconds}s)")

    configs, per_seed, train_info, fig_pred = {}, {}, {}, None
    methods: dict[str, list] = {}
    for name, preset in PRESETS.items():
        seed0 = load_config(find_preset(preset), base).train.seed
        methods[name], train_info[name] = [], {"train_seconds": [], "checkpoints": []}
        for seed in range(seed0, seed0 + b["seeds"]):
            cfg = resolve_config(load_config(find_preset(preset), base + [f"--data.path={root}",
                                                                         f"--train.seed={seed}"]))
            configs.setdefault(name, cfg.to_dict())
            run_dir = suite_dir / name / f"seed{seed}"
            print(f"== bench driving: training {name} seed {seed} ({cfg.train.method}, {cfg.train.steps} steps)")
            t1 = time.time()
            stop_if_unfinished(train(cfg, run_dir), f"bench driving: {name} seed {seed}")
            train_info[name]["train_seconds"].append(round(time.time() - t1, 1))
            ckpt = run_dir / "checkpoints" / "last.pt"
            train_info[name]["checkpoints"].append(str(ckpt))
            methods[name].append(load_method(ckpt)[0].eval())
    methods["untrained"] = []
    for k in range(b["seeds"]):
        torch.manual_seed(1000 + k)
        methods["untrained"].append(METHODS["vjepa"](cfg0).eval())
    encoders = {name: [m.eval_encoder() for m in ms] for name, ms in methods.items()}

    t0 = time.time()
    rows = []
    feats = {name: [lambda d, e=e: frame_tokens(e, d["rgb"], d["frames"], window, hw) for e in encs]
             for name, encs in encoders.items()}
    feats["raw_pixels"] = [lambda d: pixel_tokens(d["rgb"], d["frames"], tubelet, p)]
    for name, fs in feats.items():
        per_seed[name] = []
        for i, feat in enumerate(fs):
            print(f"== bench driving: probing {name} ({i + 1}/{len(fs)})")
            toks = {s: [feat(d) for d in ds] for s, ds in splits.items()}
            got, pred = probe_model(toks, splits, grid, p, cam, b["stride"])
            per_seed[name].append(got)
            if name == "jepa" and i == 0:
                fig_pred = pred
        for r in aggregate(name, per_seed[name]):
            rows.append(r | ({"train_seconds": train_info[name]["train_seconds"],
                              "checkpoints": train_info[name]["checkpoints"]} if name in train_info else {}))
    probe_seconds = round(time.time() - t0, 1)

    t0 = time.time()
    for name, ms in [*methods.items(), ("copy_last", [CopyLast(cfg0)])]:
        print(f"== bench driving: surprise of {name} on {len(quads)} quadruplets ({len(ms)} seed(s))")
        for r in surprise_rows(name, [score_surprise(m, quads) for m in ms]):
            rows.append(r | ({"train_seconds": train_info[name]["train_seconds"],
                              "checkpoints": train_info[name]["checkpoints"]} if name in train_info else {}))
    surprise_seconds = round(time.time() - t0, 1)
    fig = figure(splits["test"][0], fig_pred, cam, Path(out).with_name(f"{Path(out).stem}_frame.png"),
                 f"bench driving{' --quick (smoke run)' if quick else ''}: test drive seed {splits['test'][0]['seed']},"
                 f" jepa seed {cfg0.train.seed} probes")
    return {"suite": "driving", "quick": quick, "git_sha": meta["git_sha"], "machine": meta["machine"],
            "versions": meta["versions"], "created": meta["created"],
            "budget": {k: v for k, v in b.items() if k != "overrides"} | {"overrides": [*b["overrides"], *overrides]},
            "camera": {"height": cam.height, "width": cam.width, "focal_px": cam.focal * cam.width,
                       "difficulty_heights_px": probes.difficulty_heights(cam.focal * cam.width)},
            "seeds": {"pretrain": PRETRAIN_SEED, "probe_train": PROBE_SEED, "probe_val": VAL_SEED, "test": TEST_SEED,
                      "surprise": SURPRISE_SEED},
            "configs": configs, "data_seconds": data_seconds, "probe_seconds": probe_seconds,
            "surprise_seconds": surprise_seconds, "rows": rows,
            "figures": [fig]}
