"""`openjepa bench collapse`: which anti-collapse mechanism keeps I-JEPA alive, at equal compute.

One I-JEPA run per mechanism (same preset, seed, data and step budget; only `reg.*` differs):
`none` (no EMA, no regulariser: the control that should collapse), `ema` (the paper's recipe), `vicreg`,
`sigreg` (LeJEPA's regulariser, no EMA) and `ema+sigreg`. Rows: name, collapsed (final collapse panel),
alarm_fired (the online panel flagged collapse at some step), rankme, linear_top1, knn_top1, train_seconds,
checkpoint. A figure with the online collapse panel of every run over training is written next to the
result file. `quick` uses the smoke preset (a 2-block ViT) so the whole suite runs in about a minute.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from openjepa.config import load_config
from openjepa.eval.evaluate import evaluate_run
from openjepa.train.logging import read_metrics
from openjepa.train.loop import stop_if_unfinished, train
from openjepa.train.run import find_preset, provenance
from openjepa.validate import resolve_config

MECHANISMS = {  # row name -> overrides
    "none": ["--reg.ema=false", "--reg.kind=none"],
    "ema": ["--reg.ema=true", "--reg.kind=none"],
    "vicreg": ["--reg.ema=false", "--reg.kind=vicreg"],
    "sigreg": ["--reg.ema=false", "--reg.kind=sigreg"],
    "ema+sigreg": ["--reg.ema=true", "--reg.kind=sigreg"],
}
FULL = ("ijepa_vit_cpu", ["--train.steps=600", "--train.monitor_every=100", "--eval.train_samples=10000",
                          "--eval.test_samples=10000"])
QUICK = ("smoke", ["--train.steps=60", "--train.monitor_every=20", "--eval.train_samples=2000",
                   "--eval.test_samples=1000"])
PANEL = (("rankme", "RankMe"), ("feat_std", "feature std (l2-normalised)"), ("mean_cos", "mean pairwise cosine"),
         ("knn_top1", "online kNN top-1"))


def plot_panels(runs: dict[str, Path], path: Path) -> None:
    fig = Figure(figsize=(4 * len(PANEL), 3.4))
    axes = fig.subplots(1, len(PANEL))
    for name, run_dir in runs.items():
        rows = [r for r in read_metrics(run_dir) if "rankme" in r]
        for ax, (key, title) in zip(axes, PANEL):
            pts = [(r["step"], r[key]) for r in rows if key in r]
            if pts:
                ax.plot(*zip(*pts), marker="o", ms=3, label=name)
            ax.set_title(title)
            ax.set_xlabel("step")
    axes[0].set_yscale("log")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def run_collapse(quick: bool, workdir: Path, overrides: list[str], out: Path) -> dict[str, Any]:
    suite_dir = Path(workdir) / ("collapse_quick" if quick else "collapse")
    if suite_dir.exists():
        shutil.rmtree(suite_dir)
    preset, budget = QUICK if quick else FULL
    meta = provenance()
    rows, configs, runs = [], {}, {}
    for name, mech in MECHANISMS.items():
        overrides_i = ["--train.progress=false"] + budget + mech + list(overrides)
        cfg = resolve_config(load_config(find_preset(preset), overrides_i))
        configs[name] = cfg.to_dict()
        run_dir = suite_dir / name.replace("+", "_")
        print(f"== bench collapse: {name} ({cfg.train.steps} steps of {preset})")
        t0 = time.time()
        summary = train(cfg, run_dir)
        stop_if_unfinished(summary, f"bench collapse: {name}")
        train_seconds = round(time.time() - t0, 1)
        runs[name] = run_dir
        r = evaluate_run(run_dir / "checkpoints" / "last.pt", baselines=False, overrides=[], name=name)["rows"][0]
        rows.append({"name": name, "collapsed": r["collapsed"], "alarm_fired": summary["collapse_warned"],
                     "rankme": r["rankme"], "linear_top1": r["linear_top1"], "knn_top1": r["knn_top1"],
                     "feat_std": r["feat_std"], "mean_cos": r["mean_cos"], "train_seconds": train_seconds,
                     "checkpoint": r["checkpoint"]})
    figure = Path(out).with_suffix(".png")
    figure.parent.mkdir(parents=True, exist_ok=True)
    plot_panels(runs, figure)
    return {"suite": "collapse", "quick": quick, "preset": preset, "git_sha": meta["git_sha"],
            "machine": meta["machine"], "versions": meta["versions"], "created": meta["created"],
            "configs": configs, "rows": rows, "figure": str(figure)}
