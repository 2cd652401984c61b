"""Choose the graph search's surprise-memory settings on validation layouts, never on the bench's test rows.

    python scripts/planning_validation.py RUN_DIR [--settings JSON ...] [--four-rooms-episodes 20]
                                          [--two-rooms-episodes 30] [--threads 1] [--out FILE.jsonl]

RUN_DIR: a `world_model_two_rooms_any` run (e.g. the one `openjepa bench planning --only two_rooms_any` trains
under its workdir: planning/wm_two_rooms_any). Each setting (a JSON object of GraphSearch fields, e.g.
'{"recall": 0.75}'; null for `recall` means the merge radius) is scored with graph search on three validation
sets, all seeded from 20,000 (the bench plans seeds 10,000+):
  - Four-Rooms with doors at (up 22, down 40, left 12, right 40) and at (up 8, down 52, left 26, right 56): door
    layouts the bench's Four-Rooms rows never use (default 16 / 46 / 18 / 48, and doors moved 10 / 46 / 18 / 54);
  - fresh Two-Rooms `train` layouts (never the held-out band).
It prints one JSON line per (setting, set) and a table with the mean over the three sets; pick the best mean.
The default settings are the ones with the memory of planning/search.py as committed.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from openjepa.planning import search
from openjepa.planning.run import load_world_model, plan_episodes

VALIDATION = {
    "four_rooms_A": ("four_rooms", ["--env.door_up_y=22", "--env.door_down_y=40", "--env.door_left_x=12",
                                    "--env.door_right_x=40"]),
    "four_rooms_B": ("four_rooms", ["--env.door_up_y=8", "--env.door_down_y=52", "--env.door_left_x=26",
                                    "--env.door_right_x=56"]),
    "two_rooms_train": ("two_rooms", ["--env.layout=train"]),
}
SETTINGS = ['{"recall": null, "surprise": 0.8}', '{"recall": null}', '{"recall": 0.5}', '{"recall": 0.75}',
            '{"recall": 1.0}']
SEED = 20_000
HORIZON = 16  # planned actions, as the bench


def score(run: Path, setting: dict, episodes: dict[str, int], model) -> list[dict]:
    unknown = set(setting) - set(search.GraphSearch.__dataclass_fields__)
    if unknown:
        raise SystemExit(f"unknown GraphSearch field(s) {sorted(unknown)}")
    rows = []
    for name, (env, over) in VALIDATION.items():
        t0 = time.time()
        r = plan_episodes(run, env, over, planner="search", episodes=episodes[env], seed=SEED, model=model,
                          horizon=HORIZON, settings=setting)
        rows.append({"setting": setting, "set": name, "episodes": episodes[env], "success_rate": r["success_rate"],
                     "mean_final_distance": round(r["mean_final_distance"], 2), "seconds": round(time.time() - t0)})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path)
    ap.add_argument("--settings", nargs="+", default=SETTINGS, help="JSON objects of GraphSearch fields")
    ap.add_argument("--four-rooms-episodes", type=int, default=20)
    ap.add_argument("--two-rooms-episodes", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (planning is many small ops)")
    ap.add_argument("--out", type=Path, help="also append the JSON lines here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model, _ = load_world_model(args.run)
    episodes = {"four_rooms": args.four_rooms_episodes, "two_rooms": args.two_rooms_episodes}
    table = []
    for text in args.settings:
        rows = score(args.run, json.loads(text), episodes, model)
        if args.out:
            with args.out.open("a") as f:
                f.writelines(json.dumps(r) + "\n" for r in rows)
        mean = sum(r["success_rate"] for r in rows) / len(rows)
        table.append((text, [r["success_rate"] for r in rows], mean))
    print(f"\n{'setting':40s} " + " ".join(f"{n:>16s}" for n in VALIDATION) + f" {'mean':>6s}")
    for text, rates, mean in table:
        print(f"{text:40s} " + " ".join(f"{r:16.0%}" for r in rates) + f" {mean:6.0%}")


if __name__ == "__main__":
    main()
