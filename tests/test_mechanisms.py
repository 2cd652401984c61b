"""Anti-collapse mechanisms: EMA on/off x regularisers, switchable in the config, on the real training loop."""

import pytest
import torch

from openjepa.bench.collapse import MECHANISMS as BENCH_MECHANISMS
from openjepa.config import ConfigError, build_config, load_config
from openjepa.methods import METHODS
from openjepa.train.loop import train
from openjepa.train.run import find_preset

TINY = ["--model.dim=32", "--model.depth=2", "--model.heads=2", "--model.pred_dim=16", "--model.pred_depth=1",
        "--model.pred_heads=2", "--train.precision=fp32"]
MECHANISMS = {**BENCH_MECHANISMS, "ema+vicreg+sigreg": ["--reg.ema=true", "--reg.kind=vicreg+sigreg"]}


@pytest.mark.parametrize("name", sorted(MECHANISMS))
def test_mechanism_names_and_five_steps(name, five_steps):
    cfg = build_config({}, TINY + MECHANISMS[name])
    assert cfg.reg.mechanism == name
    method = METHODS["ijepa"](cfg)
    assert (method.target_encoder is not None) == cfg.reg.ema
    losses, logs = five_steps(method, torch.randn(16, 1, 28, 28))
    assert all(map(lambda v: v == v and abs(v) < 1e6, losses)) and losses[-1] < losses[0], losses
    assert ("reg_sigreg" in logs) == ("sigreg" in name) and ("reg_var" in logs) == ("vicreg" in name)


def test_sigreg_seed_is_a_function_of_the_step_generator():
    cfg = build_config({}, TINY + MECHANISMS["sigreg"])
    method = METHODS["ijepa"](cfg)
    x = torch.randn(4, 1, 28, 28)
    a = method.collate(x, torch.Generator().manual_seed(5))["seed"]
    assert torch.equal(a, method.collate(x, torch.Generator().manual_seed(5))["seed"])
    assert not torch.equal(a, method.collate(x, torch.Generator().manual_seed(6))["seed"])


def test_bad_mechanism_is_named():
    with pytest.raises(ConfigError, match=r"reg\.kind"):
        build_config({}, ["--reg.kind=barlow"])


def test_none_collapses_and_the_alarm_fires_while_sigreg_does_not(tmp_path):
    """No EMA and no regulariser collapses within 40 smoke steps; the panel flags it. SIGReg on the same run
    (same seed, data and schedule) keeps the embeddings spread."""
    def run(name):
        cfg = load_config(find_preset("smoke"), ["--train.progress=false", "--train.steps=40", "--train.monitor_every=40"]
                          + MECHANISMS[name])
        return train(cfg, tmp_path / name, log=lambda *a: None)

    assert run("none")["collapse_warned"]
    assert not run("sigreg")["collapse_warned"]


@pytest.mark.parametrize("on", ["predicted", "context+predicted"])
def test_regulariser_on_predictions(on, five_steps):
    """reg.on moves the terms from the context embeddings to the predictor's outputs (or both)."""
    def first_loss(where):
        torch.manual_seed(0)
        method = METHODS["ijepa"](build_config({}, TINY + ["--reg.kind=vicreg", f"--reg.on={where}"]))
        return method, five_steps(method, torch.randn(16, 1, 28, 28, generator=torch.Generator().manual_seed(1)))

    _, (base, _) = first_loss("context")
    _, (losses, logs) = first_loss(on)
    assert "reg_var" in logs and losses[-1] < losses[0] and losses[0] != base[0]
