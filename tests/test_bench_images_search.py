"""`openjepa bench images_search`: the validation carve (seeded, disjoint from what the probes fit on and from
pretraining), the test split never read, every candidate a valid config, a quick run's rows, and --reuse."""

from __future__ import annotations

import json
import os

import pytest
import torch

from openjepa.bench import images_search
from openjepa.bench.images_curve import run_images_curve
from openjepa.bench.images_search import CANDIDATES, VAL_IMAGES, candidate_config
from openjepa.cli import main
from openjepa.config import ConfigError, EvalConfig, build_config
from openjepa.data import fashion_mnist
from openjepa.data.fashion_mnist import holdout_split
from openjepa.eval import evaluate
from openjepa.eval.evaluate import eval_split
from openjepa.train import run as train_run

N_TRAIN = 60_000
# a tiny model, 3 steps, a few hundred probe images: the suite's plumbing, not its numbers
TINY = ["--model.dim=48", "--model.depth=2", "--model.pred_dim=24", "--model.pred_depth=1", "--data.batch_size=32",
        "--train.steps=3", "--train.monitor_every=3", "--train.monitor_samples=32", "--train.ckpt_every=3",
        "--train.progress=false", "--train.precision=fp32", "--eval.train_samples=300", "--eval.test_samples=200",
        "--eval.probe_iters=20", "--eval.lastk=2"]
ROW_KEYS = {"name", "preset", "overrides", "steps", "train_seconds", "linear_top1", "knn_top1", "protocols", "rankme",
            "feat_std", "mean_cos", "collapsed", "checkpoint", "reused"}


