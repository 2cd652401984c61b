"""`openjepa bench physics`: intuitive physics by violation of expectation (Garrido et al. 2025).

Models (rows' `model`): `jepa` (vjepa_physics_cpu: V-JEPA, surprise in latent space), `pixel`
(vpixel_physics_cpu: the same backbone predicting future pixels, surprise in pixel space), `untrained`
(the jepa architecture at `N_UNTRAINED` random initialisations, figures averaged; each init in `per_init`) and
`copy_last` (no learning: every predicted frame is the last context frame; scored the same way).
`jepa` and `pixel` are each an ensemble of `members` independently trained models (train.seed, train.seed + 1,
...; eval.surprise.Ensemble: each window's error is the mean of the members' errors; the bench scores each member
once and averages their tables, `mean_table`); `train_seconds` is the members' total, `train_wall_seconds` the
model's training time by the clock (about the total with `train_jobs` = 1; members trained at once with --jobs),
`per_member` each member's relative accuracy alone and `per_member_quad_scores` its quadruplet scores. Single
models of the same recipe differ from seed to seed in which scenes they extrapolate badly (a property at .78 for one
seed and 1.00 for the next), a spread as large as the jepa-pixel gap; on validation quadruplets two-member
ensembles removed it (README).
Both trained models see only physically possible training videos (seeds below physics.TEST_SEED, training
ball hues); the test set is `n_quads` matched quadruplets per property (physics.test_quadruplets: test seeds,
test hues), each two possible videos and their two splices.

Per video: surprise = eval.surprise.video_surprise (windows of video.frames frames, stride one tubelet, the
first video.context_frames given); the video's score is the mean window error (`surprise_mean`: with a sum
over the frames, a scorer blind to dynamics ties on every quadruplet, since C + D show exactly the frames of
A + B; the largest window error gives the `*_max` fields). Per property:
    relative_accuracy  share of quadruplets whose two possible videos are together less surprising than the two
                       impossible ones (ties count 1/2): IntPhys' relative score
    auroc              possible-vs-impossible AUROC over every video of the property (no matching used). An
                       impossible video shares most frames with the possible one it starts or ends as, so
                       scene-to-scene spread swamps the violation and this stays near 0.5 unless the signal is
                       large; `auroc_matched` is the same after centring each quadruplet's four scores
Per property also: where the violation shows in time. Each frame's surprise is its error averaged over the
windows predicting it (`per_frame`); the quadruplet's excess, (C + D) - (A + B) per frame, should peak at the first
impossible frame: `excess_peak_offset_median` (frames from it to the peak) and `excess_peak_within_3` (share of
quadruplets whose peak is within 3 frames of it).
`failures`: seeds of the quadruplets whose possible videos were not less surprising than the impossible ones
(rebuild one with physics.make_quadruplet(property, seed) to look at it). `quad_scores`: each quadruplet's four
scores (A, B, C, D), in test-seed order, so subsets and confidence intervals can be computed from the file.
`jepa_vs_pixel`: per property, jepa's relative accuracy minus pixel's with a 95% bootstrap interval over the
quadruplets (`compare`; scripts/physics_compare.py pools several result files).
`copy_last_gain_per_member`: 1 - each member's training loss on future prediction / that of copying the last
context frame forward, on GAIN_VIDEOS possible clips (methods.vjepa copy_last_gain; near 0: a stalled member).
Also written: a figure of surprise vs time for one quadruplet per property (jepa; the first impossible frame
marked; below, the excess curve), and linear probes (ridge regression, R^2 on held-out videos) of the ball's
position and velocity at each tubelet slice (ball centre inside the frame) from the frozen target encoder's tokens
of that slice (jepa's and pixel's first member), next to the same probe on the slice's raw pixels (`probe_rows`).
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import shutil
import signal
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from openjepa.config import build_config, load_config
from openjepa.data.transforms import normalize
from openjepa.data.physics import PROPERTIES, test_quadruplets, train_video
from openjepa.eval.surprise import Ensemble, plot_surprise, video_surprise
from openjepa.methods import METHODS
from openjepa.train.checkpoint import load_checkpoint, load_method
from openjepa.train.loop import config_diff, stop_if_unfinished, train
from openjepa.train.run import find_preset, provenance
from openjepa.validate import resolve_config

N_UNTRAINED = 3
FULL = {"n_quads": 40, "probe_videos": 600, "members": 2, "overrides": []}
QUICK = {"n_quads": 8, "probe_videos": 160, "members": 2,
         "overrides": ["--train.steps=160", "--data.batch_size=16", "--video.physics_videos=480",
                       "--model.dim=64", "--model.depth=2", "--model.heads=2", "--model.pred_dim=32",
                       "--model.pred_depth=2", "--model.pred_heads=2", "--train.monitor_every=0",
                       "--train.ckpt_every=160"]}
GAIN_VIDEOS = 128  # clips on which each member's copy_last_gain is measured
PROBE_SEED = 900_000_000  # probe videos: training-range seeds far above any training set, test hues


def auroc(neg: list[float], pos: list[float]) -> float:
    """P(score of a random positive > score of a random negative), ties 1/2."""
    n, p = np.asarray(neg)[:, None], np.asarray(pos)[None, :]
    return float(((p > n).sum() + 0.5 * (p == n).sum()) / (n.size * p.size))


TIE_RTOL = 1e-5  # sums closer than this (relative) are ties: float rounding must not decide a quadruplet


def pair_sums(scores) -> tuple[np.ndarray, np.ndarray]:
    """Per quadruplet (A, B, C, D) scores -> (A + B, C + D): the possible and the impossible pair's surprise."""
    s = np.asarray(scores, dtype=np.float64)
    return s[:, 0] + s[:, 1], s[:, 2] + s[:, 3]


