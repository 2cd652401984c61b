"""Push-T (data/envs/pusht.py): gymnasium conformance, determinism, the goal image, the success test against a
scripted pusher and a random policy, the border, the push exploration policy and collected data, and the
world_model_pusht preset trained a few steps and planned with."""

import json
import math

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from openjepa.data.envs import ENVS, make_env
from openjepa.data.envs.pusht import PushTConfig, PushTEnv, rotate, t_polygons
from openjepa.data.trajectories import POLICIES, collect, free_start, load_trajectories


def push_through_centre(env: PushTEnv) -> np.ndarray:
    """Scripted pusher: stand behind the block on the line from its centre to the goal centre and push along it."""
    b, g = env.block_pose, env.goal_pose
    gap = g[:2] - b[:2]
    dist = float(np.linalg.norm(gap))
    u = gap / max(dist, 1e-9)
    behind = b[:2] - (env.block_radius + env.cfg.agent_radius + 0.2) * u
    d = behind - env.pos
    if np.linalg.norm(d) > 1.0:
        return d * min(1.0, env.cfg.max_step / np.linalg.norm(d))
    return u * min(env.cfg.max_step, dist) + 0.5 * d


def stem_push_episode(env: PushTEnv, seed: int, shift: float, turn: float = 0.0) -> dict:
    """Reset with the goal `shift` px along the T's axis (bar first) and `turn` rad rotated, the pusher at the
    stem's end: pushing through the centre there translates the block without turning it."""
    rng = np.random.default_rng(seed)
    theta, centre = rng.uniform(-math.pi, math.pi), rng.uniform(24, 40, 2)
    u = rotate(np.array([0.0, -1.0]), theta)  # from the stem's end towards the bar
    start = centre - (env.block_radius + env.cfg.agent_radius + 0.2) * u
    return {"block": [*centre, theta], "start": start, "goal": [*(centre + shift * u), theta + turn]}


def test_passes_gymnasium_checker_and_shapes():
    env = PushTEnv()
    check_env(env, skip_render_check=False)
    obs, info = env.reset(seed=0)
    assert obs.shape == (1, 64, 64) and obs.dtype == np.uint8 and env.observation_space.contains(obs)
    assert env.render().shape == (64, 64, 3) and env.goal_obs().shape == (1, 64, 64)
    assert info["pos"].shape == (2,) and info["block"].shape == (3,) and info["goal"].shape == (2,)
    rgb = make_env("pusht", ["--env.channels=3"])
    check_env(rgb)
    assert rgb.reset(seed=0)[0].shape == (3, 64, 64) and ENVS["pusht"][0] is PushTEnv


def test_deterministic_under_seed():
    runs = []
    for _ in range(2):
        env = PushTEnv()
        obs, info = env.reset(seed=7)
        trace, rng = [obs], np.random.default_rng(0)
        act = POLICIES["push"](env, rng)
        for _ in range(30):
            obs, _, _, _, info = env.step(act(obs, info))
            trace.append(obs)
        runs.append((np.stack(trace), info["block"], env.goal_pose.copy()))
    assert np.array_equal(runs[0][0], runs[1][0])
    assert np.array_equal(runs[0][1], runs[1][1]) and np.array_equal(runs[0][2], runs[1][2])
    assert not np.allclose(PushTEnv().reset(seed=8)[1]["block"], PushTEnv().reset(seed=7)[1]["block"])


def test_goal_obs_shows_the_goal_configuration():
    env = PushTEnv()
    for seed in range(3):
        obs, info = env.reset(seed=seed)
        goal, goal_agent, d0 = env.goal_pose.copy(), env.goal_agent.copy(), info["distance"]
        g = env.goal_obs()
        assert d0 >= env.cfg.min_goal_distance and not np.array_equal(g, obs)
        # the goal image is the picture of the scene set to the goal: block at the goal pose, pusher at goal_agent
        there, info = env.reset(seed=seed, options={"block": goal, "start": goal_agent, "goal": goal})
        assert np.array_equal(there, g) and info["success"] and info["distance"] < 1e-9
    # and a rollout goal is a pose the physics reaches: replaying the scripted push from the start gets there
    assert 4.0 <= d0 < 60.0


def test_scripted_push_succeeds_where_a_random_policy_does_not():
    env = PushTEnv()
    for seed in range(5):
        env.reset(seed=seed, options=stem_push_episode(env, seed, shift=12.0))
        for _ in range(30):
            _, _, term, _, info = env.step(push_through_centre(env))
            if term:
                break
        assert term and info["success"], (seed, info)
    # the same push cannot meet a goal turned by 45 degrees: success needs the angle too
    env.reset(seed=0, options=stem_push_episode(env, 0, shift=12.0, turn=math.pi / 4))
    for _ in range(30):
        env.step(push_through_centre(env))
    assert np.linalg.norm(env.block_pose[:2] - env.goal_pose[:2]) < env.cfg.success_pos and not env.is_success()
    # uniform random actions on the default (rollout) goals within the episode limit: measured 0 of 50
    wins = 0
    for seed in range(10):
        env.reset(seed=1000 + seed)
        rng = np.random.default_rng(seed)
        for _ in range(env.cfg.max_steps):
            _, _, term, trunc, _ = env.step(rng.uniform(env.action_space.low, env.action_space.high))
            if term or trunc:
                break
        wins += int(term)
    assert wins <= 1


