"""`openjepa bench physics` output contract on a tiny budget, its scoring and probe functions, and the training of
its members (bench.physics, physics_scoring, physics_probes, physics_members)."""

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import openjepa.bench.physics as bp
from openjepa.bench import physics_members, physics_probes, physics_scoring, reuse
from openjepa.cli import main
from openjepa.data.physics import PROPERTIES, TEST_SEED

TINY = {"n_quads": 1, "probe_videos": 10, "members": 2,
        "overrides": ["--data.img_size=16", "--data.channels=1", "--data.batch_size=8", "--model.patch_size=4",
                      "--model.dim=16", "--model.depth=1", "--model.heads=2", "--model.pred_dim=16",
                      "--model.pred_depth=1", "--model.pred_heads=2", "--video.frames=8", "--video.context_frames=4",
                      "--video.physics_videos=40", "--train.steps=2", "--train.monitor_every=0",
                      "--train.precision=fp32"]}


def test_scores():
    assert physics_scoring.auroc([0.0, 1.0], [2.0, 3.0]) == 1.0
    assert physics_scoring.auroc([1.0], [1.0]) == 0.5
    s = physics_scoring.score_property([(1, 1, 2, 2), (1, 1, 0.5, 0.5), (1, 2, 1, 2)])
    assert s["relative_accuracy"] == pytest.approx(0.5)  # right, wrong, tie
    # a rounding-level difference is a tie, not a decision
    assert physics_scoring.score_property([(0.1, 0.2, 0.2, 0.1 + 1e-12)])["relative_accuracy"] == 0.5
    z = torch.randn(200, 5)
    y = z[:, :2] * 3 + 1
    assert physics_probes.ridge_r2(z, y, 150) > 0.99
    assert physics_probes.ridge_r2(torch.randn(200, 5), y, 150) < 0.2