def _indexed_train(split, path=None):
    """A stand-in for load_fashion_mnist: 60,000 images whose first two pixels spell their own index; "test" raises."""
    if split != "train":
        raise AssertionError(f"the {split!r} split was read")
    i = torch.arange(N_TRAIN)
    x = torch.zeros(N_TRAIN, 1, 28, 28, dtype=torch.uint8)
    x[:, 0, 0, 0], x[:, 0, 0, 1] = (i // 256).to(torch.uint8), (i % 256).to(torch.uint8)
    return x, i % 10


def _index(x: torch.Tensor) -> torch.Tensor:
    return x[:, 0, 0, 0].long() * 256 + x[:, 0, 0, 1].long()


@pytest.fixture
def no_test_split(monkeypatch):
    """The real Fashion-MNIST files, but reading the test split fails: every load goes through the cached reader."""
    real = fashion_mnist._load_fashion_mnist_cached

    def guarded(split, *args):
        if split != "train":
            raise AssertionError(f"the {split!r} split was read")
        return real(split, *args)

    monkeypatch.setattr(fashion_mnist, "_load_fashion_mnist_cached", guarded)


def test_holdout_split_is_seeded_disjoint_and_covers_the_split():
    val, rest = holdout_split(N_TRAIN, VAL_IMAGES)
    assert len(val) == VAL_IMAGES and len(rest) == N_TRAIN - VAL_IMAGES
    assert torch.equal(torch.cat([val, rest]).sort().values, torch.arange(N_TRAIN))  # disjoint and covering
    again, _ = holdout_split(N_TRAIN, VAL_IMAGES)
    assert torch.equal(val, again)  # seeded: the same carve every time
    other, _ = holdout_split(N_TRAIN, VAL_IMAGES, seed=1)
    assert not torch.equal(val, other)
    assert not torch.equal(val, torch.arange(VAL_IMAGES))  # a random carve, not the first images
    small, _ = holdout_split(N_TRAIN, 1000)
    assert set(small.tolist()) <= set(val.tolist())  # a smaller carve lies inside the larger
    with pytest.raises(ValueError, match="carve"):
        holdout_split(100, 100)


def test_probe_split_fits_outside_the_carve_and_scores_inside_it(monkeypatch):
    monkeypatch.setattr(evaluate, "load_fashion_mnist", _indexed_train)  # it raises if the test split is read
    ev = EvalConfig(train_samples=5000, test_samples=2000)
    x_fit, y_fit, x_val, y_val = eval_split(ev, None, 28, 1, holdout=VAL_IMAGES)
    fit, va = _index(x_fit), _index(x_val)
    val, _ = holdout_split(N_TRAIN, VAL_IMAGES)
    carve = set(val.tolist())
    assert len(fit) == 5000 and len(va) == 2000 and len(set(va.tolist())) == 2000
    assert set(va.tolist()) <= carve and not set(fit.tolist()) & carve
    assert torch.equal(y_fit, fit % 10) and torch.equal(y_val, va % 10)  # labels travel with their images
    assert torch.equal(_index(eval_split(ev, None, 28, 1, holdout=VAL_IMAGES)[2]), va)  # seeded
    with pytest.raises(ValueError, match="eval.train_samples=60000"):
        eval_split(EvalConfig(train_samples=60000), None, 28, 1, holdout=VAL_IMAGES)


def test_pretraining_leaves_the_carve_out_and_defaults_to_every_image(monkeypatch):
    monkeypatch.setattr(train_run, "load_fashion_mnist", _indexed_train)
    x, y = train_run.fashion_mnist_train(build_config({}, [f"--data.val_holdout={VAL_IMAGES}"]))
    val, rest = holdout_split(N_TRAIN, VAL_IMAGES)
    assert torch.equal(_index(x), rest) and torch.equal(y, rest % 10)
    x0, _ = train_run.fashion_mnist_train(build_config({}, []))  # the default: all of it, in file order
    assert torch.equal(_index(x0), torch.arange(N_TRAIN))
    with pytest.raises(ConfigError, match="^data.val_holdout"):
        build_config({}, ["--data.dataset=synthetic", "--data.val_holdout=10"])


@pytest.mark.parametrize("quick", [False, True])
def test_every_candidate_is_a_valid_config_that_leaves_the_carve_out(quick):
    assert 2 <= len(CANDIDATES) <= 12
    cfgs = {name: candidate_config(name, quick, []) for name in CANDIDATES}  # check_config: refuses ignored keys
    for name, cfg in cfgs.items():
        assert cfg.data.dataset == "fashion_mnist" and cfg.data.val_holdout == VAL_IMAGES, name
        assert cfg.eval.train_samples <= N_TRAIN - VAL_IMAGES and cfg.eval.test_samples <= VAL_IMAGES, name
    if not quick:
        assert {c.train.steps for c in cfgs.values()} == {images_search.STEPS}
        assert candidate_config("ijepa", False, ["--train.steps=40"]).train.steps == 40  # the user's overrides last
    # the recipes the issue asks about are there
    kinds = {(c.train.method, c.model.encoder) for c in cfgs.values()}
    assert {("ijepa", "resnet"), ("lejepa", "resnet"), ("mae", "resnet"), ("ijepa", "vit"), ("mae", "vit"),
            ("lejepa", "vit")} <= kinds
    assert {c.model.patch_size for c in cfgs.values() if c.train.method == "ijepa"} == {2, 4}
    assert {c.reg.kind for c in cfgs.values() if c.train.method == "ijepa"} == {"none", "vicreg"}


def test_unknown_candidate_and_foreign_flags_are_refused(tmp_path, capsys):
    with pytest.raises(ValueError, match="unknown candidate"):
        images_search.run_images_search(True, tmp_path, [], tmp_path / "r.json", only=["no_such_recipe"])
    assert main(["bench", "images", "--reuse", "--workdir", str(tmp_path)]) != 0
    assert "--reuse applies to the physics, planning, images_search and images_curve suites" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # refused before anything was trained or written


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """One --quick run of the `ijepa` candidate on the tiny budget, the test split guarded: (workdir, result)."""
    tmp = tmp_path_factory.mktemp("search")
    with pytest.MonkeyPatch.context() as mp:
        real = fashion_mnist._load_fashion_mnist_cached
        mp.setattr(fashion_mnist, "_load_fashion_mnist_cached",
                   lambda split, *a: real(split, *a) if split == "train" else pytest.fail(f"read {split!r}"))
        out = tmp / "search.json"
        assert main(["bench", "images_search", "--quick", "--only", "ijepa", "--out", str(out), "--workdir",
                     str(tmp / "work"), *TINY]) == 0
    return tmp, json.loads(out.read_text())


def test_quick_run_writes_every_row_on_the_validation_split(quick_run):
    tmp, result = quick_run
    assert result["suite"] == "images_search" and result["git_sha"] and result["machine"]
    assert [r["name"] for r in result["rows"]] == ["raw_pixels", "random_init", "ijepa"]
    assert result["ranking"] == ["ijepa"] and set(result["configs"]) == {"ijepa"}
    assert result["complete"] and result["pending"] == []
    assert result["figure"] == str(tmp / "search_protocols.png") and (tmp / "search_protocols.png").stat().st_size > 1000
    assert result["split"]["val_images"] == VAL_IMAGES and result["split"]["probe_val_samples"] == 200
    for row in result["rows"]:
        assert set(row) == ROW_KEYS, row["name"]
        assert list(row["protocols"]) == ["mean", "lastk", "layernorm"], row["name"]
        assert row["protocols"]["mean"]["linear_top1"] == row["linear_top1"]
        assert 0.0 <= row["linear_top1"] <= 1.0 and 0.0 <= row["knn_top1"] <= 1.0
    trained = result["rows"][-1]
    assert trained["steps"] == 3 and (trained["preset"], trained["overrides"]) == CANDIDATES["ijepa"]
    assert trained["checkpoint"].startswith(str(tmp / "work")) and not trained["reused"]
    assert result["configs"]["ijepa"]["data"]["val_holdout"] == VAL_IMAGES  # pretraining left the carve out


def test_reuse_keeps_a_finished_run_and_retrains_a_changed_one(quick_run, no_test_split):
    with pytest.raises(AssertionError, match="'test' split was read"):  # the guard itself works
        fashion_mnist.load_fashion_mnist("test")
    tmp, first = quick_run
    ckpt = first["rows"][-1]["checkpoint"]
    mtime = os.stat(ckpt).st_mtime_ns
    out = tmp / "again.json"
    base = ["bench", "images_search", "--quick", "--only", "ijepa", "--reuse", "--out", str(out), "--workdir",
            str(tmp / "work"), *TINY]
    assert main(base + ["--eval.knn_k=5"]) == 0  # another probe setting scores the same run again
    row = json.loads(out.read_text())["rows"][-1]
    assert row["reused"] and row["checkpoint"] == ckpt and os.stat(ckpt).st_mtime_ns == mtime
    assert row["train_seconds"] == first["rows"][-1]["train_seconds"]  # kept from the run that trained it
    assert main(base + ["--optim.lr=5e-4"]) == 0  # a training setting changed: trained afresh
    assert not json.loads(out.read_text())["rows"][-1]["reused"]


def test_reuse_resumes_an_interrupted_run(tmp_path, no_test_split):
    args = ["bench", "images_search", "--quick", "--only", "ijepa", "--out", str(tmp_path / "r.json"), "--workdir",
            str(tmp_path / "work"), *TINY]
    with pytest.raises(SystemExit, match="stopped at step 2"):
        main(args + ["--train.stop_after=2"])  # as if killed after 2 of 3 steps (a checkpoint is saved)
    partial = json.loads((tmp_path / "r.json").read_text())  # what was scored before the stop, marked incomplete
    assert not partial["complete"] and partial["pending"] == ["ijepa"]
    assert [r["name"] for r in partial["rows"]] == ["raw_pixels", "random_init"]
    assert main(args + ["--reuse"]) == 0
    row = json.loads((tmp_path / "r.json").read_text())["rows"][-1]
    assert row["steps"] == 3 and not row["reused"]
    info = json.loads((tmp_path / "work" / "images_search_quick" / "ijepa" / "bench_train.json").read_text())
    assert info["resumed_from_step"] == 2


def test_curve_scores_every_kept_checkpoint_on_the_validation_split(tmp_path, no_test_split):
    out = tmp_path / "curve.json"
    tiny = [o for o in TINY if not o.startswith("--train.ckpt_every")]  # the suite spaces the checkpoints itself
    assert main(["bench", "images_curve", "--quick", "--only", "ijepa", "--out", str(out), "--workdir",
                 str(tmp_path / "work"), *tiny]) == 0
    result = json.loads(out.read_text())
    assert result["suite"] == "images_curve" and result["candidate"] == "ijepa" and result["steps"] == 3
    assert [r["name"] for r in result["rows"]] == ["raw_pixels", "random_init", "ijepa@1", "ijepa@2", "ijepa@3"]
    points = result["rows"][2:]
    assert [r["step"] for r in points] == [1, 2, 3]
    seconds = [r["train_seconds"] for r in points]
    assert 0 < seconds[0] <= seconds[1] <= seconds[2]  # the loop's clock, carried by each checkpoint
    assert all(list(r["protocols"]) == ["mean", "lastk", "layernorm"] for r in result["rows"])
    assert set(result["crosses_raw_pixels"]) == {"mean", "lastk", "layernorm"}
    for p, hit in result["crosses_raw_pixels"].items():  # the first checkpoint at or above raw pixels, if any
        above = [r["step"] for r in points if r["protocols"][p]["linear_top1"] >= result["rows"][0]["protocols"][p]["linear_top1"]]
        assert (hit is None and not above) or hit["step"] == above[0]
    assert result["figure"] == str(tmp_path / "curve.png") and (tmp_path / "curve.png").stat().st_size > 1000
    for only in (None, ["ijepa", "mae"], ["nope"]):  # exactly one candidate, refused before anything is written
        with pytest.raises(ValueError, match="needs --only NAME"):
            run_images_curve(True, tmp_path / "w2", [], tmp_path / "w2" / "r.json", only=only)
    assert not (tmp_path / "w2").exists()