def test_pusher_cannot_squeeze_the_block_through_the_border():
    env = PushTEnv()
    c = env.cfg
    top = -t_polygons(c)[0][0, 1]  # the bar's outer edge to the block centre
    # the bar flat against the left wall, the stem towards the pusher, which drives left into it for 40 steps:
    # an infinitely strong (kinematic) pusher alone would press the block 4 px into the wall
    env.reset(seed=0, options={"block": [c.border + top + 0.5, 32.0, -math.pi / 2], "start": [40.0, 32.0]})
    for _ in range(40):
        env.step([-c.max_step, 0.0])
    corners = rotate(env._outline, env.block_pose[2]) + env.block_pose[:2]
    assert corners.min() > c.border - 0.31 and corners.max() < c.size - c.border + 0.31
    assert env._gap(env.pos) > -1.0 and env.pos[0] < 40.0 - 15  # it pushed, and did not sink into the block


def test_actions_are_clipped_and_errors_name_the_key():
    env = PushTEnv()
    env.reset(seed=0, options={"block": [48.0, 48.0, 0.0], "start": [16.0, 16.0]})
    before = env.pos
    env.step([10.0, 0.0])
    assert np.allclose(env.pos - before, [env.cfg.max_step, 0.0])  # free space: moves exactly by the clipped action
    with pytest.raises(ValueError, match="shape"):
        env.step([1.0])
    with pytest.raises(ValueError, match="finite"):
        env.step([np.nan, 0.0])
    with pytest.raises(ValueError, match="env.goal_mode"):
        PushTConfig(goal_mode="anywhere")
    with pytest.raises(ValueError, match="env.margin"):
        PushTConfig(margin=3.0)
    with pytest.raises(ValueError, match="start"):
        env.reset(seed=0, options={"block": [32.0, 32.0, 0.0], "start": [32.0, 32.0]})  # inside the block
    from openjepa.config import ConfigError
    with pytest.raises(ConfigError, match="env.bar_lenght"):
        make_env("pusht", ["--env.bar_lenght=10"])


def test_push_policy_moves_the_block_and_collect_writes_the_format(tmp_path):
    env = PushTEnv()
    moved = {}
    for name in ("push", "random_walk"):
        rng, steps_moving = np.random.default_rng(0), 0
        for ep in range(6):
            env.reset(seed=ep)
            obs, info = env.reset(seed=ep, options={"start": free_start(env, rng)})
            act = POLICIES[name](env, rng)
            for _ in range(30):
                prev = info["block"]
                obs, _, _, _, info = env.step(act(obs, info))
                steps_moving += int(np.abs(info["block"] - prev).max() > 1e-3)
        moved[name] = steps_moving / (6 * 30)
    assert moved["push"] > 0.25 and moved["push"] > 2 * moved["random_walk"], moved
    with pytest.raises(ValueError, match="push"):
        POLICIES["push"](make_env("two_rooms"), np.random.default_rng(0))

    out = collect("pusht", episodes=3, steps=10, out=tmp_path / "d", policy="push", seed=2, progress=False)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["env"] == "pusht" and meta["policy"] == "push" and meta["obs_shape"] == [1, 64, 64]
    x, _ = load_trajectories(out)
    assert x["obs"].shape == (3, 11, 1, 64, 64) and x["a"].shape == (3, 10, 2) and x["pos"].shape == (3, 11, 2)
    step = (x["pos"][:, 1:] - x["pos"][:, :-1]).norm(dim=-1)
    assert (step <= PushTConfig().max_step + 1e-4).all() and step.mean() > 0.5
    again, _ = load_trajectories(collect("pusht", episodes=3, steps=10, out=tmp_path / "e", policy="push", seed=2,
                                         progress=False))
    assert all((x[k] == again[k]).all() for k in x)


def test_preset_trains_and_plans(tmp_path, one_thread):
    from openjepa.config import load_config
    from openjepa.planning.run import load_world_model, plan_episodes
    from openjepa.train.loop import train
    from openjepa.train.run import find_preset

    base = load_config(find_preset("world_model_pusht"))
    assert base.train.method == "world_model" and base.data.img_size == 64
    assert base.world.rollout == base.world.frames - 1
    data = collect("pusht", episodes=6, steps=10, out=tmp_path / "d", policy="push", seed=0, progress=False)
    cfg = load_config(find_preset("world_model_pusht"), [
        f"--data.path={data}", "--data.batch_size=4", "--world.frames=3", "--world.rollout=2", "--train.steps=5",
        "--train.monitor_every=0", "--train.progress=false", "--train.precision=fp32", "--train.threads=1"])
    summary = train(cfg, tmp_path / "run", log=lambda *a: None)
    assert summary["finished"] and (tmp_path / "run" / "checkpoints" / "last.pt").is_file()
    model, _ = load_world_model(tmp_path / "run")
    res = plan_episodes(tmp_path / "run", "pusht", ["--env.max_steps=5"], planner="cem", episodes=2, horizon=2,
                        samples=8, iters=1, picture=str(tmp_path / "paths.png"), model=model)
    assert res["env"] == "pusht" and res["episodes"] == 2 and 0.0 <= res["success_rate"] <= 1.0
    assert np.isfinite(res["mean_final_distance"]) and (tmp_path / "paths.png").is_file()
