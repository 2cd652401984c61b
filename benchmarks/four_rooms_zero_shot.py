"""Four-Rooms planned zero-shot by the layout-general Two-Rooms model (trained on random Two-Rooms layouts only).

    openjepa bench planning --only two_rooms_any --workdir W        # trains W/planning/wm_two_rooms_any
    python benchmarks/four_rooms_zero_shot.py W/planning/wm_two_rooms_any/checkpoints/last.pt OUT.json

Rows: random and graph search (add MPPI with a third argument `search,mppi`: ~25 min a row on 2 CPU cores) on the
default Four-Rooms layout and with two doors moved, 50 episodes each (seeds 10,000-10,049, the bench's), plus a
planned-vs-executed picture per row beside OUT.json.
"""
import json, sys, time
from openjepa.planning.run import plan_episodes, load_world_model
from openjepa.planning.mpc import run_random
from openjepa.data.envs import make_env
from openjepa.train.run import provenance
run, out = sys.argv[1], sys.argv[2]
planners = sys.argv[3].split(",") if len(sys.argv) > 3 else ["search"]
model, cfg = load_world_model(run)
rows = []
for layout, over in (("four_rooms_default", []), ("four_rooms_doors_moved", ["--env.door_up_y=10", "--env.door_right_x=54"])):
    seeds = list(range(10_000, 10_050))
    rnd = run_random([make_env("four_rooms", over) for _ in seeds], seeds).summary()
    rows.append({"model": "two_rooms_any", "env": "four_rooms", "layout": layout, "planner": "random", **rnd})
    for planner in planners:
        t = time.time()
        r = plan_episodes(run, "four_rooms", over, planner=planner, episodes=50, horizon=16, samples=100, iters=5,
                          seed=10_000, model=model, picture=out.replace(".json", f"_{layout}_{planner}.png"))
        r.update(model="two_rooms_any", layout=layout, plan_seconds=round(time.time() - t, 1))
        rows.append(r)
        print(layout, planner, r["success_rate"], round(r["mean_final_distance"], 1), r["plan_seconds"], flush=True)
meta = provenance()
json.dump({"suite": "planning_four_rooms_zero_shot", "command": "python benchmarks/four_rooms_zero_shot.py " + " ".join(sys.argv[1:]),
           "checkpoint": run, "git_sha": meta["git_sha"], "machine": meta["machine"], "versions": meta["versions"],
           "created": meta["created"], "rows": rows}, open(out, "w"), indent=2)
print("wrote", out)
