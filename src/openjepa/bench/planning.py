"""`openjepa bench planning`: collect -> train a world model -> plan to goal images, per env and planner.

Budget (full), per model of `MODELS`: 3,000 random-walk episodes as long as one training window
((world.frames - 1) * world.frameskip env steps); the `world_model_<env>` preset (its own step budget, <= 45 min
on 2 CPU cores); then MPC episodes (start and goal in different rooms) with CEM and MPPI (100 samples,
5 iterations, horizon 16 planned actions, one planned action per replan, summed cost), the random-action baseline
on the same episodes, and the same planners on layouts never seen in training (door moved, wall moved). The
`two_rooms_doors` model is trained on doors drawn per episode (`door_y_range`) and tested outside that range.
Rows:

    {"model", "env", "layout", "planner", "episodes", "success_rate", "mean_final_distance", "seconds_per_step", ...}

`seconds_per_step` is amortised over the episodes planned side by side; `latency_s_per_step` is one agent's
planning time per executed step when it plans alone (the issue's <= 1 s target).

plus one energy-landscape figure per model (planning cost over a grid of first actions next to the true distance
after the same plan) and a planned-vs-executed picture, written beside the result file. `quick` runs every row
on a tiny budget (a few minutes): its numbers only show that the pipeline works.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from openjepa.bench.reuse import kept_run, train_run
from openjepa.config import load_config
from openjepa.data.envs import env_kwargs, make_env
from openjepa.data.trajectories import collect
from openjepa.planning.mpc import run_random
from openjepa.planning.run import energy_landscape, load_world_model, plan_episodes, plot_landscape
from openjepa.train.run import find_preset, provenance
from openjepa.validate import resolve_config

class Layout(NamedTuple):
    """A test layout in another env than the model's training env, or with other planners."""
    overrides: list[str]  # env overrides of its episodes
    env: str | None = None  # None: the model's env
    planners: tuple[str, ...] | None = None  # None: the model's planners


class Model(NamedTuple):
    preset: str
    env: str
    data_env: list[str]  # env overrides of its training data
    layouts: dict[str, list[str] | Layout]  # test layout name -> env overrides of its episodes (or a Layout)
    planners: tuple[str, ...]
    policy: str = "random_walk"  # exploration policy of the collected data


def layout_spec(model: Model, spec: list[str] | Layout) -> tuple[str, list[str], tuple[str, ...]]:
    """A layout entry of `model` -> (env name, env overrides, planners)."""
    t = spec if isinstance(spec, Layout) else Layout(list(spec))
    return t.env or model.env, list(t.overrides), t.planners or model.planners


# model name -> Model. "two_rooms" trains on the PLDM layout (door at row 32) and tests there and on layouts it
# never saw; "two_rooms_doors" trains on per-episode doors in rows 20-44 and tests inside that range (row 32) and
# outside it (rows 12 and 52, and the wall moved to column 24); "two_rooms_any" (the layout-general preset) trains
# on random layouts of the "train" split and tests on fresh "train" layouts, on "heldout" layouts (a wall column,
# width, door row or size no training layout has) and on the PLDM layout (its wall column is held out); the same
# model is also tested in Four-Rooms, which it never saw (graph search only: MPPI takes ~25 min a row there).
SAMPLING = ("cem", "mppi")
MODELS = {
    "two_rooms": ("world_model_two_rooms", "two_rooms", [], {
        "train": [],
        "unseen_door_y20": ["--env.door_y=20"],
        "unseen_wall_x24_door_y44": ["--env.wall_x=24", "--env.door_y=44"],
    }, SAMPLING),
    "two_rooms_doors": ("world_model_two_rooms", "two_rooms", ["--env.door_y_range=[20,44]"], {
        "train_door_y32": ["--env.door_y=32"],
        "unseen_door_y12": ["--env.door_y=12"],
        "unseen_door_y52": ["--env.door_y=52"],
        "unseen_wall_x24_door_y32": ["--env.wall_x=24", "--env.door_y=32"],
    }, SAMPLING),
    "two_rooms_any": ("world_model_two_rooms_any", "two_rooms", ["--env.layout=train"], {
        "train_layouts": ["--env.layout=train"],
        "heldout_layouts": ["--env.layout=heldout"],
        "pldm_layout": [],
        "four_rooms_default": Layout([], "four_rooms", ("search",)),
        "four_rooms_doors_moved": Layout(["--env.door_up_y=10", "--env.door_right_x=54"], "four_rooms", ("search",)),
    }, ("mppi", "search")),  # CEM plans like MPPI on this cost and doubles the time of a map model's rows
    "four_rooms": ("world_model_four_rooms", "four_rooms", [], {
        "train": [],
        "unseen_doors_moved": ["--env.door_up_y=10", "--env.door_right_x=54"],
    }, SAMPLING),
    # Push-T from pixels: data from the push policy (it moves the block in ~1/3 of its steps); goals where a scripted
    # push takes the block in 25 steps (DINO-WM-like), or random poses
    "pusht": ("world_model_pusht", "pusht", [], {
        "rollout_goals": [],
        "random_goals": ["--env.goal_mode=random"],
    }, SAMPLING + ("search",), "push"),
}
FULL = {"episodes_data": 3000, "train": [], "episodes": 50, "samples": 100, "iters": 5, "horizon": 16,
        "max_steps": 0}  # 0: the env's own limit (200 Two-Rooms, 300 Four-Rooms)