def quad_outcomes(scores) -> np.ndarray:
    """Per quadruplet (A, B, C, D) scores -> 1 (the possible pair is less surprising), 0.5 (a tie: sums within
    TIE_RTOL) or 0 (wrong). Their mean is the relative accuracy."""
    poss, imp = pair_sums(scores)
    tie = np.abs(poss - imp) <= TIE_RTOL * np.maximum(np.abs(poss), np.abs(imp))
    return ((poss < imp) & ~tie) + 0.5 * tie


def score_property(scores: list[tuple[float, float, float, float]]) -> dict[str, float]:
    """scores: per quadruplet (possible A, possible B, impossible C, impossible D). A scorer that is blind to
    the dynamics gives A + B and C + D equal up to float rounding (the same windows summed in another order);
    those count as ties (TIE_RTOL), not as coin flips decided by the rounding."""
    s = np.asarray(scores, dtype=np.float64)
    rel = float(quad_outcomes(s).mean())
    c = s - s.mean(1, keepdims=True)  # each quadruplet centred: scene-to-scene differences removed
    return {"relative_accuracy": rel, "auroc": auroc(list(s[:, :2].ravel()), list(s[:, 2:].ravel())),
            "auroc_matched": auroc(list(c[:, :2].ravel()), list(c[:, 2:].ravel()))}


class CopyLast(torch.nn.Module):
    """Reference scorer with no learning and no physics: every predicted frame is the last context frame, the
    surprise is the mean L1 pixel error per tubelet slice (`future_error`, as VPixel's). It shows what
    "nothing moves" predicts on each property (e.g. a ball that reappears far from where it was hidden is
    surprising to it, whatever the physics)."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg

    @torch.no_grad()
    def future_error(self, x: torch.Tensor, context_frames: int) -> torch.Tensor:
        err = (x[:, :, context_frames:] - x[:, :, context_frames - 1:context_frames]).abs().float()  # (B,C,T-c,H,W)
        err = err.mean((1, 3, 4))  # (B, T - c)
        return err.view(err.shape[0], -1, self.cfg.video.tubelet).mean(-1)  # (B, S)


def surprise_table(method, quads, device: str) -> list[dict[str, Any]]:
    """For each quadruplet: the four videos' video_surprise results (A, B, C, D)."""
    out = []
    for q in quads:
        vids = [*q.possible, *q.impossible]  # (T, H, W, C) uint8 each
        out.append([video_surprise(method, torch.from_numpy(v).permute(3, 0, 1, 2).contiguous(), device=device)
                    for v in vids])
    return out


def excess_curve(row: list[dict[str, Any]]) -> list[float | None]:
    """One quadruplet's four video_surprise results (A, B, C, D) -> per-frame excess surprise of the impossible
    pair over the possible pair, (C + D) - (A + B) (None where no window predicts the frame). The pairs show the
    same frames at every time index, so the excess is the dynamics' share alone; its sum over frames has the sign
    that decides the quadruplet (up to the window weighting at the video's ends)."""
    pf = [r["per_frame"] for r in row]
    return [None if None in v else v[2] + v[3] - v[0] - v[1] for v in zip(*pf)]


def excess_peak_offsets(rows: list[list[dict[str, Any]]], quads) -> list[int]:
    """Per quadruplet: frame of the largest excess surprise minus the violation frame (0: the peak sits at the
    first impossible frame)."""
    out = []
    for r, q in zip(rows, quads):
        vals = [-np.inf if v is None else v for v in excess_curve(r)]
        out.append(int(np.argmax(vals)) - q.violation)
    return out


