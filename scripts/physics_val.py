"""Validation sweep for the physics benchmark (issue 4): train a video model with config overrides, score
matched quadruplets from VALIDATION seeds (TEST_SEED + 10**6 ...: test hues, disjoint from training seeds and
from the benchmark's test seeds TEST_SEED + [0, n)), under several surprise read-outs of the same per-token
errors. Usage: python scripts/physics_val.py OUT_DIR [--pixel] [--untrained] [--n 8] -- --override=value ...

Ensembles: python scripts/physics_val.py OUT_DIR --score CKPT [CKPT ...] [--n 40] trains nothing; it scores
the finished checkpoints on the validation quadruplets with the benchmark's read-out (surprise_mean), each alone,
every pair and all together as eval.surprise.Ensemble, and writes OUT_DIR/ensembles.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from openjepa.bench.physics import QUICK
from openjepa.bench.physics_scoring import score_property
from openjepa.config import load_config
from openjepa.data.physics import PROPERTIES, TEST_SEED, test_quadruplets
from openjepa.data.transforms import normalize
from openjepa.data.video import pad_frames
from openjepa.eval.surprise import window_starts
from openjepa.methods import METHODS
from openjepa.train.checkpoint import load_method
from openjepa.train.loop import train
from openjepa.train.run import find_preset

VAL_SEED = TEST_SEED + 10**6


@torch.no_grad()
def token_errors(m, clips, C):
    e = m.future_token_error(clips, C)  # (b, Kt)
    return e.view(e.shape[0], -1, m.grid[1] * m.grid[2])  # (b, S, hw)


def readouts(m, v):
    cfg = m.cfg
    W, t, C = cfg.video.frames, cfg.video.tubelet, cfg.video.context_frames
    x = torch.from_numpy(v).permute(3, 0, 1, 2).contiguous()
    xp = pad_frames(x, W)
    starts = window_starts(xp.shape[1], W, t)
    clips = normalize(torch.stack([xp[:, s:s + W] for s in starts]))
    e = token_errors(m.eval(), clips, C)  # (nw, S, hw)
    mean_s, max_s = e.mean(-1), e.amax(-1)  # (nw, S)
    return {"mean": mean_s.mean().item(), "wmax": mean_s.mean(1).max().item(),
            "tokmax": max_s.mean().item(), "tokmax_wmax": max_s.mean(1).max().item(),
            "h0_wmax": mean_s[:, 0].max().item(), "h0tok_wmax": max_s[:, 0].max().item(),
            "h0_mean": mean_s[:, 0].mean().item()}


def evaluate(m, quads):
    per = {}
    for q in quads:
        r = [readouts(m, v) for v in (*q.possible, *q.impossible)]
        per.setdefault(q.prop, []).append(r)
    out = {}
    for prop, rows in per.items():
        out[prop] = {k: score_property([tuple(x[k] for x in r) for r in rows])["relative_accuracy"]
                     for k in rows[0][0]}
    return out


def score_ensembles(out: Path, ckpts: list[str], n: int) -> None:
    from itertools import combinations

    from openjepa.eval.surprise import Ensemble, video_surprise

    models = [load_method(c)[0] for c in ckpts]
    cfg = models[0].cfg
    quads = test_quadruplets(n, T=cfg.video.physics_frames, size=cfg.data.img_size, channels=cfg.data.channels,
                             seed=VAL_SEED)
    videos = [[torch.from_numpy(v).permute(3, 0, 1, 2).contiguous() for v in (*q.possible, *q.impossible)]
              for q in quads]
    # (model, quadruplet, video) window errors; an ensemble's windows are the mean of its members' (linear)
    wins = [[[video_surprise(m, x)["windows"] for x in vs] for vs in videos] for m in models]
    groups = [(i,) for i in range(len(models))] + list(combinations(range(len(models)), 2))
    if len(models) > 2:
        groups.append(tuple(range(len(models))))
    res = {"checkpoints": ckpts, "n": n}
    for g in groups:
        scores = [[float(np.mean(np.mean([wins[i][k][v] for i in g], 0))) for v in range(4)] for k in range(len(quads))]
        res["+".join(map(str, g))] = {p: score_property([s for s, q in zip(scores, quads) if q.prop == p])[
            "relative_accuracy"] for p in PROPERTIES}
    # the shortcut above equals scoring with Ensemble itself (checked on the first quadruplet's first video)
    e = video_surprise(Ensemble(models), videos[0][0])["surprise_mean"]
    assert abs(e - float(np.mean(np.mean([wins[i][0][0] for i in range(len(models))], 0)))) < 1e-5 * max(e, 1e-8)
    out.mkdir(parents=True, exist_ok=True)
    (out / "ensembles.json").write_text(json.dumps(res, indent=1))
    for g in groups:
        r = res["+".join(map(str, g))]
        print(f"{'+'.join(map(str, g)):>8}: " + " ".join(f"{r[p]:.3f}" for p in PROPERTIES) + f"  min {min(r.values()):.3f}")


def main():
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--pixel", action="store_true")
    ap.add_argument("--pixel-only", action="store_true")
    ap.add_argument("--untrained", action="store_true")
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--steps", type=int, default=160)
    ap.add_argument("--score", nargs="+", metavar="CKPT", help="score these finished checkpoints (alone, in pairs, "
                    "all together) instead of training")
    a = ap.parse_args(argv)
    out = Path(a.out)
    if a.score:
        return score_ensembles(out, a.score, a.n)
    base = ["--train.progress=false", "--train.device=cpu"] + QUICK["overrides"] + [f"--train.steps={a.steps}",
                                                                                   f"--train.ckpt_every={a.steps}"]
    res = {"overrides": extra, "steps": a.steps}
    models = {} if a.pixel_only else {"jepa": "vjepa_physics_cpu"}
    models |= {"pixel": "vpixel_physics_cpu"} if a.pixel or a.pixel_only else {}
    quads = None
    for name, preset in models.items():
        cfg = load_config(find_preset(preset), base + extra)
        if quads is None:
            quads = test_quadruplets(a.n, T=cfg.video.physics_frames, size=cfg.data.img_size,
                                     channels=cfg.data.channels, seed=VAL_SEED)
        t0 = time.time()
        train(cfg, out / name)
        res[f"{name}_train_s"] = round(time.time() - t0, 1)
        m = load_method(out / name / "checkpoints" / "last.pt")[0]
        res[name] = evaluate(m, quads)
        if name == "jepa" and a.untrained:
            torch.manual_seed(1000)
            res["untrained"] = evaluate(METHODS["vjepa"](m.cfg).eval(), quads)
    (out / "val.json").write_text(json.dumps(res, indent=1))
    keys = list(res[next(iter(models))]["gravity"])
    for name in ("jepa", "pixel", "untrained"):
        if name not in res:
            continue
        print(f"{name}: " + " | ".join(f"{k} " + " ".join(f"{res[name][p][k]:.2f}" for p in PROPERTIES)
                                       + f" avg {np.mean([res[name][p][k] for p in PROPERTIES]):.2f}" for k in keys))
    print({k: v for k, v in res.items() if k.endswith("_s")})


if __name__ == "__main__":
    main()