QUICK = {"episodes_data": 300, "train": ["--train.steps=60", "--train.monitor_every=0", "--world.rollout=8"],
         "episodes": 4, "samples": 48, "iters": 3, "horizon": 8, "max_steps": 40}


def run_planning(quick: bool, workdir: Path, overrides: list[str], out: Path,
                 only: list[str] | None = None, reuse: bool = False) -> dict[str, Any]:
    """Every model of MODELS, or the `only` ones. Their data and runs are made afresh, unless `reuse` keeps a
    finished run under workdir trained with the same settings (it then plans again without collecting or training;
    its train_seconds come from the bench_train.json written when it was trained)."""
    unknown = sorted(set(only or ()) - set(MODELS))
    if unknown:
        raise ValueError(f"bench planning --only: unknown model(s) {unknown}; choose from {sorted(MODELS)}")
    suite_dir = Path(workdir) / ("planning_quick" if quick else "planning")
    if not reuse:
        for name in only or ():
            for sub in (suite_dir / f"data_{name}", suite_dir / f"wm_{name}"):
                if sub.exists():
                    shutil.rmtree(sub)
        if suite_dir.exists() and not only:
            shutil.rmtree(suite_dir)
    b = QUICK if quick else FULL
    meta = provenance()
    rows, configs, figures, reused = [], {}, [], []
    for name, entry in MODELS.items():
        if only and name not in only:
            continue
        spec = Model(*entry)
        data = suite_dir / f"data_{name}"
        cfg = resolve_config(load_config(find_preset(spec.preset),
                                         [f"--data.path={data}", "--train.progress=false", *b["train"], *overrides]))
        steps = (cfg.world.frames - 1) * cfg.world.frameskip  # env steps per episode: one training window
        configs[name] = cfg.to_dict() | {"data_env": spec.data_env, "data_steps": steps}
        run_dir = suite_dir / f"wm_{name}"
        kept = kept_run(cfg, run_dir, name, reuse, "planning")  # planning again needs no data: none is collected
        if kept is not None:
            train_seconds = kept[0]
            reused.append(name)
        else:
            if data.exists():  # a run trained afresh gets fresh data
                shutil.rmtree(data)
            t0 = time.time()
            collect(spec.env, b["episodes_data"], steps, data, policy=spec.policy, seed=0,
                    env_kwargs=env_kwargs(spec.env, spec.data_env), progress=False)
            collect_seconds = round(time.time() - t0, 1)
            print(f"== bench planning: {name}: {b['episodes_data']} episodes of {steps} steps collected in "
                  f"{collect_seconds}s")
            train_seconds = train_run(cfg, run_dir, name, None, "planning", f"{cfg.train.steps} steps")[0]
        model, _ = load_world_model(run_dir)
        env_over = [f"--env.max_steps={b['max_steps']}"] if b["max_steps"] else []
        for layout, lay in spec.layouts.items():
            env_name, lay_over, planners = layout_spec(spec, lay)
            seeds = list(range(10_000, 10_000 + b["episodes"]))
            envs = [make_env(env_name, env_over + lay_over) for _ in seeds]
            rnd = run_random(envs, seeds).summary()
            rows.append({"model": name, "env": env_name, "layout": layout, "planner": "random",
                         "episodes": rnd["episodes"], "success_rate": rnd["success_rate"],
                         "mean_final_distance": rnd["mean_final_distance"], "seconds_per_step": 0.0,
                         "train_seconds": train_seconds})
            for planner in planners:
                pic = Path(out).with_name(f"{Path(out).stem}_{name}_{layout}_{planner}.png")
                t0 = time.time()
                r = plan_episodes(run_dir, env_name, env_over + lay_over, planner=planner, episodes=b["episodes"],
                                  horizon=b["horizon"], samples=b["samples"], iters=b["iters"], seed=10_000,
                                  picture=str(pic), model=model)
                plan_seconds = round(time.time() - t0, 1)
                solo = plan_episodes(run_dir, env_name, env_over + lay_over + ["--env.max_steps=10"], planner=planner,
                                     episodes=1, horizon=b["horizon"], samples=b["samples"], iters=b["iters"],
                                     seed=10_000, model=model)  # one agent alone: its latency per executed step
                r.update(model=name, layout=layout, plan_seconds=plan_seconds, train_seconds=train_seconds,
                         latency_s_per_step=solo["seconds_per_step"],
                         checkpoint=str(run_dir / "checkpoints" / "last.pt"))
                rows.append(r)
                figures.append(str(pic))
                print(f"   {name} {layout} {planner}: success {r['success_rate']:.2f}, "
                      f"distance {r['mean_final_distance']:.1f}, {r['seconds_per_step']:.3f} s/step")
        first_env, first_over, _ = layout_spec(spec, next(iter(spec.layouts.values())))
        land = energy_landscape(model, make_env(first_env, env_over + first_over), seed=10_000,
                                horizon=b["horizon"])
        fig = Path(out).with_name(f"{Path(out).stem}_{name}_energy.png")
        plot_landscape(land, fig, title=f"{name}: start {np.round(land['start'], 1).tolist()}, "
                       f"goal {np.round(land['goal'], 1).tolist()}, constant action for {b['horizon']} steps")
        figures.append(str(fig))
    return {"suite": "planning", "quick": quick, "git_sha": meta["git_sha"], "machine": meta["machine"],
            "versions": meta["versions"], "created": meta["created"], "budget": b, "configs": configs,
            "only": only, "reused": reused, "rows": rows, "figures": figures}