def mean_table(tables: list[list[list[dict[str, Any]]]]) -> list[list[dict[str, Any]]]:
    """surprise_table results of an ensemble's members -> the ensemble's table without scoring it again: each
    window's error is the mean of the members' (what Ensemble.future_error computes), and per-frame surprise,
    being an average of window slices, is the mean of the members' per_frame; surprise_mean / max are recomputed
    from the averaged windows."""
    out = []
    for rows in zip(*tables):
        quad = []
        for vids in zip(*rows):
            win = np.mean([v["windows"] for v in vids], 0)
            pf = [None if None in f else float(np.mean(f)) for f in zip(*(v["per_frame"] for v in vids))]
            quad.append({"surprise_mean": float(win.mean()), "surprise_max": float(win.max()), "per_frame": pf,
                         "windows": [float(w) for w in win], "window_starts": vids[0]["window_starts"]})
        out.append(quad)
    return out


def evaluate_model(method, quads, device: str) -> tuple[dict[str, dict[str, float]], list]:
    table = surprise_table(method, quads, device)
    return evaluate_table(table, quads), table


def evaluate_table(table, quads) -> dict[str, dict[str, Any]]:
    """Per property scores of a surprise_table (one row of four video results per quadruplet)."""
    res = {}
    for prop in PROPERTIES:
        sel = [(q, r) for q, r in zip(quads, table) if q.prop == prop]
        if not sel:
            continue
        rows = [r for _, r in sel]
        means = [tuple(v["surprise_mean"] for v in r) for r in rows]
        mean = score_property(means)
        mx = score_property([tuple(v["surprise_max"] for v in r) for r in rows])
        off = np.array(excess_peak_offsets(rows, [q for q, _ in sel]))
        outcome = quad_outcomes(means)
        res[prop] = {**mean, "relative_accuracy_max": mx["relative_accuracy"], "auroc_max": mx["auroc"],
                     "auroc_matched_max": mx["auroc_matched"], "excess_peak_offset_median": float(np.median(off)),
                     "excess_peak_within_3": float((np.abs(off) <= 3).mean()),
                     "failures": [q.seed for (q, _), o in zip(sel, outcome) if o < 1],
                     "quad_scores": [list(m) for m in means]}  # unrounded: rounding would break ties
    return res


def merge_results(results: list[dict[str, Any]], models: tuple[str, ...] = ("jepa", "pixel")) -> dict[str, Any]:
    """Several bench physics results (independently trained ensembles of each model) -> one result whose `models`
    are the ensembles of all their members: a video's surprise_mean under an ensemble is the mean of its members'
    (each window's error is), so the merged quad_scores are the files' quad_scores averaged with each file's
    `members` as weight, on the quadruplets they share (the first n test seeds). Only relative accuracy and
    quad_scores are recomputed (the merged ensemble's training cost is the files' sum, over the bench budget)."""
    rows = []
    for prop in PROPERTIES:
        for model in models:
            got = [(res.get("members", 1), r) for res in results for r in res["rows"]
                   if r["model"] == model and r["property"] == prop]
            if not got:
                continue
            if len(got) != len(results) or any("quad_scores" not in r for _, r in got):
                raise ValueError(f"every result needs {model} {prop} rows with quad_scores to be merged")
            n = min(len(r["quad_scores"]) for _, r in got)
            w = np.array([m for m, _ in got], dtype=np.float64)
            qs = np.tensordot(w / w.sum(), np.stack([np.asarray(r["quad_scores"][:n], np.float64) for _, r in got]), 1)
            rows.append({"model": model, "property": prop, "members": int(w.sum()),
                         "relative_accuracy": float(quad_outcomes(qs).mean()), "quad_scores": qs.tolist()})
    return {"rows": rows, "members": int(sum(res.get("members", 1) for res in results))}


def compare(results: list[dict[str, Any]], a: str = "jepa", b: str = "pixel", n_boot: int = 2000,
            seed: int = 0) -> dict[str, dict[str, float]]:
    """Model a against model b per property, paired by quadruplet, from one or more bench physics results (e.g.
    independently trained ensembles scored on the same test seeds; their first n quadruplets are the same, n the
    smallest set among them). Per property: each model's relative accuracy averaged over the results, the
    difference a - b, and a 95% bootstrap interval of the difference (quadruplets resampled, the same draw for
    every result, so scene difficulty is shared as in the test)."""
    rows = {}
    for res in results:
        for r in res["rows"]:
            if r["model"] in (a, b):
                if "quad_scores" not in r:
                    raise ValueError(f"a result ({res.get('git_sha', '?')[:7]}) has no quad_scores: score it again "
                                     "with this version (bench physics --reuse)")
                rows.setdefault(r["property"], {}).setdefault(r["model"], []).append(quad_outcomes(r["quad_scores"]))
    rng = np.random.default_rng(seed)
    out = {}
    for prop, by in rows.items():
        if set(by) != {a, b} or len(by[a]) != len(by[b]):
            raise ValueError(f"{prop}: every result must hold both {a!r} and {b!r} rows")
        n = min(len(o) for o in by[a] + by[b])
        oa = np.mean([o[:n] for o in by[a]], 0)  # (n,) outcome averaged over the results
        ob = np.mean([o[:n] for o in by[b]], 0)
        d = oa - ob
        boot = d[rng.integers(0, n, (n_boot, n))].mean(1)
        lo, hi = np.percentile(boot, [2.5, 97.5])
        out[prop] = {a: float(oa.mean()), b: float(ob.mean()), "difference": float(d.mean()), "ci95": [float(lo),
                     float(hi)], "n_quads": n, "n_results": len(by[a])}
    return out


