"""Matched possible / impossible driving clips (data/driving/violations.py) and their scoring by `bench driving`:
the spliced kinds are exact, each violation happens in 3-D and in the pixels, pass-through pairs are matched up to
the braking onset, same seed same clips, and oracle / blind / constant scorers get 1, ties and 1/2."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

import openjepa.bench.driving as bd
from openjepa.data.driving import DrivingConfig, frame_objects, render, simulate
from openjepa.data.driving import violations as vi
from openjepa.data.driving.world import road_at

CAM = DrivingConfig(height=32, width=32, focal=1.3)  # the bench's square camera, smaller
T = 16
SEEDS = {"teleport": (0, 1, 2), "vanish": (0, 1, 2), "pass_through": (0, 3)}  # pass_through: two seeds whose
# first drive has a usable event (others search drives of 800 frames and more: seconds on a busy CPU)


@pytest.fixture(scope="module")
def quads():
    return {k: [vi.make_quadruplet(k, s, CAM, T) for s in SEEDS[k]] for k in vi.KINDS}


def _track_states(scene, track, clip):
    """(T, 3) x, z, psi of a vehicle at the clip's frames (it is on the road at all of them)."""
    rows = [np.flatnonzero(scene.track[t] == track) for t in clip]
    assert all(len(r) == 1 for r in rows)
    return np.array([scene.cars[t, r[0]] for t, r in zip(clip, rows)])


def _road_pos(scene, track, clip):
    xz = _track_states(scene, track, clip)
    return vi.road_coords(scene.road, xz[:, 0], xz[:, 1])


def test_road_coords_invert_the_placement():
    scene = simulate(DrivingConfig(max_curvature=0.02, straight_share=0.0), 5, 200)
    rng = np.random.default_rng(0)
    s, d = rng.uniform(40, 300, 500), rng.uniform(-8, 8, 500)
    p = road_at(scene.road, s)
    s2, d2 = vi.road_coords(scene.road, p[:, 0] + d * np.cos(p[:, 2]), p[:, 1] - d * np.sin(p[:, 2]))
    assert np.abs(s2 - s).max() < 0.01 and np.abs(d2 - d).max() < 1e-4


@pytest.mark.parametrize("kind", ["teleport", "vanish"])
def test_spliced_kinds_are_exact(quads, kind):
    """C = A[:s] + B[s:] and D = B[:s] + A[s:]: every impossible frame is the possible frame of the same index."""
    for q in quads[kind]:
        (A, B), (C, D), s = q.possible, q.impossible, q.splice
        assert A.shape == (T, 32, 32, 3) and A.dtype == np.uint8 and q.violation == s
        assert np.array_equal(C[:s], A[:s]) and np.array_equal(C[s:], B[s:])
        assert np.array_equal(D[:s], B[:s]) and np.array_equal(D[s:], A[s:])
        for X in (C, D):
            assert all(np.array_equal(X[t], A[t]) or np.array_equal(X[t], B[t]) for t in range(T))
        assert not np.array_equal(A[s - 1:s + 1], B[s - 1:s + 1])  # the splice changes what is seen
        assert T // 2 - 2 <= s <= T // 2 + 2


def test_vanish_a_vehicle_in_clear_view_is_gone_after_the_splice(quads):
    for q in quads["vanish"]:
        k, s, plan = q.plan.tracks[0], q.splice, q.plan
        a, b = (render(sc, plan.clip) for sc in plan.scenes)
        ids_c = np.concatenate([a["ids"][:s], b["ids"][s:]])
        for t in range(s - 2, s + 2):  # in A: in view, >= 90% visible, wholly inside the image, around s
            obj = frame_objects(a, t)
            row = obj["obj_track"] == k
            assert row.sum() == 1 and obj["visible"][row][0] >= vi.CLEAR and obj["truncated"][row][0] == 0
            assert (a["ids"][t] == k + 1).sum() >= vi.MIN_AREA * 32 * 32
        assert (ids_c[s - 1] == k + 1).sum() >= 2 and not (ids_c[s:] == k + 1).any()
        assert not (b["ids"] == k + 1).any()  # B: the same drive without it


