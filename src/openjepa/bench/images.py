"""`openjepa bench images`: frozen-feature quality on Fashion-MNIST at a fixed CPU training budget.

Rows (one run, one evaluation split): `raw_pixels` (no learning), `random_init` (the same encoder, untrained),
and one row per trained model, all with the same ViT (dim 192, depth 6, patch 4) and the same step budget:
- `ijepa`: configs/ijepa_vit_cpu.yaml with the paper's recipe (EMA target + stop-gradient only);
- `ijepa_vicreg`: the same plus VICReg variance/covariance on the pooled context embeddings (the preset);
- `ijepa_sigreg`: no EMA (the online encoder under stop-gradient is the target) plus SIGReg;
- `mae`: the same encoder, masks and predictor regressing normalised *pixels* (the pixel-space baseline);
- `lejepa`: configs/lejepa_vit_cpu.yaml (2 global + 2 local views, no predictor, SIGReg), whose batch of 64
  images x 4 views costs about one I-JEPA step of 128 images, so equal steps is about equal compute.
Each row: name, linear_top1, knn_top1, rankme, feat_std, mean_cos, collapsed, train_seconds (+ checkpoint for
models), and `protocols`: {mean, lastk, layernorm, attentive: {linear_top1, knn_top1 where it applies, ...}},
every row under the same probes (eval/protocols.py; raw pixels attend over pixel patches). `quick` shrinks the
training and the probe sets so the whole suite runs in a few minutes; it still produces every row.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import torch

from openjepa.config import EVAL_PROTOCOLS, config_to_yaml, load_config
from openjepa.eval.evaluate import evaluate_run
from openjepa.eval.plots import protocol_bars
from openjepa.methods import METHODS
from openjepa.train.checkpoint import save_checkpoint
from openjepa.train.loop import stop_if_unfinished, train
from openjepa.train.run import find_preset, provenance
from openjepa.validate import resolve_config

FULL = ["--train.steps=1500", "--train.monitor_every=250", "--eval.train_samples=60000", "--eval.test_samples=10000"]
QUICK = ["--train.steps=60", "--train.monitor_every=30", "--train.monitor_samples=256",
         "--eval.train_samples=5000", "--eval.test_samples=2000"]
VARIANTS = {  # row name -> (preset, overrides on top of it)
    "ijepa": ("ijepa_vit_cpu", ["--reg.kind=none"]),
    "ijepa_vicreg": ("ijepa_vit_cpu", ["--reg.kind=vicreg"]),
    "ijepa_sigreg": ("ijepa_vit_cpu", ["--reg.ema=false", "--reg.kind=sigreg"]),
    "mae": ("ijepa_vit_cpu", ["--train.method=mae", "--reg.kind=none"]),
    "lejepa": ("lejepa_vit_cpu", []),
}
ALL_PROTOCOLS = ["--eval.protocols=" + ",".join(EVAL_PROTOCOLS)]  # every row under every probe (before overrides)
ROW_KEYS = ("name", "linear_top1", "knn_top1", "rankme", "feat_std", "mean_cos", "collapsed", "train_seconds",
            "protocols")


def save_random_init(cfg, run_dir: Path) -> Path:
    """The untrained baseline as a checkpoint (seeded exactly as evaluate_run's random_init row)."""
    torch.manual_seed(cfg.train.seed)
    method = METHODS[cfg.train.method](cfg)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(config_to_yaml(cfg, provenance()))
    path = run_dir / "checkpoints" / "last.pt"
    save_checkpoint({"model": method.state_dict(), "optimizer": {}, "step": 0, "best": 0.0,
                     "rng": torch.get_rng_state(), "config": cfg.to_dict()}, path)
    return path


def _row(r: dict, **extra) -> dict:
    return {**{k: r[k] for k in ROW_KEYS if k in r}, **extra}


def run_images(quick: bool, workdir: Path, overrides: list[str], out: Path) -> dict[str, Any]:
    suite_dir = Path(workdir) / ("images_quick" if quick else "images")
    if suite_dir.exists():
        shutil.rmtree(suite_dir)
    budget = (QUICK if quick else FULL) + ALL_PROTOCOLS + list(overrides)
    meta = provenance()  # taken before training: the code that ran
    rows, warnings, configs = [], [], {}
    for i, (name, (preset, variant)) in enumerate(VARIANTS.items()):
        cfg = resolve_config(load_config(find_preset(preset), budget + variant))
        configs[name] = cfg.to_dict()
        print(f"== bench images: training {name} ({cfg.train.steps} steps)")
        t0 = time.time()
        summary = train(cfg, suite_dir / name)
        stop_if_unfinished(summary, f"bench images: {name}")
        train_seconds = round(time.time() - t0, 1)
        # the final model at the fixed budget (best.pt is chosen by the online probe; not used here)
        result = evaluate_run(suite_dir / name / "checkpoints" / "last.pt", baselines=(i == 0), overrides=[], name=name)
        warnings += result["warnings"]
        for r in result["rows"]:
            if r["name"] == name:
                rows.append(_row(r, train_seconds=train_seconds, steps=summary["steps"],
                                 checkpoint=r["checkpoint"]))
            elif r["name"] == "random_init":
                rows.append(_row(r, train_seconds=0.0, checkpoint=str(save_random_init(cfg, suite_dir / "random_init"))))
            else:
                rows.append(_row(r, train_seconds=0.0))
    order = {"raw_pixels": 0, "random_init": 1}
    rows.sort(key=lambda r: order.get(r["name"], 2))
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    figure = protocol_bars(rows, Path(out).with_name(f"{Path(out).stem}_protocols.png"),
                           f"bench images{' --quick' if quick else ''}: linear top-1 per probe protocol, "
                           f"{cfg.train.steps} steps per model")
    return {"suite": "images", "quick": quick, "git_sha": meta["git_sha"], "machine": meta["machine"],
            "versions": meta["versions"], "created": meta["created"], "configs": configs, "rows": rows,
            "warnings": warnings, "figure": figure}
