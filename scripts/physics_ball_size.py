"""What-if for the physics benchmark's failures (issue 4): score chosen quadruplets again with the ball drawn
bigger and everything else in the scene the same (physics.make_quadruplet(..., ball_scale=k)).

    python scripts/physics_ball_size.py --prop solidity --seeds 10,34,37 --jepa CKPT [CKPT ...] \\
        [--pixel CKPT [CKPT ...]] [--scales 1.0,1.3]

Seeds are test offsets (seed - 10**9, as in the result files' `failures`). Per model (each an Ensemble of the
checkpoints given) and scale: the quadruplet outcomes (1 right, 0.5 tie, 0 wrong) and their mean. A quadruplet
whose scene the bigger ball changed (its first draw became unusable, so the generator drew again) is marked '*'.
"""
from __future__ import annotations

import argparse

import numpy as np

from openjepa.bench.physics_scoring import quad_outcomes, surprise_table
from openjepa.data.physics import PROPERTIES, TEST_SEED, make_quadruplet
from openjepa.eval.surprise import Ensemble
from openjepa.train.checkpoint import load_method


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prop", choices=PROPERTIES, required=True)
    ap.add_argument("--seeds", required=True, help="comma-separated test offsets, e.g. 10,34,37")
    ap.add_argument("--jepa", nargs="+", required=True)
    ap.add_argument("--pixel", nargs="*", default=[])
    ap.add_argument("--scales", default="1.0,1.3")
    args = ap.parse_args()
    seeds = [TEST_SEED + int(s) for s in args.seeds.split(",")]
    scales = [float(k) for k in args.scales.split(",")]
    models = {name: Ensemble([load_method(c)[0] for c in ckpts])
              for name, ckpts in (("jepa", args.jepa), ("pixel", args.pixel)) if ckpts}
    cfg = models["jepa"].cfg  # the pixel twin shares the frame size and channels
    geo = {"T": cfg.video.physics_frames, "size": cfg.data.img_size, "channels": cfg.data.channels}
    base = [make_quadruplet(args.prop, s, **geo) for s in seeds]
    print(f"{args.prop}, seeds {args.seeds}")
    for k in scales:
        quads = [make_quadruplet(args.prop, s, ball_scale=k, **geo) for s in seeds]
        changed = ["*" if not np.array_equal(q.possible[0][0, -1], b.possible[0][0, -1]) else "" for q, b in
                   zip(quads, base)]
        for name, m in models.items():
            out = quad_outcomes([[v["surprise_mean"] for v in row] for row in surprise_table(m, quads, "cpu")])
            cells = " ".join(f"{o:g}{c}" for o, c in zip(out, changed))
            print(f"  ball x{k:<4g} {name:<6} {out.mean():.3f}   [{cells}]")


if __name__ == "__main__":
    main()