def test_teleport_jumps_along_its_lane(quads):
    for q in quads["teleport"]:
        k, s, plan = q.plan.tracks[0], q.splice, q.plan
        assert vi.JUMP[0] <= abs(plan.jump) <= vi.JUMP[1]
        (sa, da), (sb, db) = (_road_pos(sc, k, plan.clip) for sc in plan.scenes)
        assert np.allclose(sb - sa, plan.jump, atol=0.01) and np.allclose(db, da, atol=1e-3)  # along its lane
        # in C the vehicle covers jump metres more between frames s - 1 and s than it drives in A
        sc = np.concatenate([sa[:s], sb[s:]])
        assert abs((sc[s] - sc[s - 1]) - (sa[s] - sa[s - 1]) - plan.jump) < 0.01
        xa, xb = (_track_states(sc_, k, plan.clip) for sc_ in plan.scenes)
        assert np.hypot(*(xb[s, :2] - xa[s - 1, :2])) >= abs(plan.jump) - 2.5  # a 3-D jump (2.5: a 25 m/s step)
        b = render(plan.scenes[1], plan.clip)
        assert (b["ids"][s] == k + 1).sum() >= 2 and (render(plan.scenes[0], plan.clip)["ids"][s - 1] == k + 1).sum()
        for t in plan.clip:  # B is a possible drive: the moved vehicle keeps clear of everyone, the ego included
            fp = vi.footprints(plan.scenes[1], t)
            assert min(vi.separation(fp[k], p) for j, p in fp.items() if j != k) >= vi.GAP


def test_pass_through_bodies_intersect_only_in_the_impossible_clips(quads):
    for q in quads["pass_through"]:
        f, g = q.plan.tracks
        plan, s, m = q.plan, q.splice, q.violation
        A, B, C, D = plan.scenes
        assert np.array_equal(q.impossible[0][:s], q.possible[0][:s])  # C is A, D is B, up to the braking onset
        assert np.array_equal(q.impossible[1][:s], q.possible[1][:s])
        assert s < m <= T - 4
        sep = {n: np.array([vi.separation(*(vi.footprints(sc, t)[k] for k in (f, g))) for t in plan.clip])
               for n, sc in zip("ABCD", plan.scenes)}
        assert sep["A"].min() > vi.GAP and sep["B"].min() > vi.GAP  # the braking vehicle stops short
        first = [int(np.argmax(sep[n] < 0)) for n in "CD"]  # from there on, one body inside the other
        assert m == min(first) and max(first) <= T - 4
        for n, mn in zip("CD", first):
            assert (sep[n][:mn] >= 0).all() and (sep[n][mn:] < 0).all()
        for n, sc in zip("ABCD", plan.scenes):  # the two share a lane in every clip
            assert np.abs(_road_pos(sc, f, plan.clip)[1] - _road_pos(sc, g, plan.clip)[1]).max() < 0.1
        (sfa, _), (sfc, _), (sga, _) = (_road_pos(sc, k, plan.clip) for sc, k in ((A, f), (C, f), (A, g)))
        assert np.array_equal(sfa[:s], sfc[:s]) and (sfa[s:] < sfc[s:]).all()  # A brakes from s on, C does not
        closing = np.diff(sfa - sga)
        assert closing[s - 1] > vi.MIN_CLOSING * CAM.dt * 0.9 and closing[-1] == pytest.approx(0, abs=1e-3)
        assert A.braking[plan.clip[s]].any()  # its brake lights go on


def test_same_seed_same_clips_other_seed_other_clips(quads):
    for kind in vi.KINDS:
        again = vi.make_quadruplet(kind, SEEDS[kind][0], CAM, T)
        first = quads[kind][0]
        assert all(np.array_equal(x, y) for x, y in zip((*again.possible, *again.impossible),
                                                         (*first.possible, *first.impossible)))
        assert (again.splice, again.violation, again.plan.tracks) == (first.splice, first.violation, first.plan.tracks)
        assert not np.array_equal(quads[kind][1].possible[0], first.possible[0])


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="unknown violation"):
        vi.plan_quadruplet("levitate", 0, CAM)
    with pytest.raises(ValueError, match="frames must be >= 16"):
        vi.plan_quadruplet("vanish", 0, CAM, frames=12)


