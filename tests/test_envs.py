"""Two-Rooms env: gymnasium conformance, determinism, walls, the success test, bad actions; trajectory data."""

import json

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from openjepa.data.envs import ENVS, TwoRoomsConfig, TwoRoomsEnv
from openjepa.data.trajectories import collect, load_trajectories


def test_passes_gymnasium_checker():
    env = TwoRoomsEnv()
    check_env(env, skip_render_check=False)
    obs, info = env.reset(seed=0)
    assert obs.shape == (1, 65, 65) and obs.dtype == np.uint8
    assert env.render().shape == (65, 65, 3)
    assert env.goal_obs().shape == (1, 65, 65)


def test_deterministic_under_seed():
    runs = []
    for _ in range(2):
        env = TwoRoomsEnv()
        obs, info = env.reset(seed=123)
        trace = [obs]
        rng = np.random.default_rng(0)
        for _ in range(20):
            obs, *_ = env.step(rng.uniform(-2, 2, 2))
            trace.append(obs)
        runs.append((np.stack(trace), info["goal"]))
    assert np.array_equal(runs[0][0], runs[1][0]) and np.array_equal(runs[0][1], runs[1][1])
    other = TwoRoomsEnv().reset(seed=124)[1]
    assert not np.allclose(other["pos"], TwoRoomsEnv().reset(seed=123)[1]["pos"])


def test_start_and_goal_in_different_rooms_and_free():
    env = TwoRoomsEnv()
    for seed in range(50):
        _, info = env.reset(seed=seed)
        assert env.room(info["pos"]) != env.room(info["goal"])
        assert not env.blocked(info["pos"]) and not env.blocked(info["goal"])


def test_wall_blocks_and_door_lets_through():
    env = TwoRoomsEnv()
    env.reset(seed=0, options={"start": [25.0, 10.0], "goal": [40.0, 10.0]})
    for _ in range(20):  # push right into the wall away from the door
        env.step([2.4, 0.0])
    assert env.pos[0] < env.cfg.wall_x - env.cfg.wall_width / 2
    env.reset(seed=0, options={"start": [25.0, 32.0], "goal": [40.0, 32.0]})
    for _ in range(10):  # through the door
        env.step([2.4, 0.0])
    assert env.room(env.pos) == 1


def test_action_norm_is_clipped_to_max_step():
    env = TwoRoomsEnv()
    env.reset(seed=0, options={"start": [10.0, 32.0], "goal": [50.0, 32.0]})
    before = env.pos.copy()
    env.step([100.0, 0.0])
    assert np.isclose(np.linalg.norm(env.pos - before), env.cfg.max_step)


def test_success_within_radius_terminates():
    env = TwoRoomsEnv()
    env.reset(seed=0, options={"start": [40.0, 30.0], "goal": [45.0, 30.0]})
    _, _, term, trunc, info = env.step([0.0, 0.0])
    assert not term and info["distance"] == pytest.approx(5.0)
    _, _, term, trunc, info = env.step([1.0, 0.0])
    assert term and info["success"] and info["distance"] < 4.5


def test_truncates_after_max_steps():
    env = TwoRoomsEnv(max_steps=5)
    env.reset(seed=0)
    flags = [env.step([0.0, 0.0])[3] for _ in range(5)]
    assert flags == [False] * 4 + [True]


@pytest.mark.parametrize("action, match", [([1.0], "shape"), ([[1.0, 2.0]], "shape"), ([np.nan, 0.0], "finite"),
                                           ([np.inf, 0.0], "finite")])
def test_bad_actions_raise(action, match):
    env = TwoRoomsEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match=match):
        env.step(action)


def test_layout_is_configurable_and_bad_layouts_raise():
    env = TwoRoomsEnv(wall_x=20.0, door_y_range=(10.0, 20.0), door_size=4.0)
    doors = {round(env.reset(seed=s)[0].sum()) for s in range(5)}
    assert 10 <= env.door_y <= 20 and len(doors) > 1  # the door moves between episodes
    assert env.blocked(np.array([20.0, 40.0])) and not env.blocked(np.array([20.0, env.door_y]))
    with pytest.raises(ValueError, match="env.door_y"):
        TwoRoomsConfig(door_y=1.0)
    with pytest.raises(ValueError, match="env.start_goal"):
        TwoRoomsConfig(start_goal="nowhere")


