"""Frozen-feature probes of driving frames (issue 26): metric depth, ego-motion and vehicle detection, and their
metrics in the conventions of KITTI's benchmarks.

Every probe reads patch tokens of a frame, tok (n, hw, D) on an (h, w) grid of p x p patches, from any source
(a video encoder's last time slice, raw pixel patches, or oracle features in the tests), and fits a light head
on the probe-training frames; hyper-parameters (the L2 strength) are chosen on validation frames; the test frames
are only scored.

- depth (`fit_depth`, `predict_depth`, `depth_metrics`): a per-patch linear head (ridge regression) from a token
  plus a one-hot of its grid position (a per-position bias, so that raw pixel patches, which do not know where
  they are, get the road's row-to-depth prior too) to the log depth of the patch's p*p pixels. Metrics as
  Monodepth2 (Godard et al. 2019): valid pixels are those with ground truth in (min_depth, max_depth) (the sky
  and anything at or past 80 m have none, as in KITTI's depth maps), predictions clipped to [min_depth,
  max_depth], no median scaling (the depth is metric): AbsRel, SqRel, RMSE, delta < 1.25.
- ego-motion (`pair_features`, `fit_ridges`, `relative_motion`, `integrate`, `odometry_errors`): the tokens of
  two frames, each average-pooled to a coarse grid (at most 4 x 4) and concatenated, -> ridge regression of the
  relative pose (dx, dz, dyaw) of the later camera in the earlier one's frame. The predicted steps of a held-out
  drive are chained into a trajectory and scored as KITTI's odometry devkit does: for start frames one second
  apart and each path length L in `lengths`, the error of the pose change over the first stretch of at least L
  metres, translation error in % of L and rotation error in degrees per 100 m, averaged over all stretches.
  Simplification: our drives are a few hundred metres, so the lengths are 50-200 m (KITTI: 100-800 m).
- detection (`detection_targets`, `fit_detector`, `detect`, `average_precision`): per patch, an objectness
  logistic regression (positive: the patch holding a vehicle box's centre, the tallest box when several do) and
  a ridge regression of the box (centre offset in patches, log width and height in patches) fitted on the
  positive patches; decoded boxes of score >= 0.01 go through greedy NMS at IoU 0.5. AP@0.5 for vehicles (Car,
  Van, Truck as one class) with KITTI's difficulty rules (`DIFFICULTY`): a ground-truth box outside the level
  is ignored (a detection on it is neither right nor wrong), as is a detection smaller than the level's height;
  AP is KITTI's 40-point interpolated AP (R40). KITTI's heights (40 / 25 / 25 px at focal 721.5 px) are scaled
  by our focal length over KITTI's (`difficulty_heights`), so a level spans the same distances as in KITTI.

Shapes: tok (n, hw, D); depth maps (n, H, W); boxes (k, 4) x1 y1 x2 y2 in pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from openjepa.data.driving.render import pose_matrix

KITTI_FOCAL = 721.5377  # px: P2[0, 0] of KITTI's colour camera; KITTI's difficulty heights are at this focal
# KITTI object benchmark levels: least box height (px at KITTI_FOCAL), most occlusion level, most truncation
DIFFICULTY = {"easy": (40.0, 0, 0.15), "moderate": (25.0, 1, 0.30), "hard": (25.0, 2, 0.50)}
LAMBDAS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)  # ridge / logistic L2 strengths tried on the validation frames
LENGTHS = (50.0, 100.0, 150.0, 200.0)  # metres: odometry stretches (KITTI's devkit: 100, 200, ..., 800)
MIN_DEPTH = 1e-3


# ---------------------------------------------------------------- shared: ridge regression on standardised rows

@dataclass
class Ridge:
    """A ridge fit y ~ ((x - mu) / sd) @ w + b."""
    mu: torch.Tensor
    sd: torch.Tensor
    w: torch.Tensor
    b: torch.Tensor

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return ((x.double() - self.mu) / self.sd) @ self.w + self.b


def fit_ridges(x: torch.Tensor, y: torch.Tensor, lams: Sequence[float]) -> list[Ridge]:
    """Ridge regressions on standardised features, one per L2 strength lam * rows (primal or dual, whichever system
    is smaller): x (n, d), y (n, k). The standardisation and the Gram matrix are shared by every lam."""
    x, y = x.double(), y.double()
    mu, sd = x.mean(0), x.std(0) + 1e-6
    z = (x - mu) / sd
    b = y.mean(0)
    n, d = z.shape
    if n < d:
        gram, eye = z @ z.T, torch.eye(n, dtype=z.dtype)
        return [Ridge(mu, sd, z.T @ torch.linalg.solve(gram + lam * n * eye, y - b), b) for lam in lams]
    gram, eye, zy = z.T @ z, torch.eye(d, dtype=z.dtype), z.T @ (y - b)
    return [Ridge(mu, sd, torch.linalg.solve(gram + lam * n * eye, zy), b) for lam in lams]


def fit_ridge(x: torch.Tensor, y: torch.Tensor, lam: float) -> Ridge:
    """One ridge fit (see fit_ridges)."""
    return fit_ridges(x, y, (lam,))[0]


def with_position(tok: torch.Tensor) -> torch.Tensor:
    """tok (n, hw, D) -> rows (n * hw, D + hw): each token with a one-hot of its grid position."""
    n, hw, _ = tok.shape
    pos = torch.eye(hw, dtype=tok.dtype).expand(n, hw, hw)
    return torch.cat([tok, pos], -1).reshape(n * hw, -1)


# ---------------------------------------------------------------- depth

def depth_metrics(pred: np.ndarray, gt: np.ndarray, max_depth: float = 80.0) -> dict[str, float]:
    """Monodepth2's metrics over the valid pixels (gt in (MIN_DEPTH, max_depth)), pred clipped to [MIN_DEPTH,
    max_depth], no median scaling: abs_rel, sq_rel, rmse (m), delta1 (share with max(p/g, g/p) < 1.25)."""
    pred, gt = np.asarray(pred, dtype=np.float64), np.asarray(gt, dtype=np.float64)
    valid = (gt > MIN_DEPTH) & (gt < max_depth)
    p, g = np.clip(pred[valid], MIN_DEPTH, max_depth), gt[valid]
    if g.size == 0:
        raise ValueError("no valid depth pixels")
    return {"abs_rel": float(np.mean(np.abs(p - g) / g)), "sq_rel": float(np.mean((p - g) ** 2 / g)),
            "rmse": float(np.sqrt(np.mean((p - g) ** 2))),
            "delta1": float(np.mean(np.maximum(p / g, g / p) < 1.25))}


def patch_log_depth(depth: np.ndarray, p: int, max_depth: float) -> torch.Tensor:
    """(n, H, W) metres -> (n * hw, p*p) log depth of each patch's pixels (capped at max_depth), row-major patches."""
    n, H, W = depth.shape
    d = np.log(np.clip(depth, 0.5, max_depth)).reshape(n, H // p, p, W // p, p).transpose(0, 1, 3, 2, 4)
    return torch.from_numpy(np.ascontiguousarray(d.reshape(-1, p * p)))


def predict_depth(head: Ridge, tok: torch.Tensor, grid: tuple[int, int], p: int) -> np.ndarray:
    """Per-pixel metric depth (n, H, W) from tokens (n, hw, D)."""
    n = tok.shape[0]
    h, w = grid
    logd = head(with_position(tok)).view(n, h, w, p, p).permute(0, 1, 3, 2, 4).reshape(n, h * p, w * p)
    return logd.exp().numpy()


def fit_depth(tok: torch.Tensor, depth: np.ndarray, val_tok: torch.Tensor, val_depth: np.ndarray,
              grid: tuple[int, int], p: int, max_depth: float) -> tuple[Ridge, float]:
    """The depth head with the L2 strength of the lowest validation AbsRel -> (head, lambda)."""
    x, y = with_position(tok), patch_log_depth(depth, p, max_depth)
    best = None
    for lam, head in zip(LAMBDAS, fit_ridges(x, y, LAMBDAS)):
        err = depth_metrics(predict_depth(head, val_tok, grid, p), val_depth, max_depth)["abs_rel"]
        if best is None or err < best[0]:
            best = (err, head, lam)
    return best[1], best[2]


# ---------------------------------------------------------------- ego-motion

def pair_features(tok: torch.Tensor, grid: tuple[int, int], first: np.ndarray, second: np.ndarray,
                  pool: int = 4) -> torch.Tensor:
    """Features of frame pairs: the tokens of frames `first` and `second` (indices into tok (n, hw, D)), each
    average-pooled to at most pool x pool cells, concatenated -> (pairs, 2 * cells * D)."""
    n, hw, D = tok.shape
    maps = tok.view(n, grid[0], grid[1], D).permute(0, 3, 1, 2).float()
    pooled = F.adaptive_avg_pool2d(maps, (min(pool, grid[0]), min(pool, grid[1]))).flatten(1)  # (n, D * cells)
    return torch.cat([pooled[torch.as_tensor(first)], pooled[torch.as_tensor(second)]], 1)


def relative_motion(poses: np.ndarray, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """(pairs, 3) dx, dz (m), dyaw (rad) of camera `second` in camera `first`'s frame (poses (T, 4, 4), camera to
    world, yaw about y as data.driving's poses)."""
    rel = np.linalg.inv(poses[first]) @ poses[second]  # (pairs, 4, 4)
    return np.stack([rel[:, 0, 3], rel[:, 2, 3], np.arctan2(rel[:, 0, 2], rel[:, 0, 0])], 1)


def integrate(motion: np.ndarray, start: np.ndarray | None = None) -> np.ndarray:
    """Chain relative motions (k, 3) into k + 1 camera-to-world poses (k + 1, 4, 4), the first = start (identity)."""
    poses = [np.eye(4) if start is None else np.asarray(start, dtype=np.float64)]
    for dx, dz, dyaw in motion:
        poses.append(poses[-1] @ pose_matrix(dx, dz, dyaw))
    return np.stack(poses)


def odometry_errors(gt: np.ndarray, pred: np.ndarray, lengths: Sequence[float] | None = None,
                    step: int = 10) -> dict[str, float]:
    """KITTI odometry errors of a predicted trajectory pred (T, 4, 4) against gt (T, 4, 4): for every `step`-th
    start frame and each length L, the first frame at least L metres of gt path later; error pose = (pred change)^-1
    (gt change) -> t_err = |its translation| / L in %, r_err = its rotation angle / L in degrees per 100 m, both
    averaged over the stretches; `stretches` counts them (0: the drive is shorter than every length -> NaN).
    lengths: LENGTHS by default."""
    lengths = LENGTHS if lengths is None else lengths
    dist = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(gt[:, :3, 3], axis=0), axis=1))])
    t_errs, r_errs = [], []
    for a in range(0, len(gt), step):
        for L in lengths:
            later = np.nonzero(dist >= dist[a] + L)[0]
            if len(later) == 0:
                continue
            b = later[0]
            err = np.linalg.inv(np.linalg.inv(pred[a]) @ pred[b]) @ (np.linalg.inv(gt[a]) @ gt[b])
            angle = np.arccos(np.clip((np.trace(err[:3, :3]) - 1) / 2, -1.0, 1.0))
            t_errs.append(np.linalg.norm(err[:3, 3]) / L)
            r_errs.append(angle / L)
    if not t_errs:
        return {"t_err": float("nan"), "r_err": float("nan"), "stretches": 0}
    return {"t_err": 100 * float(np.mean(t_errs)), "r_err": 100 * float(np.degrees(np.mean(r_errs))),
            "stretches": len(t_errs)}