class _Scorer(torch.nn.Module):
    """A stand-in video world model for eval/surprise.py: `fn` maps the predicted frames (B, C, W - c, H, W) and
    the last context frame to an error per predicted frame (B, W - c); slices average it over the tubelet."""
    cfg = SimpleNamespace(video=SimpleNamespace(frames=4, tubelet=2, context_frames=2))

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def future_error(self, x: torch.Tensor, context_frames: int) -> torch.Tensor:
        err = self.fn(x[:, :, context_frames - 1:])  # (B, W - c)
        return err.view(err.shape[0], -1, 2).mean(-1)


def test_relative_accuracy_of_oracle_blind_and_constant_scorers(quads):
    """A frame-change detector (the oracle for the spliced kinds: only the change at s is impossible) scores 1, the
    same detector negated 0; a scorer of each frame alone (its mean brightness) ties on every spliced quadruplet
    (C + D show exactly the frames of A + B) and so scores 1/2, as a constant scorer does on every kind."""
    flat = [q for kind in vi.KINDS for q in quads[kind]]
    change = _Scorer(lambda x: (x[:, :, 1:] - x[:, :, :-1]).abs().mean((1, 3, 4)))
    res = bd.score_surprise(change, flat)
    neg = bd.score_surprise(_Scorer(lambda x: -(x[:, :, 1:] - x[:, :, :-1]).abs().mean((1, 3, 4))), flat)
    blind = bd.score_surprise(_Scorer(lambda x: x[:, :, 1:].mean((1, 3, 4))), flat)
    const = bd.score_surprise(_Scorer(lambda x: torch.zeros(x.shape[0], x.shape[2] - 1)), flat)
    assert set(res) == set(vi.KINDS)
    for kind in ("teleport", "vanish"):
        assert res[kind]["relative_accuracy"] == 1.0 and res[kind]["failures"] == []
        assert neg[kind]["relative_accuracy"] == 0.0
        assert blind[kind]["relative_accuracy"] == 0.5 and blind[kind]["failures"] == list(SEEDS[kind])
    for kind in vi.KINDS:
        assert const[kind]["relative_accuracy"] == 0.5
        assert [len(sc) for sc in const[kind]["quad_scores"]] == [4] * len(SEEDS[kind])
    rows = bd.surprise_rows("oracle", [res, neg])
    tele = next(r for r in rows if r["violation"] == "teleport")
    assert tele["relative_accuracy"] == 0.5 and tele["relative_accuracy_per_seed"] == [1.0, 0.0]
    assert tele["relative_accuracy_ci95"] is not None and tele["n_quads"] == len(SEEDS["teleport"])
    assert tele["relative_accuracy_ensemble"] == 0.5  # the two seeds' surprises cancel: every quadruplet ties


def test_data_violations_writes_the_clips_openjepa_surprise_reads(tmp_path):
    from openjepa.cli import build_parser, main
    from openjepa.data.video import load_video

    assert main(["data", "violations", "--n", "1", "--out", str(tmp_path), "--kinds", "vanish", "--frames", "16",
                 "--seed", "0", "--env.height=32", "--env.width=32"]) == 0
    d = tmp_path / "vanish_0"
    assert sorted(p.name for p in d.iterdir()) == ["impossible_C.npy", "impossible_D.npy", "info.json",
                                                   "possible_A.npy", "possible_B.npy"]
    q = vi.make_quadruplet("vanish", 0, CAM, T)  # the command's camera is the bench's square one
    for name, clip in zip(("possible_A", "possible_B", "impossible_C", "impossible_D"), (*q.possible, *q.impossible)):
        assert np.array_equal(np.load(d / f"{name}.npy"), clip)
    assert load_video(d / "impossible_C.npy", 32, 3).shape == (3, T, 32, 32)
    assert '"splice": %d' % q.splice in (d / "info.json").read_text()
    assert main(["data", "violations", "--n", "1", "--out", str(tmp_path), "--kinds", "levitate"]) == 2
    # the default seed is the bench's surprise test set
    assert build_parser().parse_args(["data", "violations", "--n", "1", "--out", "x"]).seed == bd.SURPRISE_SEED
