"""`openjepa bench images_curve --only NAME`: how long one recipe of the images search must train, as validation
probe accuracy against training minutes (issue 23: "show the curve ... and say which budget crosses raw pixels").

NAME is one candidate of `bench images_search` (CANDIDATES). It trains once for CURVE_STEPS steps
(`--train.steps=N` changes it), keeping a checkpoint every steps / POINTS steps, and every kept checkpoint is
scored as the search scores a candidate: the probes fit on 50,000 train images and are scored on the search's
validation carve of 10,000 (the test split is never read; pretraining leaves the carve out). Rows: `raw_pixels`
and `random_init` (the references, as in the search), then one row per checkpoint: name (NAME@step), step,
train_seconds (the loop's own clock, carried by the checkpoint), linear_top1, knn_top1, protocols, rankme,
collapsed, checkpoint. `crosses_raw_pixels`: per protocol, the first checkpoint whose linear top-1 reaches raw
pixels' under the same protocol ({step, minutes}, or None when none does). Figure: `<out stem>.png`, linear top-1
per protocol against training minutes, raw pixels dashed.

Read it as a lower bound for short budgets: the learning rate follows one cosine schedule over the whole run, so
an early checkpoint is mid-schedule, where a run given that budget would have annealed (and usually scores
higher). `--reuse` keeps or resumes the run under the workdir trained with the same settings (eval.* aside).
`--quick`: 20 steps, a few thousand probe images; a smoke run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from openjepa.bench.images_search import (CANDIDATES, NO_EVAL, REFERENCE, VAL_IMAGES, candidate_config,
                                          score_references, score_split)
from openjepa.bench.reuse import train_or_keep, write_result
from openjepa.eval.plots import curve_figure
from openjepa.train.checkpoint import load_method, step_files
from openjepa.train.run import provenance

CURVE_STEPS = 9000  # 6x the search's budget: about 1.5-2.5 h on 2 CPU cores for the search's candidates
POINTS = 8  # checkpoints scored along the run


def run_images_curve(quick: bool, workdir: Path, overrides: list[str], out: Path, only: list[str] | None = None,
                     reuse: bool = False) -> dict[str, Any]:
    """Train candidate `only[0]` for CURVE_STEPS (or --train.steps) and score POINTS checkpoints along the way."""
    if not only or len(only) != 1 or only[0] not in CANDIDATES:
        raise ValueError(f"bench images_curve needs --only NAME, one of {list(CANDIDATES)}; got {only}")
    name = only[0]
    steps = 20 if quick else CURVE_STEPS
    every = max(1, candidate_config(name, quick, overrides, steps).train.steps // POINTS)  # --train.steps=N counts
    cfg = candidate_config(name, quick, [f"--train.ckpt_every={every}", f"--train.keep_last={POINTS + 1}",
                                         *overrides], steps)
    run_dir = Path(workdir) / ("images_curve_quick" if quick else "images_curve") / name
    meta = provenance()  # taken before training: the code that ran
    splits: dict = {}
    rows = score_references(quick, overrides, steps, run_dir.parent, splits)
    train_seconds, reused, _ = train_or_keep(cfg, run_dir, name, reuse, "images_curve", ignore=NO_EVAL,
                                             hint=" (--reuse resumes it)")
    keep = ("linear_top1", "knn_top1", "protocols", "rankme", "collapsed")
    for path in sorted(step_files(run_dir / "checkpoints"), key=lambda p: p.name):
        method, _, state = load_method(path)
        row = score_split(f"{name}@{int(state['step'])}", method.eval_encoder(), cfg, splits)
        rows.append({"name": row["name"], "step": int(state["step"]),
                     "train_seconds": state.get("train_seconds"), **{k: row[k] for k in keep if k in row},
                     "checkpoint": str(path)})
    pixels = rows[0]["protocols"]
    crosses: dict[str, dict | None] = {}
    for p in pixels:
        hit = next((r for r in rows[2:] if p in r["protocols"]
                    and r["protocols"][p]["linear_top1"] >= pixels[p]["linear_top1"]), None)
        crosses[p] = None if hit is None else {"step": hit["step"], "minutes": _minutes(hit["train_seconds"])}
    figure = Path(out).with_suffix(".png")
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    curve_figure(rows, figure, f"images_curve: {name}, validation linear top-1 vs training time")
    result = {"suite": "images_curve", "quick": quick, "candidate": name, "git_sha": meta["git_sha"],
              "machine": meta["machine"], "versions": meta["versions"], "created": meta["created"],
              "split": {"scored_on": "validation carve of the Fashion-MNIST train split; the test split is never read",
                        "val_images": VAL_IMAGES, "reference": REFERENCE},
              "configs": {name: cfg.to_dict()}, "steps": cfg.train.steps, "train_seconds": train_seconds,
              "reused": reused, "rows": rows, "crosses_raw_pixels": crosses, "figure": str(figure)}
    write_result(out, result)
    return result


def _minutes(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 60, 1)
