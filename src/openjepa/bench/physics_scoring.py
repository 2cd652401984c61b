"""Scoring for `openjepa bench physics` (violation of expectation, Garrido et al. 2025): each test quadruplet's
four videos (possible A, B; impossible splices C, D) get a surprise, and per property:

    relative_accuracy  share of quadruplets whose two possible videos are together less surprising than the two
                       impossible ones (ties count 1/2): IntPhys' relative score
    auroc              possible-vs-impossible AUROC over every video of the property (no matching used);
                       `auroc_matched` is the same after centring each quadruplet's four scores
    excess_peak_*      where the violation shows in time: the frame at which the impossible pair's per-frame
                       excess surprise, (C + D) - (A + B), peaks, relative to the first impossible frame
    failures           test seeds of the quadruplets the model got wrong or tied
    quad_scores        each quadruplet's four scores (A, B, C, D), in test-seed order

A video's score is its mean window error (`surprise_mean`; the largest window error gives the `*_max` fields):
with a sum over frames, a scorer blind to dynamics ties on every quadruplet, since C + D show exactly the frames
of A + B. Also here: an ensemble's table from its members' tables (`mean_table`), several result files merged
into one ensemble (`merge_results`) and a paired bootstrap comparison of two models (`compare`), and the
`CopyLast` reference scorer.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from openjepa.data.physics import PROPERTIES
from openjepa.eval.surprise import video_surprise

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