# ------------------------------------------------------------------------------------------------- probes
def probe_data(n: int, cfg) -> tuple[torch.Tensor, np.ndarray]:
    """n single-ball videos (first video.frames frames), uint8 (n, C, F, H, W), and per tubelet slice the ball's
    state (x, y, vx, vy) at the slice's first frame: (n, S, 4)."""
    F, t = cfg.video.frames, cfg.video.tubelet
    xs, ys, seed = [], [], PROBE_SEED
    while len(xs) < n:
        frames, pos, vel = train_video(seed, F, cfg.data.img_size, cfg.data.channels, split="test")
        seed += 1
        if pos.shape[1] != 1:
            continue
        xs.append(frames.transpose(3, 0, 1, 2))
        ys.append(np.concatenate([pos[::t, 0], vel[::t, 0]], 1))
    return torch.from_numpy(np.stack(xs)), np.stack(ys)


@torch.no_grad()
def slice_features(encoder, x: torch.Tensor, grid: tuple[int, int, int], batch: int = 64) -> torch.Tensor:
    """Frozen tokens of each time slice, concatenated over the slice's h*w positions: (n, S, h*w*D)."""
    encoder.eval()
    out = []
    for i in range(0, x.shape[0], batch):
        z = encoder(normalize(x[i:i + batch])).float()  # (b, N, D)
        out.append(z.view(z.shape[0], grid[0], -1))
    return torch.cat(out)