def fit_motion(x: torch.Tensor, y: np.ndarray, val_x: torch.Tensor, val_y: np.ndarray) -> tuple[Ridge, float]:
    """Ridge from pair features to (dx, dz, dyaw), targets standardised; L2 strength of the lowest validation
    error (mean squared error of the standardised targets) -> (head predicting unstandardised motion, lambda)."""
    y = torch.from_numpy(y)
    scale = y.std(0) + 1e-9
    best = None
    for lam, head in zip(LAMBDAS, fit_ridges(x, y / scale, LAMBDAS)):
        err = float(((head(val_x) - torch.from_numpy(val_y) / scale) ** 2).mean())
        if best is None or err < best[0]:
            best = (err, head, lam)
    head = best[1]
    return Ridge(head.mu, head.sd, head.w * scale, head.b * scale), best[2]


# ---------------------------------------------------------------- detection

def difficulty_heights(focal: float) -> dict[str, float]:
    """KITTI's least box heights per level scaled to a camera of `focal` px (same distances as in KITTI)."""
    return {k: v[0] * focal / KITTI_FOCAL for k, v in DIFFICULTY.items()}


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(k, 4) x (m, 4) boxes x1 y1 x2 y2 -> (k, m) IoU."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area = lambda x: np.prod(np.clip(x[:, 2:] - x[:, :2], 0, None), axis=1)  # noqa: E731
    return inter / np.maximum(area(a)[:, None] + area(b)[None, :] - inter, 1e-12)


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float = 0.5) -> np.ndarray:
    """Greedy non-maximum suppression -> indices kept, highest score first."""
    order, keep = np.argsort(-scores, kind="stable"), []
    while len(order):
        i = order[0]
        keep.append(i)
        order = order[1:][box_iou(boxes[i:i + 1], boxes[order[1:]])[0] < iou]
    return np.asarray(keep, dtype=np.int64)


