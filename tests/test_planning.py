"""CEM and MPPI against closed-form optima; the MPC loop; `openjepa plan` end to end on a tiny model."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from openjepa.planning.cem import CEM, project
from openjepa.planning.mpc import PLANNERS, run_mpc, run_random

BOX = (torch.full((2,), -2.0), torch.full((2,), 2.0))


def quadratic(target):
    """cost(a) = sum_h |a_h - target_h|^2: the optimum is a = target (inside the box), cost 0."""
    return lambda a: (a - target[:, None]).pow(2).sum((-1, -2))  # (B, N)


def make(name, horizon, **kw):
    return PLANNERS[name](horizon=horizon, action_low=BOX[0], action_high=BOX[1], samples=300, iters=30, **kw)


@pytest.mark.parametrize("name", sorted(PLANNERS))
def test_solves_a_batched_quadratic(name):
    target = torch.tensor([[[1.0, -0.5], [0.3, 1.5], [-1.2, 0.0]], [[0.0, 0.0], [-1.9, 1.9], [0.5, 0.5]]])  # (B=2, H=3, A=2)
    plan, cost = make(name, 3).plan(quadratic(target), batch=2, generator=torch.Generator().manual_seed(0))
    assert plan.shape == (2, 3, 2)
    assert torch.allclose(plan, target, atol=0.05), (plan, target)
    assert (cost < 0.01).all()


@pytest.mark.parametrize("name", sorted(PLANNERS))
def test_box_constraint_gives_the_clipped_optimum(name):
    target = torch.tensor([[[3.0, -5.0], [0.5, 0.5]]])  # outside the box: the optimum is its clipping
    plan, _ = make(name, 2).plan(quadratic(target), generator=torch.Generator().manual_seed(1))
    assert torch.allclose(plan, target.clamp(-2, 2), atol=0.05)


@pytest.mark.parametrize("name", sorted(PLANNERS))
def test_point_mass_reaches_goal_under_norm_limit(name):
    """s_{h+1} = s_h + a_h with |a_h| <= 1, goal 4 units away in 5 steps: last-step distance 0 is reachable, and the
    summed distance is minimised by going straight at full speed (closed form: sum_h max(0, 4 - h) = 10 - ...)."""
    s0, goal, H = torch.zeros(1, 2), torch.tensor([[4.0, 0.0]]), 5

    def summed(a):
        s = s0[:, None, None] + a.cumsum(2)  # (B, N, H, 2)
        return (s - goal[:, None, None]).norm(dim=-1).sum(-1)

    plan, cost = make(name, H, max_norm=1.0).plan(summed, generator=torch.Generator().manual_seed(2))
    final = s0 + plan.sum(1)
    assert (final - goal).norm() < 0.2
    optimum = sum(max(0.0, 4.0 - h) for h in range(1, H + 1))  # 3 + 2 + 1 + 0 + 0 = 6
    assert cost.item() == pytest.approx(optimum, abs=0.3)
    assert (plan.norm(dim=-1) <= 1.0 + 1e-5).all()


def test_project_clips_box_and_norm():
    a = project(torch.tensor([[3.0, 0.0], [0.6, 0.8]]), *BOX, max_norm=1.5)
    assert torch.allclose(a, torch.tensor([[1.5, 0.0], [0.6, 0.8]]))


def test_cem_validates():
    with pytest.raises(ValueError, match="elites"):
        CEM(horizon=3, action_low=BOX[0], action_high=BOX[1], samples=10, elites=20)


class OracleModel:
    """A 'world model' whose latent is the agent position and whose dynamics ignore walls; encodes by reading the
    dot's centroid from the observation. MPC with it must solve same-room Two-Rooms tasks."""

    def _pos(self, obs):
        img = ((obs + 1) / 2 * 255).clamp(min=0)[:, 0]  # (B, H, W)
        w = (img - 128).clamp(min=0)
        ys, xs = torch.meshgrid(torch.arange(img.shape[1]), torch.arange(img.shape[2]), indexing="ij")
        m = w.sum((1, 2)).clamp_min(1e-6)
        return torch.stack([(w * xs).sum((1, 2)) / m, (w * ys).sum((1, 2)) / m], -1)

    encode_state = encode_goal = _pos

    def imagine(self, s0, a):
        return s0[:, None] + a.cumsum(1)