def pixel_slices(x: torch.Tensor, tubelet: int) -> torch.Tensor:
    """Raw pixels of each slice: (n, C, F, H, W) -> (n, S, C*t*H*W)."""
    n, C, F, H, W = x.shape
    return normalize(x).view(n, C, F // tubelet, tubelet, H, W).permute(0, 2, 1, 3, 4, 5).reshape(n, F // tubelet, -1)


def ridge_r2(z: torch.Tensor, y: torch.Tensor, n_train: int) -> float:
    """Ridge regression fitted on the first n_train rows (L2 strength picked on a validation tenth of them),
    R^2 (averaged over target columns) on the rest. Features standardised with the training statistics."""
    z, y = z.double(), y.double()
    mu, sd = z[:n_train].mean(0), z[:n_train].std(0) + 1e-6
    z = (z - mu) / sd
    ym = y[:n_train].mean(0)
    y = y - ym

    def fit(a, b, lam):  # primal or dual form, whichever system is smaller
        n, d = a.shape
        if n < d:
            return a.T @ torch.linalg.solve(a @ a.T + lam * n * torch.eye(n, dtype=a.dtype), b)
        return torch.linalg.solve(a.T @ a + lam * n * torch.eye(d, dtype=a.dtype), a.T @ b)

    def r2(pred, b):
        return float((1 - ((pred - b) ** 2).sum(0) / ((b - b.mean(0)) ** 2).sum(0).clamp_min(1e-12)).mean())

    n_val = max(n_train // 10, 1)
    tr, va = slice(0, n_train - n_val), slice(n_train - n_val, n_train)
    lam = max((1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0), key=lambda l: r2(z[va] @ fit(z[tr], y[tr], l), y[va]))
    w = fit(z[:n_train], y[:n_train], lam)
    return r2(z[n_train:] @ w, y[n_train:])


def probe_rows(models: dict[str, Any], cfg, x: torch.Tensor, states: np.ndarray) -> list[dict[str, Any]]:
    """R^2 of position and velocity probes per feature kind on `probe_data` videos x and their states; the first
    80% of the videos fit, the rest score; only slices whose ball centre is inside the frame count."""
    n_videos = x.shape[0]
    n_train = int(0.8 * n_videos)
    inside = torch.from_numpy((states[..., 0] > 0) & (states[..., 0] < 1) & (states[..., 1] < 1))  # (n, S)
    y = torch.from_numpy(states)[inside]  # (rows, 4), video-major: training videos' rows first
    n_rows = int(inside[:n_train].sum())
    feats = {"raw_pixels": pixel_slices(x, cfg.video.tubelet)}
    for name, m in models.items():
        feats[name] = slice_features(m.eval_encoder(), x, m.grid)
    rows = []
    for name, f in feats.items():
        z = f[inside]  # (rows, features)
        for target, cols in (("position", slice(0, 2)), ("velocity", slice(2, 4))):
            rows.append({"model": name, "probe": target, "r2": ridge_r2(z, y[:, cols], n_rows)})
    return rows


# -------------------------------------------------------------------------------------------------- suite
def _last_checkpoint(run_dir: Path, cfg) -> tuple[int, list[str]] | None:
    """(step, config_diff against cfg) of run_dir's checkpoints/last.pt; None when there is none."""
    ckpt = run_dir / "checkpoints" / "last.pt"
    if not ckpt.exists():
        return None
    state = load_checkpoint(ckpt)
    return int(state.get("step", -1)), config_diff(build_config(state["config"]), cfg)


def finished_run(run_dir: Path, cfg) -> str | None:
    """Why the training run in run_dir cannot stand for `cfg` (None: it can): missing, unfinished, or trained
    with other settings (runtime keys aside)."""
    last = _last_checkpoint(run_dir, cfg)
    if last is None:
        return "no checkpoints/last.pt"
    step, diff = last
    if step != cfg.train.steps:
        return f"stopped at step {step} of {cfg.train.steps}"
    return f"other settings ({'; '.join(diff)})" if diff else None


def reusable_member(cfg, run_dir: Path, label: str, reuse: bool) -> tuple[float | None, bool, None] | None:
    """With `reuse`, the finished run in run_dir if it matches cfg -> (its training seconds from the bench_train.json
    written when it was trained, None if absent; True; None); else None (it must be trained or resumed)."""
    if not reuse:
        return None
    why = finished_run(run_dir, cfg)
    if why is None:
        info = run_dir / "bench_train.json"
        print(f"== bench physics: reusing the finished {label} run in {run_dir}")
        return (json.loads(info.read_text())["train_seconds"] if info.exists() else None), True, None
    print(f"== bench physics: cannot reuse {run_dir}: {why}")
    return None


PARTIAL = "bench_train_partial.json"  # a stopped member's training seconds so far and the step it stopped at


def resumable_step(run_dir: Path, cfg) -> int | None:
    """The step of an unfinished run in run_dir trained with cfg's settings (runtime keys aside), else None."""
    last = _last_checkpoint(run_dir, cfg)
    return last[0] if last is not None and 0 < last[0] < cfg.train.steps and not last[1] else None


def _train_one(cfg, run_dir: Path, label: str, preset: str, at: int | None) -> tuple[float | None, bool, int | None]:
    """Train a member into run_dir, from scratch or (`at`, from resumable_step) resumed from its checkpoint there;
    writes bench_train.json when finished, PARTIAL when stopped (then SystemExit). -> (seconds, False, resumed
    from step or None); the seconds of a resumed run add up its sessions (None when one of them is unknown: a
    run killed without the chance to record them)."""
    prev: float | None = 0.0
    if at is None:
        if run_dir.exists():
            shutil.rmtree(run_dir)
        print(f"== bench physics: training {label} ({cfg.train.method}, {cfg.train.steps} steps of {preset})")
    else:
        part = run_dir / PARTIAL
        info = json.loads(part.read_text()) if part.exists() else {}
        prev = info.get("train_seconds") if info.get("step") == at else None
        print(f"== bench physics: resuming {label} from its checkpoint at step {at} of {cfg.train.steps}")
    t0 = time.time()
    summary = train(cfg, run_dir, resume=at is not None)
    secs = round(time.time() - t0, 1)
    total = None if prev is None else round(prev + secs, 1)
    if not summary["finished"]:
        (run_dir / PARTIAL).write_text(json.dumps({"train_seconds": total, "step": summary["steps"]}) + "\n")
    stop_if_unfinished(summary, f"bench physics: the {label} run",
                       "; the same command with --reuse goes on from there, keeping the finished members")
    (run_dir / "bench_train.json").write_text(json.dumps({"train_seconds": total, "resumed_from_step": at}) + "\n")
    return total, False, at


def train_member(cfg, run_dir: Path, label: str, preset: str, reuse: bool) -> tuple[float | None, bool, int | None]:
    """Train one ensemble member into run_dir, or (reuse) keep the finished run there if it matches cfg, or
    (reuse) resume the unfinished one there if it matches cfg. -> (training seconds, reused?, resumed from step);
    a reused run's seconds come from the bench_train.json written when it was trained (None if absent)."""
    kept = reusable_member(cfg, run_dir, label, reuse)
    if kept is not None:
        return kept
    return _train_one(cfg, run_dir, label, preset, resumable_step(run_dir, cfg) if reuse else None)


def member_log(run_dir: Path) -> Path:
    """Where a member trained in its own process (train_members with jobs > 1) writes its console output."""
    return run_dir.with_name(run_dir.name + ".log")


def _member_process(cfg_dict: dict[str, Any], run_dir: str, label: str, preset: str, at: int | None) -> None:
    """Body of a member's process: _train_one with its console output appended to member_log(run_dir)."""
    run_dir_p = Path(run_dir)
    with open(member_log(run_dir_p), "a", buffering=1) as f, contextlib.redirect_stdout(f), \
            contextlib.redirect_stderr(f):
        try:
            _train_one(build_config(cfg_dict), run_dir_p, label, preset, at)
        except SystemExit as e:  # stopped: say so in the log too
            print(e)
            raise


def _progress(run_dir: Path) -> tuple[int, float | None]:
    """(last logged step, its samples/s) from a member's metrics.jsonl; (0, None) before the first row."""
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return 0, None
    for line in reversed(path.read_text().splitlines()):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:  # a line being written
            continue
        if "samples_per_s" in row:
            return int(row["step"]), float(row["samples_per_s"])
    return 0, None


def _eta_seconds(first: tuple[float, int] | None, now: float, step: int, steps: int, batch: int,
                 rate: float | None) -> float | None:
    """Seconds a member has left: from its pace since the bench first saw it logging (first = (time, step)),
    which is steadier than the last logged window's rate (used until there is such a pace); None if neither."""
    if first is not None and step > first[1] and now > first[0]:
        return (steps - step) * (now - first[0]) / (step - first[1])
    return (steps - step) * batch / rate if rate else None


class _Stop(Exception):
    pass


def train_members(specs: list[tuple[Any, Path, str]], preset: str, reuse: bool, jobs: int = 1,
                  report_every: float = 60.0) -> list[tuple[float | None, bool, int | None]]:
    """Train (or, with reuse, keep or resume) each (cfg, run_dir, label) member -> [train_member's result].

    jobs = 1: one after the other, in this process. jobs > 1: up to `jobs` members at once, each in its own
    process (spawned; console output in member_log(run_dir)), with a progress line every `report_every` seconds.
    Small models use two cores better as two one-thread trainings than as one two-thread training (README).
    Ctrl-C or SIGTERM asks every running member to checkpoint and stop, then stops the bench (--reuse goes on)."""
    if jobs <= 1:
        return [train_member(cfg, run_dir, label, preset, reuse) for cfg, run_dir, label in specs]
    got: list[tuple[float | None, bool, int | None] | None] = [reusable_member(cfg, d, label, reuse)
                                                              for cfg, d, label in specs]
    todo = [i for i, g in enumerate(got) if g is None]
    ctx = multiprocessing.get_context("spawn")
    for start in range(0, len(todo), jobs):
        group = todo[start:start + jobs]
        procs, launched = {}, time.time()
        for i in group:
            cfg, run_dir, label = specs[i]
            at = resumable_step(run_dir, cfg) if reuse else None
            if at is None:
                member_log(run_dir).unlink(missing_ok=True)  # a resumed member's log goes on
            run_dir.parent.mkdir(parents=True, exist_ok=True)
            what = "training" if at is None else f"resuming from step {at}"
            print(f"== bench physics: {what} {label} ({cfg.train.method}, {cfg.train.steps} steps of {preset}, "
                  f"{cfg.train.threads or torch.get_num_threads()} thread(s)) in its own process; log "
                  f"{member_log(run_dir)}")
            procs[i] = ctx.Process(target=_member_process, args=(cfg.to_dict(), str(run_dir), label, preset, at))
            procs[i].start()

        def stop(signum, frame):
            raise _Stop(signal.Signals(signum).name)

        main = threading.current_thread() is threading.main_thread()
        old = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)} if main else {}
        if main:
            signal.signal(signal.SIGTERM, stop)
        t0 = last = time.time()
        first: dict[int, tuple[float, int]] = {}  # member -> (time, step) when first seen logging
        stopped = None
        try:
            while any(p.is_alive() for p in procs.values()):
                time.sleep(min(1.0, report_every))
                if time.time() - last >= report_every:
                    last = time.time()
                    parts, etas = [], []
                    for i in group:
                        cfg, run_dir, label = specs[i]
                        step, rate = _progress(run_dir)
                        parts.append(f"{label} step {step}/{cfg.train.steps}")
                        if rate:
                            first.setdefault(i, (last, step))
                        left = _eta_seconds(first.get(i), last, step, cfg.train.steps, cfg.data.batch_size, rate)
                        if left is not None:
                            etas.append(left)
                    eta = f"; ETA {max(etas):.0f}s" if etas else ""
                    print(f"== bench physics: {', '.join(parts)} ({last - t0:.0f}s{eta})", flush=True)
        except (KeyboardInterrupt, _Stop) as e:
            stopped = str(e) or "SIGINT"
        finally:
            for sig in old:  # a second signal must not cut short the members' checkpointing
                signal.signal(sig, signal.SIG_IGN)
            for p in procs.values():
                if p.is_alive():
                    p.terminate()  # SIGTERM: the training loop checkpoints its step and returns
            for p in procs.values():
                p.join()
            for sig, handler in old.items():
                signal.signal(sig, handler)
        hint = "; the same command with --reuse goes on from there, keeping the finished members"
        if stopped:
            raise SystemExit(f"bench physics stopped ({stopped}): the members in training saved a checkpoint{hint}")
        for i in group:
            cfg, run_dir, label = specs[i]
            info, part = run_dir / "bench_train.json", run_dir / PARTIAL
            if procs[i].exitcode != 0 and part.exists() and part.stat().st_mtime >= launched:
                raise SystemExit(f"bench physics: the {label} run stopped at step "
                                 f"{json.loads(part.read_text())['step']} (log {member_log(run_dir)}){hint}")
            if procs[i].exitcode != 0 or not info.exists():
                log = member_log(run_dir)
                tail = "\n".join(log.read_text().splitlines()[-5:]) if log.exists() else ""
                raise SystemExit(f"bench physics: the {label} run failed (exit code {procs[i].exitcode}; its log "
                                 f"{log} ends:\n{tail}){hint}")
            done = json.loads(info.read_text())
            got[i] = done["train_seconds"], False, done.get("resumed_from_step")
    assert all(g is not None for g in got)
    return got  # type: ignore[return-value]