def detection_targets(gt_boxes: list[np.ndarray], grid: tuple[int, int], p: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per frame's vehicle boxes (k, 4) -> objectness (n * hw,) in {0, 1} and box targets (n * hw, 4): centre
    offset from the patch centre in patches, log width and log height in patches (rows of negatives are 0)."""
    h, w = grid
    obj = torch.zeros(len(gt_boxes), h * w)
    box = torch.zeros(len(gt_boxes), h * w, 4, dtype=torch.float64)
    for i, bx in enumerate(gt_boxes):
        for b in sorted(bx, key=lambda r: r[3] - r[1]):  # the tallest box last: it wins a shared patch
            cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
            r, c = min(int((cy + 0.5) // p), h - 1), min(int((cx + 0.5) // p), w - 1)  # pixel centres at integers
            k = r * w + c
            obj[i, k] = 1
            box[i, k] = torch.tensor([(cx + 0.5) / p - (c + 0.5), (cy + 0.5) / p - (r + 0.5),
                                      np.log(max(b[2] - b[0], 0.5) / p), np.log(max(b[3] - b[1], 0.5) / p)])
    return obj.view(-1), box.view(-1, 4)


@dataclass
class Detector:
    """Objectness (logistic) and box (ridge) heads on [token, position one-hot] rows."""
    mu: torch.Tensor
    sd: torch.Tensor
    obj_w: torch.Tensor
    box: Ridge

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        z = (x.double() - self.mu) / self.sd
        return torch.sigmoid(z @ self.obj_w[:-1] + self.obj_w[-1])


def _logistic(z: torch.Tensor, y: torch.Tensor, lam: float, iters: int = 100) -> torch.Tensor:
    """L2-regularised logistic regression by L-BFGS on standardised rows z (n, d) -> weights (d + 1,) (bias last)."""
    w = torch.zeros(z.shape[1] + 1, dtype=z.dtype, requires_grad=True)
    opt = torch.optim.LBFGS([w], lr=1, max_iter=iters, history_size=10, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(z @ w[:-1] + w[-1], y.to(z.dtype)) + lam * (w[:-1] ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach()


def detect(det: Detector, tok: torch.Tensor, grid: tuple[int, int], p: int, min_score: float = 0.01,
           nms_iou: float = 0.5, size: tuple[int, int] | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per frame: (boxes (k, 4), scores (k,)) after NMS, boxes clipped to the image."""
    n = tok.shape[0]
    h, w = grid
    H, W = size or (h * p, w * p)
    x = with_position(tok)
    s = det.scores(x).view(n, h * w).numpy()
    b = det.box(x).view(n, h * w, 4).numpy()
    r, c = np.divmod(np.arange(h * w), w)
    out = []
    for i in range(n):
        keep = np.nonzero(s[i] >= min_score)[0]
        cx = (c[keep] + 0.5 + b[i, keep, 0]) * p - 0.5
        cy = (r[keep] + 0.5 + b[i, keep, 1]) * p - 0.5
        bw, bh = np.exp(np.clip(b[i, keep, 2], -5, 5)) * p, np.exp(np.clip(b[i, keep, 3], -5, 5)) * p
        boxes = np.stack([np.clip(cx - bw / 2, 0, W - 1), np.clip(cy - bh / 2, 0, H - 1),
                          np.clip(cx + bw / 2, 0, W - 1), np.clip(cy + bh / 2, 0, H - 1)], 1)
        k = nms(boxes, s[i, keep], nms_iou)
        out.append((boxes[k], s[i, keep][k]))
    return out


def average_precision(dets: list[tuple[np.ndarray, np.ndarray]], gts: list[dict[str, np.ndarray]], level: str,
                      focal: float, iou: float = 0.5) -> float:
    """KITTI AP (R40) at IoU `iou` of one difficulty level. gts: per frame {"box2d" (k, 4), "occluded" (k,),
    "truncated" (k,)}. Ground truth outside the level is ignored, as are detections matched to it and unmatched
    detections shorter than the level's least height; NaN when the level has no ground truth."""
    _, max_occ, max_trunc = DIFFICULTY[level]
    min_h = difficulty_heights(focal)[level]
    scores, tps, n_pos = [], [], 0
    for (boxes, sc), g in zip(dets, gts):
        gb = np.asarray(g["box2d"], dtype=np.float64).reshape(-1, 4)
        care = ((gb[:, 3] - gb[:, 1]) >= min_h) & (np.asarray(g["occluded"]) <= max_occ) & \
            (np.asarray(g["truncated"]) <= max_trunc)
        n_pos += int(care.sum())
        taken = np.zeros(len(gb), dtype=bool)
        ious = box_iou(boxes, gb) if len(gb) and len(boxes) else np.zeros((len(boxes), len(gb)))
        for j in np.argsort(-sc, kind="stable"):
            cand = np.nonzero(~taken & (ious[j] >= iou))[0]
            if len(cand):
                # a cared-for box first (a detection must not be spent on an ignored one), then the best overlap
                k = cand[np.lexsort((-ious[j, cand], ~care[cand]))[0]]
                taken[k] = True
                if care[k]:
                    scores.append(sc[j])
                    tps.append(True)
            elif boxes[j, 3] - boxes[j, 1] >= min_h:
                scores.append(sc[j])
                tps.append(False)
    if n_pos == 0:
        return float("nan")
    order = np.argsort(-np.asarray(scores), kind="stable")
    tp = np.cumsum(np.asarray(tps, dtype=np.float64)[order])
    precision = tp / np.arange(1, len(tp) + 1)
    recall = tp / n_pos
    ap = 0.0
    for r in np.linspace(1 / 40, 1, 40):
        ok = recall >= r - 1e-12
        ap += precision[ok].max() if ok.any() else 0.0
    return float(ap / 40)


def fit_detector(tok: torch.Tensor, boxes: list[np.ndarray], val_tok: torch.Tensor, val_gts: list[dict],
                 grid: tuple[int, int], p: int, focal: float) -> tuple[Detector, float]:
    """Objectness and box heads; the L2 strength (shared by both) of the best validation AP (moderate) ->
    (detector, lambda)."""
    x = with_position(tok).double()
    obj, box = detection_targets(boxes, grid, p)
    mu, sd = x.mean(0), x.std(0) + 1e-6
    z = (x - mu) / sd
    pos = obj > 0
    none = Ridge(mu, sd, torch.zeros(x.shape[1], 4, dtype=torch.float64), torch.zeros(4, dtype=torch.float64))
    box_heads = fit_ridges(x[pos], box[pos], LAMBDAS) if pos.any() else [none] * len(LAMBDAS)
    best = None
    for lam, box_head in zip(LAMBDAS, box_heads):
        det = Detector(mu, sd, _logistic(z, obj, lam), box_head)
        ap = average_precision(detect(det, val_tok, grid, p), val_gts, "moderate", focal)
        ap = -1.0 if np.isnan(ap) else ap
        if best is None or ap > best[0]:
            best = (ap, det, lam)
    return best[1], best[2]