@pytest.mark.parametrize("name", sorted(PLANNERS))
def test_mpc_with_an_oracle_model_succeeds(name):
    from openjepa.data.envs import make_env
    from openjepa.planning.run import build_planner

    envs = [make_env("two_rooms", start_goal="same_room", max_steps=40) for _ in range(3)]
    planner = build_planner(name, envs[0], horizon=8, samples=64, iters=4)
    res = run_mpc(OracleModel(), envs, [0, 1, 2], planner, replan_every=2, generator=torch.Generator().manual_seed(0))
    assert all(res.success), res.final_distance
    assert res.seconds_per_step > 0 and all(s < 40 for s in res.steps)
    rnd = run_random([make_env("two_rooms", start_goal="same_room", max_steps=40) for _ in range(3)], [0, 1, 2])
    assert np.mean(rnd.final_distance) > np.mean(res.final_distance)


class RepeatOracle(OracleModel):
    """The oracle with temporal abstraction: one model step = `action_repeat` env steps of the held action."""
    action_repeat = 3

    def imagine(self, s0, a):
        return s0[:, None] + (self.action_repeat * a).cumsum(1)


def test_mpc_holds_each_planned_action_for_action_repeat_steps():
    from openjepa.data.envs import make_env
    from openjepa.planning.run import build_planner

    envs = [make_env("two_rooms", start_goal="same_room", max_steps=40) for _ in range(3)]
    planner = build_planner("mppi", envs[0], horizon=4, samples=64, iters=4)
    res = run_mpc(RepeatOracle(), envs, [0, 1, 2], planner, replan_every=1, generator=torch.Generator().manual_seed(0))
    assert all(res.success), res.final_distance
    assert res.action_repeat == 3
    for e in range(3):
        # one plan per 3 env steps (the last plan may stop early at success)
        assert len(res.plans[e]) == -(-res.steps[e] // 3)
        moves = np.diff(np.array(res.paths[e]), axis=0)  # (steps, 2)
        groups = [moves[i:i + 3] for i in range(0, len(moves) - 2, 3)]  # the env steps of one planned action
        held = [np.allclose(g, g[0]) for g in groups]  # equal moves unless a wall cut one short
        assert len(groups) >= 1 and np.mean(held) >= 0.5, held
    with pytest.raises(ValueError, match="replan_every"):
        run_mpc(RepeatOracle(), envs, [0, 1, 2], planner, replan_every=5)


def test_plan_cli_end_to_end_on_a_tiny_model(tmp_path, capsys, one_thread):
    from openjepa.cli import main
    from openjepa.config import build_config
    from openjepa.data.trajectories import collect
    from openjepa.train.loop import train

    data = collect("two_rooms", episodes=24, steps=5, out=tmp_path / "d", seed=0, progress=False)
    cfg = build_config({}, ["--train.method=world_model", "--model.encoder=cnn", "--data.img_size=65",
                            "--model.dim=16", "--model.heads=4", "--model.pred_dim=16", "--model.pred_depth=1",
                            "--model.pred_heads=4", "--world.frames=6", "--world.rollout=5",
                            "--data.dataset=trajectories", f"--data.path={data}", "--data.batch_size=8",
                            "--train.steps=2", "--train.monitor_every=0", "--train.progress=false",
                            "--reg.ema=false", "--reg.kind=vicreg", "--train.precision=fp32"])
    train(cfg, tmp_path / "run", log=lambda *a: None)
    capsys.readouterr()
    pic, gif = tmp_path / "p.png", tmp_path / "e.gif"
    assert main(["plan", str(tmp_path / "run"), "--env", "two_rooms", "--planner", "cem", "--episodes", "2",
                 "--samples", "16", "--iters", "2", "--env.max_steps=4", "--json", "--picture", str(pic),
                 "--gif", str(gif)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"env", "planner", "episodes", "success_rate", "mean_final_distance", "seconds_per_step"} <= set(out)
    assert out["episodes"] == 2 and out["planner"] == "cem" and 0 <= out["success_rate"] <= 1
    assert pic.stat().st_size > 1000 and gif.read_bytes()[:3] == b"GIF"
    assert main(["plan", str(tmp_path / "run"), "--env.no_such_key=1"]) == 2
    assert "env.no_such_key" in capsys.readouterr().err


def test_bench_planning_writes_rows_and_figures(tmp_path, monkeypatch, capsys, one_thread):
    from openjepa.bench import planning
    from openjepa.cli import main

    monkeypatch.setattr(planning, "QUICK", {"episodes_data": 24, "train": ["--train.steps=2", "--train.monitor_every=0",
                                                                         "--world.rollout=4", "--data.batch_size=8"],
                                            "episodes": 2, "samples": 8, "iters": 1, "horizon": 4, "max_steps": 3})
    monkeypatch.setattr(planning, "MODELS", {
        "two_rooms_doors": ("world_model_two_rooms", "two_rooms", ["--env.door_y_range=[20,44]"],
                            {"train": [], "unseen_door_y12": ["--env.door_y=12"],
                             "four_rooms_zero_shot": planning.Layout([], "four_rooms", ("cem",))}, ("cem", "mppi")),
        "four_rooms": ("world_model_four_rooms", "four_rooms", [], {"train": []}, ("cem", "mppi"))})
    out = tmp_path / "planning.json"
    assert main(["bench", "planning", "--quick", "--out", str(out), "--workdir", str(tmp_path / "w"),
                 "--train.precision=fp32", "--model.dim=16", "--model.pred_dim=16"]) == 0
    result = json.loads(out.read_text())
    assert result["suite"] == "planning" and result["git_sha"] and result["machine"]
    keys = {"env", "planner", "episodes", "success_rate", "mean_final_distance", "seconds_per_step", "layout"}
    assert all(keys <= set(r) for r in result["rows"])
    layouts = {(r["env"], r["layout"]) for r in result["rows"]}
    assert {env for env, _ in layouts} == {"two_rooms", "four_rooms"}
    assert ("two_rooms", "train") in layouts and any(lay.startswith("unseen") for _, lay in layouts)
    assert {r["model"] for r in result["rows"]} == {"two_rooms_doors", "four_rooms"}
    for env, layout in layouts:
        want = ["cem", "random"] if layout == "four_rooms_zero_shot" else ["cem", "mppi", "random"]
        assert sorted(r["planner"] for r in result["rows"] if (r["env"], r["layout"]) == (env, layout)) == want
    # the two_rooms_doors model planned in an env it never trained in (Four-Rooms)
    assert {r["env"] for r in result["rows"] if r["layout"] == "four_rooms_zero_shot"} == {"four_rooms"}
    assert any(f.endswith("_energy.png") for f in result["figures"])
    assert result["configs"]["two_rooms_doors"]["data_env"] == ["--env.door_y_range=[20,44]"]
    data_meta = json.loads((tmp_path / "w" / "planning_quick" / "data_two_rooms_doors" / "meta.json").read_text())
    assert data_meta["env_config"]["door_y_range"] == [20, 44]  # training data drew its door per episode
    assert data_meta["steps"] == (result["configs"]["two_rooms_doors"]["world"]["frames"] - 1) * \
        result["configs"]["two_rooms_doors"]["world"]["frameskip"]
    assert all(Path(f).stat().st_size > 1000 for f in result["figures"])

    # --reuse keeps the finished run trained with the same settings: no collection, no training, the same rows
    ckpt = tmp_path / "w" / "planning_quick" / "wm_two_rooms_doors" / "checkpoints" / "last.pt"
    stamp = ckpt.stat().st_mtime_ns
    out2 = tmp_path / "again.json"
    args = ["bench", "planning", "--quick", "--workdir", str(tmp_path / "w"), "--only", "two_rooms_doors",
            "--train.precision=fp32", "--model.dim=16", "--model.pred_dim=16", "--reuse"]
    assert main([*args, "--out", str(out2)]) == 0
    again = json.loads(out2.read_text())
    assert again["reused"] == ["two_rooms_doors"] and ckpt.stat().st_mtime_ns == stamp
    first = [r for r in result["rows"] if r["model"] == "two_rooms_doors"]
    strip = ("seconds_per_step", "plan_seconds", "latency_s_per_step", "picture", "seconds_per_replan")
    assert [{k: v for k, v in r.items() if k not in strip} for r in again["rows"]] == \
        [{k: v for k, v in r.items() if k not in strip} for r in first]
    # other settings: --reuse retrains
    assert main([*args[:-3], "--model.dim=8", "--model.pred_dim=16", "--reuse", "--out", str(out2)]) == 0
    assert json.loads(out2.read_text())["reused"] == [] and ckpt.stat().st_mtime_ns != stamp