def test_collect_writes_documented_format(tmp_path):
    out = collect("two_rooms", episodes=6, steps=8, out=tmp_path / "d", seed=3, progress=False)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["episodes"] == 6 and meta["steps"] == 8 and meta["env"] == "two_rooms"
    x, _ = load_trajectories(out)
    assert x["obs"].shape == (6, 9, 1, 65, 65) and x["a"].shape == (6, 8, 2) and x["pos"].shape == (6, 9, 2)
    # actions explain the motion (no wall contact in free space moves exactly by the action)
    step = (x["pos"][:, 1:] - x["pos"][:, :-1]).norm(dim=-1)
    assert (step <= TwoRoomsConfig().max_step + 1e-4).all() and step.mean() > 0.3
    again, _ = load_trajectories(collect("two_rooms", episodes=6, steps=8, out=tmp_path / "e", seed=3, progress=False))
    assert all((x[k] == again[k]).all() for k in x)


def test_registry_names_envs():
    assert ENVS["two_rooms"][0] is TwoRoomsEnv


def test_four_rooms_conforms_and_puts_goal_in_the_opposite_room():
    env = ENVS["four_rooms"][0]()
    check_env(env)
    for seed in range(30):
        _, info = env.reset(seed=seed)
        assert env.room(info["pos"]) + env.room(info["goal"]) == 3  # diagonal rooms: 0-3 or 1-2
    c = env.cfg
    assert env.blocked(np.array([c.wall_x, c.wall_y]))  # the cross
    assert not env.blocked(np.array([c.wall_x, c.door_up_y])) and not env.blocked(np.array([c.door_left_x, c.wall_y]))
    env.reset(seed=0, options={"start": [10.0, 10.0], "goal": [50.0, 50.0]})
    for _ in range(30):
        env.step([0.0, 2.4])  # down the left side: the horizontal wall stops it (door at x=18)
    assert env.pos[1] < c.wall_y
    with pytest.raises(ValueError, match="env.door_left_x"):
        ENVS["four_rooms"][1](door_left_x=40.0)


@pytest.mark.parametrize("split", ["train", "heldout"])
def test_random_layouts_are_valid_and_split_by_the_held_out_bands(split):
    from openjepa.data.envs.two_rooms import HELDOUT_BANDS, layout_split

    env = TwoRoomsEnv(layout=split)
    doors = set()
    for seed in range(60):
        env.reset(seed=seed)
        lay = env.layout
        assert layout_split(lay) == split
        assert env.reachable(env.pos, env.goal)  # start and goal in different rooms, joined through a door
        assert env.room(env.pos) != env.room(env.goal)
        doors.add(len(lay["doors"]))
        inside = [HELDOUT_BANDS[k][0] <= v <= HELDOUT_BANDS[k][1]
                  for k, v in [("wall_x", lay["wall_x"]), ("wall_width", lay["wall_width"]),
                               ("door_size", lay["door_size"])] + [("door_y", y) for y in lay["doors"]]]
        assert any(inside) == (split == "heldout")  # training layouts never enter a band; held-out ones always do
        obs = env._obs()[0]
        col = int(round(lay["wall_x"]))
        assert (obs[:, col] == 128).sum() > 20  # the layout is in the observation: the wall is drawn
    assert doors == {1, 2}  # some layouts have a second door
    assert TwoRoomsEnv(layout="train").reset(seed=3)[0].tobytes() == TwoRoomsEnv(layout="train").reset(seed=3)[0].tobytes()


def test_fixed_layout_is_unchanged_by_layout_randomisation():
    env = TwoRoomsEnv()
    env.reset(seed=0)
    assert env.layout == {"wall_x": 32.0, "wall_width": 3.0, "door_size": 6.0, "doors": [32.0]}
    with pytest.raises(ValueError, match="env.layout"):
        TwoRoomsConfig(layout="everywhere")
    with pytest.raises(ValueError, match="env.door_y_range"):
        TwoRoomsConfig(layout="train", door_y_range=(10.0, 20.0))
    # an explicit layout in reset options (how a user replays one): a second door opens the wall there too
    env.reset(seed=0, options={"layout": {"wall_x": 30, "wall_width": 3, "door_size": 6, "doors": [15, 45]}})
    assert not env.blocked(np.array([30.0, 45.0])) and env.blocked(np.array([30.0, 30.0]))
