"""Graph search over imagined states: known optima on toy dynamics, and goals behind walls of layouts never seen."""

import numpy as np
import pytest
import torch

from openjepa.planning.search import GraphSearch

BOX = (torch.full((2,), -1.0), torch.full((2,), 1.0))


def make(horizon=12, **kw):
    return GraphSearch(horizon=horizon, action_low=BOX[0], action_high=BOX[1], max_norm=1.0, **kw)


def free_plane(s, a):
    return s + a


def test_free_plane_goal_three_steps_east_is_reached_in_three_moves():
    plan, left = make().plan(free_plane, torch.zeros(1, 2), torch.tensor([[3.0, 0.0]]))
    path = torch.cumsum(plan[0], 0)
    assert torch.allclose(path[2], torch.tensor([3.0, 0.0]), atol=1e-5)  # the optimum: three full moves east
    assert (plan[0, 3:] == 0).all() and left.item() < 1e-5


def walled(s, a):
    """A wall on x = 0.5 for |y| < 4 (the door is above y = 4): moves that would cross it are blocked."""
    n = s + a
    crosses = ((s[:, 0] < 0.5) != (n[:, 0] < 0.5)) & (torch.maximum(s[:, 1].abs(), n[:, 1].abs()) < 4)
    return torch.where(crosses[:, None], s, n)


def test_goal_behind_a_wall_is_reached_through_the_door():
    """The goal is 2 units east behind the wall: greedy descent stalls at the wall; search goes round by the door."""
    plan, left = make(horizon=16, rounds=40).plan(walled, torch.zeros(1, 2), torch.tensor([[2.0, 0.0]]))
    s = torch.zeros(1, 2)
    for a in plan[0]:
        s = walled(s, a[None])
    assert (s - torch.tensor([[2.0, 0.0]])).norm() < 0.35 and left.item() < 0.35
    assert (plan[0].norm(dim=-1) > 0).sum() >= 9  # at least 4 up, 2 across, 4 down: the detour, not a shortcut


def test_blocked_everywhere_returns_a_plan_and_validates():
    plan, _ = make().plan(lambda s, a: s, torch.zeros(2, 2), torch.ones(2, 2))
    assert plan.shape == (2, 12, 2) and (plan == 0).all()
    with pytest.raises(ValueError, match="magnitudes"):
        make(magnitudes=(1.5,))
    with pytest.raises(ValueError, match="2-D"):
        GraphSearch(horizon=3, action_low=torch.zeros(3), action_high=torch.ones(3))


class EnvOracle:
    """A hand-coded perfect world model: latent = agent position, dynamics = the env's own move rule in the
    episode's layout (walls included), each planned action held `action_repeat` env steps."""
    action_repeat = 5

    def __init__(self, env):
        self.env = env

    def _pos(self, obs):
        img = ((obs + 1) / 2 * 255)[:, 0]  # (B, H, W)
        w = (img - 200).clamp(min=0)  # the agent's dot peaks at 255, walls are 128
        ys, xs = torch.meshgrid(torch.arange(img.shape[1]), torch.arange(img.shape[2]), indexing="ij")
        m = w.sum((1, 2)).clamp_min(1e-6)
        return torch.stack([(w * xs).sum((1, 2)) / m, (w * ys).sum((1, 2)) / m], -1)

    encode_state = encode_goal = _pos

    def imagine(self, s0, a):
        c, out, p = self.env.cfg, [], s0.double().numpy().copy()
        for h in range(a.shape[1]):
            act = a[:, h].double().numpy()
            norm = np.linalg.norm(act, axis=1, keepdims=True)
            act = act * np.minimum(1.0, c.max_step / np.maximum(norm, 1e-12))
            for _ in range(self.action_repeat * c.substeps):
                d = act / c.substeps
                for move in (d, d * [1, 0], d * [0, 1]):
                    q = p + move
                    free = ~self.env.blocked_xy(q[:, 0], q[:, 1])
                    p = np.where(free[:, None], q, p)
                    d = np.where(free[:, None], 0.0, d)  # a part taken is not taken again
            out.append(torch.from_numpy(p.copy()).float())
        return torch.stack(out, 1)


def test_search_with_a_perfect_model_reaches_goals_behind_walls_in_unseen_layouts():
    from openjepa.data.envs import make_env
    from openjepa.planning.mpc import run_mpc
    from openjepa.planning.run import build_planner

    env = make_env("two_rooms", layout="heldout")  # layouts no training draw has; start and goal in different rooms
    planner = build_planner("search", env, horizon=16)
    wins = []
    for seed in range(4):
        res = run_mpc(EnvOracle(env), [env], [seed], planner, replan_every=1)
        wins.append(res.success[0])
        assert env.room(res.paths[0][0]) != env.room(env.goal)  # the goal really was behind the wall
    assert all(wins), wins


class WallBlindOracle(EnvOracle):
    """Right about motion, blind to walls: it imagines every move through them (a model that misreads a layout)."""

    def imagine(self, s0, a):
        return s0[:, None] + (self.action_repeat * a).cumsum(1)


def test_surprise_memory_gets_a_wall_blind_model_through_the_door():
    """Without memory the plan runs into the wall and repeats forever; remembering the moves that did not go as
    imagined (blocked, or sliding back and forth) makes the search try the others until it finds the door."""
    from openjepa.data.envs import make_env
    from openjepa.planning.mpc import run_mpc
    from openjepa.planning.run import build_planner

    env = make_env("two_rooms", layout="heldout")
    outcomes = {}
    for remember in (False, True):
        planner = build_planner("search", env, horizon=16)
        planner.remember = remember
        outcomes[remember] = [run_mpc(WallBlindOracle(env), [env], [s], planner).success[0] for s in range(6)]
    assert all(outcomes[True]) and sum(outcomes[False]) <= 3, outcomes  # without: only where the door is on the way


def test_recall_widens_where_a_remembered_blocked_move_is_dropped():
    """A move remembered as blocked at (0, 0) (east, action 0) is dropped from states within recall * step of it:
    from (0, 0.6) recall=None (merge = 0.35 steps) still goes east first, recall = 1 step does not; the default
    is 0.75 steps."""
    first = {}
    for recall in (None, 1.0):
        p = make(recall=recall)
        p.memory["e"] = [(torch.zeros(2), 0, 1.0)]
        plan, _ = p.plan(free_plane, torch.tensor([[0.0, 0.6]]), torch.tensor([[3.0, 0.6]]), keys=["e"])
        first[recall] = plan[0, 0]
    assert torch.allclose(first[None], torch.tensor([1.0, 0.0]), atol=1e-5)
    assert not torch.allclose(first[1.0], torch.tensor([1.0, 0.0]), atol=1e-5)
    assert make(recall=None).recall_radius == make().merge and make().recall_radius == 0.75


def test_build_planner_sets_the_fields_it_is_given():
    from openjepa.data.envs import make_env
    from openjepa.planning.run import build_planner

    env = make_env("two_rooms")
    assert build_planner("search", env, horizon=4, recall=0.5, surprise=0.8).recall_radius == 0.5
    assert build_planner("search", env, horizon=4).recall == make().recall  # the class default otherwise
    assert build_planner("cem", env, horizon=4, samples=20, elites=3).elites == 3
    with pytest.raises(TypeError):
        build_planner("search", env, horizon=4, no_such_field=1)