def default_jobs(members: int, threads: int, quick: bool) -> int:
    """Members trained at once when --jobs is not given: the full bench trains its members side by side, one
    per thread at most (on 2 CPU cores two 1-thread trainings together run 1.25-1.29x the samples/s of one
    2-thread training, README); the quick bench one after the other (its trainings are too short for the
    start of a process per member to pay)."""
    return 1 if quick else max(1, min(members, threads))


def run_physics(quick: bool, workdir: Path, overrides: list[str], out: Path, reuse: bool = False,
                n_quads: int | None = None, jobs: int | None = None) -> dict[str, Any]:
    """The suite. reuse=True keeps finished training runs found under workdir that match the requested configs
    (re-scoring without retraining; their train_seconds come from the bench_train.json the earlier bench run
    wrote beside them, null if absent), resumes unfinished ones from their checkpoints (a bench stopped by Ctrl-C or
    SIGTERM goes on where it stopped; `resumed_from_step` per member) and trains the rest. n_quads overrides the
    budget's quadruplets per property (test seeds TEST_SEED + [0, n_quads): a larger set contains the smaller ones).
    jobs > 1 trains up to that many members of a model at once (train_members), each with torch's threads / jobs
    threads (at least 1) unless the overrides set train.threads; `train_wall_seconds` is then the model's training
    time by the clock. jobs=None picks default_jobs."""
    budget = dict(QUICK if quick else FULL)
    if jobs is None:
        jobs = default_jobs(budget["members"], torch.get_num_threads(), quick)
    if n_quads is not None:
        budget["n_quads"] = int(n_quads)
    suite_dir = Path(workdir) / ("physics_quick" if quick else "physics")
    if suite_dir.exists() and not reuse:
        shutil.rmtree(suite_dir)
    meta = provenance()
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    threads = [f"--train.threads={max(1, torch.get_num_threads() // jobs)}"] if jobs > 1 else []
    base = ["--train.progress=false", "--train.device=cpu"] + budget["overrides"]
    extra = base + threads + list(overrides)  # the caller's overrides win, train.threads included
    configs, models, members, train_seconds, ckpts, reused, walls, resumed = {}, {}, {}, {}, {}, {}, {}, {}
    for name, preset in (("jepa", "vjepa_physics_cpu"), ("pixel", "vpixel_physics_cpu")):
        seed0 = load_config(find_preset(preset), extra).train.seed
        specs = []
        for seed in range(seed0, seed0 + budget["members"]):
            cfg = resolve_config(load_config(find_preset(preset), extra + [f"--train.seed={seed}"]))
            configs.setdefault(name, cfg.to_dict())
            specs.append((cfg, suite_dir / name / f"seed{seed}", f"{name} seed {seed}"))
        t0 = time.time()
        got = train_members(specs, preset, reuse, jobs)
        train_seconds[name], reused[name] = [g[0] for g in got], [g[1] for g in got]
        resumed[name] = [g[2] for g in got]
        # the clock saw the whole training only when no member was kept or resumed
        walls[name] = None if any(reused[name]) or any(r is not None for r in resumed[name]) \
            else round(time.time() - t0, 1)
        ckpts[name] = [run_dir / "checkpoints" / "last.pt" for _, run_dir, _ in specs]
        members[name] = [load_method(c)[0] for c in ckpts[name]]
        models[name] = Ensemble(members[name])
    jcfg = models["jepa"].cfg
    untrained = []
    for k in range(N_UNTRAINED):
        torch.manual_seed(1000 + k)
        untrained.append(METHODS["vjepa"](jcfg).eval())

    # possible videos with test hues (first video.frames frames): the first GAIN_VIDEOS measure copy_last_gain, the
    # first probe_videos the linear probes
    probe_x, probe_states = probe_data(max(budget["probe_videos"], GAIN_VIDEOS), jcfg)
    gain_x = normalize(probe_x[:GAIN_VIDEOS])
    gains = {name: [round(m.eval().copy_last_gain(gain_x, jcfg.video.context_frames), 4) for m in ms]
             for name, ms in members.items()}
    quads = test_quadruplets(budget["n_quads"], T=jcfg.video.physics_frames, size=jcfg.data.img_size,
                             channels=jcfg.data.channels)
    print(f"== bench physics: scoring {len(quads)} quadruplets ({budget['n_quads']} per property): jepa and pixel "
          f"(each {budget['members']} members alone, the ensemble as their mean), {N_UNTRAINED} untrained, copy_last")
    t0 = time.time()
    results, tables = {}, {}
    per_member = {}
    for name in models:  # each member scored once; the ensemble's table is the members' mean (mean_table)
        member_tables = [surprise_table(one, quads, "cpu") for one in members[name]]
        per_member[name] = [evaluate_table(t, quads) for t in member_tables]
        tables[name] = mean_table(member_tables)
        results[name] = evaluate_table(tables[name], quads)
    per_init = [evaluate_model(m, quads, "cpu")[0] for m in untrained]
    results["copy_last"] = evaluate_model(CopyLast(jcfg), quads, "cpu")[0]
    score_seconds = round(time.time() - t0, 1)
    rows = []
    for prop in PROPERTIES:
        for name in ("jepa", "pixel"):
            secs = train_seconds[name]
            rows.append({"model": name, "property": prop, **results[name][prop],
                         "per_member": [r[prop]["relative_accuracy"] for r in per_member[name]],
                         "per_member_quad_scores": [r[prop]["quad_scores"] for r in per_member[name]],
                         "train_seconds": None if None in secs else round(sum(secs), 1),
                         "train_seconds_per_member": secs, "train_wall_seconds": walls[name], "train_jobs": jobs,
                         "copy_last_gain_per_member": gains[name],
                         "checkpoints": [str(c) for c in ckpts[name]], "reused_checkpoint": reused[name],
                         "resumed_from_step": resumed[name]})
        rows.append({"model": "copy_last", "property": prop, **results["copy_last"][prop]})
        avg = {k: float(np.mean([r[prop][k] for r in per_init])) for k, v in per_init[0][prop].items()
               if not isinstance(v, list)}
        rows.append({"model": "untrained", "property": prop, **avg,
                     "per_init": [r[prop]["relative_accuracy"] for r in per_init]})

    # surprise vs time: one quadruplet per property under the jepa model
    figures = []
    for prop in PROPERTIES:
        i = next(j for j, q in enumerate(quads) if q.prop == prop)
        q, tab = quads[i], tables["jepa"][i]
        named = [{"name": n, "per_frame": r["per_frame"]} for n, r in zip(("possible A", "possible B",
                                                                          "impossible C", "impossible D"), tab)]
        path = Path(out).with_name(f"{Path(out).stem}_surprise_{prop}.png")
        excess = [{"name": "impossible (C + D) - possible (A + B)", "per_frame": excess_curve(tab)}]
        plot_surprise(named, path, marks=[None, None, q.violation, q.violation], excess=excess,
                      title=f"{prop}: jepa surprise per frame (dashed: first impossible frame)")
        figures.append(str(path))

    print("== bench physics: linear probes of ball position / velocity")
    n = budget["probe_videos"]
    probes = probe_rows({"jepa": members["jepa"][0], "pixel": members["pixel"][0], "untrained": untrained[0]}, jcfg,
                        probe_x[:n], probe_states[:n])
    return {"suite": "physics", "quick": quick, "git_sha": meta["git_sha"], "machine": meta["machine"],
            "versions": meta["versions"], "created": meta["created"], "configs": configs,
            "n_quadruplets_per_property": budget["n_quads"], "members": budget["members"],
            "score": "surprise_mean (mean window error; jepa and pixel: the mean over their members)",
            "score_seconds": score_seconds, "rows": rows, "jepa_vs_pixel": compare([{"rows": rows}]),
            "probe_rows": probes, "figures": figures}