def test_suite_rows(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(bp, "QUICK", TINY)
    out = tmp_path / "physics.json"
    assert main(["bench", "physics", "--quick", "--out", str(out), "--workdir", str(tmp_path / "work")]) == 0
    result = json.loads(out.read_text())
    assert result["suite"] == "physics" and result["git_sha"] and result["machine"]
    rows = result["rows"]
    assert {(r["model"], r["property"]) for r in rows} == {(m, p) for m in ("jepa", "pixel", "untrained",
                                                                                 "copy_last")
                                                           for p in PROPERTIES}
    for r in rows:
        assert {"model", "property", "relative_accuracy", "auroc"} <= set(r)
        assert 0 <= r["relative_accuracy"] <= 1 and 0 <= r["auroc"] <= 1
    assert all(len(r["per_init"]) == bp.N_UNTRAINED for r in rows if r["model"] == "untrained")
    for r in rows:
        if r["model"] in ("jepa", "pixel"):  # failures are quadruplet seeds of this property's test set
            assert set(r["failures"]) <= set(range(TEST_SEED, TEST_SEED + TINY["n_quads"]))
    assert {(r["model"], r["probe"]) for r in result["probe_rows"]} == {
        (m, p) for m in ("raw_pixels", "jepa", "pixel", "untrained") for p in ("position", "velocity")}
    assert len(result["figures"]) == len(PROPERTIES)
    assert set(result["jepa_vs_pixel"]) == set(PROPERTIES)
    for r in rows:
        if r["model"] in ("jepa", "pixel"):  # an ensemble of two members trained with seeds 0 and 1
            assert len(r["per_member"]) == len(r["checkpoints"]) == 2 and r["checkpoints"][0].endswith(
                "seed0/checkpoints/last.pt") and r["checkpoints"][1].endswith("seed1/checkpoints/last.pt")
            assert r["reused_checkpoint"] == [False, False]
            assert r["train_seconds"] == pytest.approx(sum(r["train_seconds_per_member"]))
            assert r["train_jobs"] == 1 and r["train_wall_seconds"] >= r["train_seconds"] - 0.2  # one after the other
            assert len(r["copy_last_gain_per_member"]) == 2
            assert [len(s) for s in r["per_member_quad_scores"]] == [TINY["n_quads"]] * 2

    # --reuse scores the finished runs again without retraining (same checkpoints, same figures, same seconds)
    capsys.readouterr()
    out2 = tmp_path / "again.json"
    assert main(["bench", "physics", "--quick", "--reuse", "--out", str(out2), "--workdir", str(tmp_path / "work")]) == 0
    assert "reusing the finished jepa seed 1 run" in capsys.readouterr().out
    again = json.loads(out2.read_text())
    key = lambda r: (r["model"], r["property"])  # noqa: E731
    first = {key(r): r for r in rows}
    for r in again["rows"]:
        if r["model"] in ("jepa", "pixel"):
            assert r["reused_checkpoint"] == [True, True] and r["train_seconds"] == first[key(r)]["train_seconds"]
            assert r["train_wall_seconds"] is None  # not timed by this run's clock
            assert r["relative_accuracy"] == first[key(r)]["relative_accuracy"]
    # a run trained with other settings is not reused
    assert main(["bench", "physics", "--quick", "--reuse", "--out", str(out2), "--workdir", str(tmp_path / "work"),
                 "--train.steps=3"]) == 0
    assert "cannot reuse" in capsys.readouterr().out
    assert not any(any(r.get("reused_checkpoint", [])) for r in json.loads(out2.read_text())["rows"])

    # --n-quads: a larger test set that starts with the default one (same first quadruplet, same scores)
    out3 = tmp_path / "more.json"
    assert main(["bench", "physics", "--quick", "--reuse", "--n-quads", "2", "--out", str(out3),
                 "--workdir", str(tmp_path / "work")]) == 0
    more = json.loads(out3.read_text())
    assert more["n_quadruplets_per_property"] == 2
    for r in more["rows"]:
        if r["model"] in ("jepa", "pixel"):
            assert len(r["quad_scores"]) == 2 and r["quad_scores"][0] == first[key(r)]["quad_scores"][0]
    # --heldout: the same plain members scored again on the same test seeds in the held-out style family
    out4 = tmp_path / "heldout.json"
    assert main(["bench", "physics", "--quick", "--reuse", "--heldout", "--out", str(out4),
                 "--workdir", str(tmp_path / "work")]) == 0
    held = json.loads(out4.read_text())
    assert held["style"] == "plain" and {r["style"] for r in held["rows"]} == {"plain"}
    assert {r["style"] for r in held["heldout_rows"]} == {"heldout"} and len(held["heldout_rows"]) == len(rows)
    for r in held["heldout_rows"]:
        if r["model"] in ("jepa", "pixel"):
            assert r["reused_checkpoint"] == [True, True] and r["quad_scores"] != first[key(r)]["quad_scores"]
    capsys.readouterr()
    assert main(["bench", "images", "--quick", "--n-quads", "2"]) != 0
    assert "--n-quads applies to the physics suite" in capsys.readouterr().err


def test_copy_last_scores_a_still_video_zero_and_motion_positive():
    from openjepa.config import build_config
    cfg = build_config({}, ["--train.method=vjepa", "--data.dataset=physics", *TINY["overrides"]])
    still = torch.ones(1, 1, 8, 16, 16)
    moving = still.clone()
    moving[:, :, 6:, :4, :4] = -1
    m = physics_scoring.CopyLast(cfg)
    assert torch.equal(m.future_error(still, 4), torch.zeros(1, 2))
    err = m.future_error(moving, 4)
    assert err[0, 0] == 0 and err[0, 1] > 0


def test_excess_peak_offset_finds_the_violation():
    from types import SimpleNamespace
    base = [None, None] + [1.0] * 10
    a, b = {"per_frame": base}, {"per_frame": base}
    c = {"per_frame": [None, None] + [1.0] * 5 + [3.0] + [1.0] * 4}  # C's extra surprise at frame 7
    d = {"per_frame": [None, None] + [1.0] * 5 + [0.5] + [1.0] * 2 + [2.0, 1.0]}  # D's less at 7, more at 10
    row = [a, b, c, d]
    ex = physics_scoring.excess_curve(row)
    assert ex[:2] == [None, None] and ex[7] == 1.5 and ex[10] == 1.0 and ex[3] == 0.0
    assert physics_scoring.excess_peak_offsets([row], [SimpleNamespace(violation=7)]) == [0]
    assert physics_scoring.excess_peak_offsets([row], [SimpleNamespace(violation=5)]) == [2]


def test_plot_surprise_with_excess_panel(tmp_path):
    from openjepa.eval.surprise import plot_surprise
    res = [{"name": "possible A", "per_frame": [None, 1.0, 2.0]}, {"name": "impossible C", "per_frame": [None, 1.0, 4.0]}]
    ex = [{"name": "impossible C - possible A", "per_frame": [None, 0.0, 2.0]}]
    p = plot_surprise(res, tmp_path / "f.png", marks=[None, 2], excess=ex)
    assert p.stat().st_size > 1000


def test_evaluate_model_lists_failed_quadruplets(monkeypatch):
    from types import SimpleNamespace
    quads = [SimpleNamespace(prop="gravity", seed=s, violation=3) for s in (11, 12, 13, 14)]
    # right, wrong, tie, and a tie within float rounding that rounding each score to 7 decimals would break
    means = {11: (1, 1, 2, 2), 12: (2, 2, 1, 1), 13: (1, 1, 1, 1),
             14: (0.0020000049, 0.0010000049, 0.0020000051, 0.0010000051)}

    def table(method, qs, device):
        return [[{"surprise_mean": v, "surprise_max": v, "per_frame": [None, v, v, v, v]} for v in means[q.seed]]
                for q in qs]
    monkeypatch.setattr(physics_scoring, "surprise_table", table)
    res, _ = physics_scoring.evaluate_model(None, quads, "cpu")
    assert res["gravity"]["failures"] == [12, 13, 14]
    assert res["gravity"]["quad_scores"] == [list(means[s]) for s in (11, 12, 13, 14)]
    assert res["gravity"]["relative_accuracy"] == pytest.approx(0.5)
    # the stored scores give back the same outcomes (what compare() and physics_compare.py rely on)
    assert physics_scoring.quad_outcomes(res["gravity"]["quad_scores"]).mean() == pytest.approx(0.5)


def test_compare_pairs_quadruplets_across_results():
    right, wrong, tie = [1, 1, 2, 2], [2, 2, 1, 1], [1, 1, 1, 1]

    def res(a, b):
        return {"rows": [{"model": "jepa", "property": "gravity", "quad_scores": a},
                         {"model": "pixel", "property": "gravity", "quad_scores": b},
                         {"model": "untrained", "property": "gravity"}]}
    one = res([right, right, wrong, tie], [right, wrong, wrong, right])
    c = physics_scoring.compare([one])["gravity"]
    assert c["jepa"] == pytest.approx(0.625) and c["pixel"] == pytest.approx(0.5)
    assert c["difference"] == pytest.approx(0.125) and c["ci95"][0] <= 0.125 <= c["ci95"][1]
    assert c["n_quads"] == 4 and c["n_results"] == 1
    # a second result scored on 2 quadruplets: both are compared on the 2 they share, outcomes averaged
    two = physics_scoring.compare([one, res([wrong, wrong], [right, right])])["gravity"]
    assert two["n_quads"] == 2 and two["n_results"] == 2
    assert two["jepa"] == pytest.approx(0.5) and two["pixel"] == pytest.approx(0.75)
    # identical models: no difference and a zero-width interval
    same = physics_scoring.compare([res([right, wrong, tie], [right, wrong, tie])])["gravity"]
    assert same["difference"] == 0 and same["ci95"] == [0, 0]
    with pytest.raises(ValueError, match="quad_scores"):
        physics_scoring.compare([{"rows": [{"model": "jepa", "property": "gravity"}]}])


def test_mean_table_is_the_ensemble_table():
    """The bench scores members once and averages their tables; that must equal scoring the Ensemble itself."""
    from openjepa.config import load_config
    from openjepa.data.physics import make_quadruplet
    from openjepa.eval.surprise import Ensemble
    from openjepa.methods import METHODS
    from openjepa.train.run import find_preset

    cfg = load_config(find_preset("vjepa_physics_cpu"), TINY["overrides"])
    members = []
    for k in range(2):
        torch.manual_seed(k)
        members.append(METHODS["vjepa"](cfg).eval())
    quads = [make_quadruplet("gravity", TEST_SEED, size=16, channels=1)]
    want = physics_scoring.surprise_table(Ensemble(members), quads, "cpu")
    got = physics_scoring.mean_table([physics_scoring.surprise_table(m, quads, "cpu") for m in members])
    for w, g in zip(want[0], got[0]):
        assert g["surprise_mean"] == pytest.approx(w["surprise_mean"], rel=1e-5)
        assert g["surprise_max"] == pytest.approx(w["surprise_max"], rel=1e-5)
        assert g["windows"] == pytest.approx(w["windows"], rel=1e-5)
        assert [v is None for v in g["per_frame"]] == [v is None for v in w["per_frame"]]  # the context frames
        assert [v for v in g["per_frame"] if v is not None] == pytest.approx(
            [v for v in w["per_frame"] if v is not None], rel=1e-5)
    # and not merely the first member's table
    solo = physics_scoring.surprise_table(members[0], quads, "cpu")
    assert solo[0][0]["surprise_mean"] != pytest.approx(got[0][0]["surprise_mean"], rel=1e-5)


def test_merge_results_is_the_larger_ensemble():
    """Merged quad_scores are the member-weighted mean of the files' (an ensemble's surprise_mean is its members'
    mean), so two files that each get a quadruplet wrong by a little can together get it right."""
    def res(members, a, b):
        return {"members": members, "rows": [{"model": "jepa", "property": "gravity", "quad_scores": a},
                                             {"model": "pixel", "property": "gravity", "quad_scores": b}]}
    one = res(2, [[1, 1, 3, 3], [1, 1, 0.9, 0.9]], [[1, 1, 0.9, 0.9], [1, 1, 2, 2]])
    two = res(2, [[1, 1, 0.9, 0.9], [1, 1, 3, 3], [5, 5, 5, 5]], [[1, 1, 0.9, 0.9], [1, 1, 2, 2], [1, 1, 1, 1]])
    m = physics_scoring.merge_results([one, two])
    assert m["members"] == 4
    jepa = next(r for r in m["rows"] if r["model"] == "jepa")
    assert np.allclose(jepa["quad_scores"], [[1, 1, 1.95, 1.95], [1, 1, 1.95, 1.95]])  # the 2 shared quads
    assert jepa["relative_accuracy"] == 1.0  # each file alone: 0.5 on these two
    pixel = next(r for r in m["rows"] if r["model"] == "pixel")
    assert pixel["relative_accuracy"] == 0.5
    # weights follow the member counts: a 1-member file counts half as much as a 2-member one
    w = physics_scoring.merge_results([res(1, [[0, 0, 3, 3]], [[1, 1, 1, 1]]), res(2, [[3, 3, 0, 0]], [[1, 1, 1, 1]])])
    assert np.allclose(next(r for r in w["rows"] if r["model"] == "jepa")["quad_scores"], [[2, 2, 1, 1]])
    c = physics_scoring.compare([m])["gravity"]
    assert c["difference"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="quad_scores"):
        physics_scoring.merge_results([one, {"members": 2, "rows": [{"model": "jepa", "property": "gravity"}]}])


def test_a_member_stopped_by_a_signal_stops_the_bench(tmp_path, monkeypatch):
    """SIGTERM ends the training loop with a checkpoint; the bench must stop too, not go on to the next member
    (nor mark the stopped run as trained)."""
    def stopped(cfg, run_dir, resume, force=False):
        run_dir.mkdir(parents=True)
        return {"finished": False, "steps": 7, "stopped_by": "SIGTERM"}

    monkeypatch.setattr(reuse, "train", stopped)  # every bench trains through bench/reuse.py
    cfg = SimpleNamespace(train=SimpleNamespace(method="vjepa", steps=10))
    with pytest.raises(SystemExit, match="stopped at step 7 \\(SIGTERM\\).*--reuse"):
        physics_members.train_member(cfg, tmp_path / "run", "jepa seed 0", "vjepa_physics_cpu", reuse=False)
    assert not (tmp_path / "run" / "bench_train.json").exists()
    partial = json.loads((tmp_path / "run" / physics_members.PARTIAL).read_text())
    assert partial["step"] == 7  # its seconds so far, for a resume


def test_the_pixel_preset_is_the_jepa_presets_twin():
    """The `pixel` row is "the same backbone, data and budget": the two physics presets may differ only in the
    method and what follows from it (reg.ema defaults to the method's: no target encoder for vpixel); a data or
    model setting changed in one preset alone would break the comparison."""
    from openjepa.config import load_config
    from openjepa.train.loop import config_diff
    from openjepa.train.run import find_preset

    from openjepa.validate import resolve_config

    jepa, pixel = (resolve_config(load_config(find_preset(n))) for n in ("vjepa_physics_cpu", "vpixel_physics_cpu"))
    assert sorted(config_diff(jepa, pixel)) == ["reg.ema: True -> False", "train.method: 'vjepa' -> 'vpixel'"]


def _tiny_specs(root, extra=()):
    """Two members' (cfg, run_dir, label), their configs resolved as run_physics resolves them."""
    from openjepa.config import load_config
    from openjepa.train.run import find_preset
    from openjepa.validate import resolve_config

    specs = []
    for seed in (0, 1):
        cfg = resolve_config(load_config(find_preset("vjepa_physics_cpu"), TINY["overrides"] + [
            "--train.progress=false", "--train.threads=1", f"--train.seed={seed}", *extra]))
        specs.append((cfg, root / f"seed{seed}", f"jepa seed {seed}"))
    return specs


def test_the_full_bench_trains_its_members_at_once_by_default_the_quick_one_after_the_other():
    default_jobs = physics_members.default_jobs
    assert default_jobs(2, 2, quick=False) == 2 and default_jobs(2, 16, quick=False) == 2
    assert default_jobs(2, 1, quick=False) == 1 and default_jobs(2, 2, quick=True) == 1


def test_progress_eta_follows_the_pace_since_first_seen_not_the_last_window():
    # 1,000 steps in the 100 s since first seen -> 10 steps/s -> 500 steps left take 50 s, whatever the
    # last logged window's rate (here 64 samples/s of batch 64, i.e. 1 step/s, would say 500 s)
    eta = physics_members._eta_seconds
    assert eta((100.0, 2000), 200.0, 3000, 3500, 64, 64.0) == pytest.approx(50.0)
    assert eta((100.0, 2000), 100.0, 2000, 3500, 64, 64.0) == pytest.approx(1500.0)  # no pace yet
    assert eta(None, 5.0, 0, 3500, 64, None) is None


def test_members_trained_at_once_are_the_members_trained_one_after_the_other(tmp_path):
    """--jobs 2 only changes where the members train (each in its own process): same weights (fp32, one thread
    each), a log per member, the seconds each took; with reuse, finished members are kept, not retrained."""
    from openjepa.train.checkpoint import load_checkpoint

    one = physics_members.train_members(_tiny_specs(tmp_path / "one"), "vjepa_physics_cpu", reuse=False, jobs=1)
    two = physics_members.train_members(_tiny_specs(tmp_path / "two"), "vjepa_physics_cpu", reuse=False, jobs=2,
                                        report_every=0.1)
    assert [g[1:] for g in one] == [g[1:] for g in two] == [(False, None), (False, None)]
    assert all(s > 0 for s, _, _ in two)
    for seed in (0, 1):
        a = load_checkpoint(tmp_path / "one" / f"seed{seed}" / "checkpoints" / "last.pt")["model"]
        b = load_checkpoint(tmp_path / "two" / f"seed{seed}" / "checkpoints" / "last.pt")["model"]
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
        assert "training vjepa" in (tmp_path / "two" / f"seed{seed}.log").read_text()
    a0 = load_checkpoint(tmp_path / "two" / "seed0" / "checkpoints" / "last.pt")["model"]
    a1 = load_checkpoint(tmp_path / "two" / "seed1" / "checkpoints" / "last.pt")["model"]
    assert not all(torch.equal(a0[k], a1[k]) for k in a0)  # two seeds, two members
    again = physics_members.train_members(_tiny_specs(tmp_path / "two"), "vjepa_physics_cpu", reuse=True, jobs=2)
    assert again == [(s, True, None) for s, _, _ in two]


def test_a_member_failing_in_its_process_stops_the_bench_naming_its_log(tmp_path):
    specs = _tiny_specs(tmp_path, ["--train.steps=4", "--optim.lr=1e30", "--optim.start_lr=1e30",
                                   "--train.on_nonfinite=stop", "--train.max_bad_steps=1"])
    with pytest.raises(SystemExit, match=r"jepa seed 0 run failed \(exit code 1; its log .*seed0\.log ends:"
                                         r"(.|\n)*non-finite(.|\n)*--reuse"):
        physics_members.train_members(specs, "vjepa_physics_cpu", reuse=False, jobs=2)


def test_jobs_is_checked(tmp_path, capsys):
    assert main(["bench", "images", "--jobs", "2", "--workdir", str(tmp_path)]) != 0
    assert "--jobs applies to the physics suite" in capsys.readouterr().err
    assert main(["bench", "physics", "--jobs", "0", "--workdir", str(tmp_path)]) != 0
    assert "--jobs must be at least 1, got 0" in capsys.readouterr().err
    assert not (tmp_path / "physics").exists()  # refused before any work


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_stopped_member_is_resumed_by_reuse(tmp_path, jobs):
    """--reuse goes on from a stopped member's checkpoint (not from scratch): the weights are those of an
    uninterrupted run (fp32) and its seconds add up both sessions."""
    from openjepa.train.checkpoint import load_checkpoint

    steps = ["--train.steps=6", "--train.ckpt_every=1"]
    whole = physics_members.train_members(_tiny_specs(tmp_path / "whole", steps)[:1], "vjepa_physics_cpu", reuse=False)
    specs = _tiny_specs(tmp_path / "cut", steps + ["--train.stop_after=2"])[:1]  # a runtime key: resumable
    with pytest.raises(SystemExit, match="stopped at step 2.*--reuse goes on from there"):
        physics_members.train_members(specs, "vjepa_physics_cpu", reuse=False, jobs=jobs)
    first = json.loads((tmp_path / "cut" / "seed0" / physics_members.PARTIAL).read_text())
    assert first["step"] == 2 and first["train_seconds"] > 0
    (secs, reused, at), = physics_members.train_members(_tiny_specs(tmp_path / "cut", steps)[:1], "vjepa_physics_cpu",
                                                        reuse=True, jobs=jobs)
    assert (reused, at) == (False, 2) and secs > first["train_seconds"]
    a = load_checkpoint(tmp_path / "whole" / "seed0" / "checkpoints" / "last.pt")
    b = load_checkpoint(tmp_path / "cut" / "seed0" / "checkpoints" / "last.pt")
    assert a["step"] == b["step"] == 6 and whole[0][2] is None
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


def test_styles_bench_scores_the_same_members_in_their_styles_and_the_heldout_style(tmp_path, monkeypatch):
    """--styles trains the style presets and scores every model twice on the same test seeds: in the training
    style family (`rows`) and in the held-out family (`heldout_rows`) (the plain bench's --heldout: test_suite_rows)."""
    monkeypatch.setattr(bp, "QUICK", TINY)
    assert main(["bench", "physics", "--quick", "--styles", "--workdir", str(tmp_path / "work")]) == 0
    result = json.loads((tmp_path / "work" / "physics_styles_quick.json").read_text())
    assert result["configs"]["jepa"]["video"]["physics_style"] == "random"
    assert result["style"] == "train" and result["heldout_style"] == "heldout"
    rows, held = result["rows"], result["heldout_rows"]
    models = {(m, p) for m in ("jepa", "pixel", "untrained", "copy_last") for p in PROPERTIES}
    assert {(r["model"], r["property"]) for r in rows} == {(r["model"], r["property"]) for r in held} == models
    assert {r["style"] for r in rows} == {"train"} and {r["style"] for r in held} == {"heldout"}
    key = lambda r: (r["model"], r["property"])  # noqa: E731
    in_style = {key(r): r for r in rows}
    for r in held:
        if r["model"] in ("jepa", "pixel"):  # the same trained members, other videos
            assert r["checkpoints"] == in_style[key(r)]["checkpoints"] and "physics_styles_quick" in r["checkpoints"][0]
            assert r["quad_scores"] != in_style[key(r)]["quad_scores"]
    assert set(result["jepa_vs_pixel_heldout"]) == set(PROPERTIES)
    held_figs = [f for f in result["figures"] if "_heldout_surprise_" in f]
    assert len(held_figs) == len(PROPERTIES) and all(Path(f).stat().st_size > 1000 for f in held_figs)


def test_surprise_figures_show_a_failure_where_there_is_one(tmp_path, monkeypatch):
    """With failures, each property's figure is its first failed quadruplet (else its first one), named so."""
    quads = [SimpleNamespace(prop=p, seed=TEST_SEED + k, violation=3) for p in PROPERTIES for k in range(3)]
    table = [[{"per_frame": [float(i)] * 6} for _ in range(4)] for i in range(len(quads))]  # quad i: surprise i
    drawn = {}
    monkeypatch.setattr(bp, "plot_surprise", lambda named, path, **kw: drawn.update(
        {Path(path).name: (named[0]["per_frame"][0], kw["title"])}))
    paths = bp.surprise_figures(quads, table, tmp_path / "r.json", {"gravity": [TEST_SEED + 2], "inertia": []},
                                tag="heldout_")
    assert [Path(p).name for p in paths] == [f"r_heldout_surprise_{p}.png" for p in PROPERTIES]
    g = drawn["r_heldout_surprise_gravity.png"]
    assert g[0] == PROPERTIES.index("gravity") * 3 + 2 and "a failed quadruplet" in g[1] and "heldout" in g[1]
    i = drawn["r_heldout_surprise_inertia.png"]
    assert i[0] == PROPERTIES.index("inertia") * 3 and "no failure" in i[1]
    bp.surprise_figures(quads, table, tmp_path / "r.json")  # no failures given: the first quadruplet, as before
    assert drawn["r_surprise_gravity.png"][0] == PROPERTIES.index("gravity") * 3


def test_the_style_presets_are_the_plain_presets_with_random_styles():
    from openjepa.config import load_config
    from openjepa.train.loop import config_diff
    from openjepa.train.run import find_preset
    from openjepa.validate import resolve_config

    for plain_name, styles_name in zip(bp.PRESETS[False], bp.PRESETS[True]):
        plain, styles = (resolve_config(load_config(find_preset(n))) for n in (plain_name, styles_name))
        assert config_diff(plain, styles) == ["video.physics_style: 'plain' -> 'random'"]
