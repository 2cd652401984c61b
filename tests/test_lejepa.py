"""LeJEPA (methods/lejepa.py): views, the loss formula, no target/stop-grad, collapse without SIGReg."""

import pytest
import torch

from openjepa.config import ConfigError, build_config, load_config
from openjepa.losses.sigreg import sigreg
from openjepa.methods import METHODS
from openjepa.methods.common import add_regulariser
from openjepa.models.vit import VisionTransformer, sincos_pos_embed
from openjepa.train.loop import train
from openjepa.train.run import find_preset
from openjepa.validate import check_config

TINY = ["--train.method=lejepa", "--model.dim=32", "--model.depth=2", "--model.heads=2", "--model.proj_hidden=64",
        "--model.proj_dim=16", "--train.precision=fp32"]


def tiny(*extra):
    return METHODS["lejepa"](build_config({}, TINY + list(extra)))


def test_views_shapes_and_determinism():
    method = tiny("--views.global_views=2", "--views.local_views=3", "--views.local_size=12")
    x = torch.randn(5, 1, 28, 28)
    a = method.collate(x, torch.Generator().manual_seed(1))
    b = method.collate(x, torch.Generator().manual_seed(1))
    assert a["global"].shape == (2, 5, 1, 28, 28) and a["local"].shape == (3, 5, 1, 12, 12)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["global"][0], a["global"][1])  # independent crops
    c = method.collate(x, torch.Generator().manual_seed(2))
    assert not torch.equal(a["global"], c["global"])


def test_loss_is_the_documented_formula():
    method = tiny("--reg.kind=sigreg", "--reg.sigreg_lambda=0.2", "--reg.sigreg_directions=32")
    batch = method.collate(torch.randn(16, 1, 28, 28), torch.Generator().manual_seed(0))
    loss, logs = method.step(batch)
    with torch.no_grad():
        e = torch.cat([method.embed(batch["global"]), method.embed(batch["local"])])  # (4, B, P)
        centre = e[:2].mean(0)
        inv = ((e - centre) ** 2).mean()
        sig = torch.stack([sigreg(v, 32, int(batch["seed"])) for v in e]).mean()
    assert torch.allclose(loss, 0.8 * inv + 0.2 * sig, rtol=1e-5)
    assert logs["views"] == 4.0 and abs(logs["pred_loss"] - inv.item()) < 1e-5


def test_identical_views_have_zero_invariance_and_gradients_reach_the_centre():
    method = tiny("--data.crop_scale=[1.0,1.0]", "--views.local_views=0")
    batch = method.collate(torch.randn(8, 1, 28, 28), torch.Generator().manual_seed(0))
    batch["global"][1] = batch["global"][0]  # crop scale 1 still draws an aspect ratio; make them equal
    assert method.step(batch)[0].item() == 0.0
    # no stop-gradient: with different views both the view and the centre pull the encoder
    batch = method.collate(torch.randn(8, 1, 28, 28), torch.Generator().manual_seed(0))
    batch["global"][1] = torch.randn_like(batch["global"][1])
    method.step(batch)[0].backward()
    assert method.encoder.patch_embed.proj.weight.grad.abs().sum() > 0


def test_regulariser_averages_over_views():
    reg = build_config({}, ["--reg.kind=vicreg+sigreg"]).reg
    e = torch.randn(64, 8)
    one, logs1 = add_regulariser(torch.tensor(0.0), e, reg, seed=3)
    two, logs2 = add_regulariser(torch.tensor(0.0), torch.stack([e, e]), reg, seed=3)
    assert torch.allclose(one, two) and logs1 == logs2
    mixed, _ = add_regulariser(torch.tensor(0.0), torch.stack([e, torch.zeros_like(e)]), reg, seed=3)
    collapsed, _ = add_regulariser(torch.tensor(0.0), torch.zeros_like(e), reg, seed=3)
    assert torch.allclose(mixed, (one + collapsed) / 2)


def test_config_rules():
    def checked(*overrides):
        return check_config(build_config({}, list(overrides)))

    assert checked().reg.ema is True  # ijepa keeps an EMA target by default
    assert checked("--train.method=mae").reg.ema is False
    assert checked("--train.method=lejepa").reg.ema is False
    with pytest.raises(ConfigError, match=r"reg\.ema"):
        checked("--train.method=lejepa", "--reg.ema=true")
    with pytest.raises(ConfigError, match=r"views\.local_size"):
        checked("--train.method=lejepa", "--views.local_size=10")
    with pytest.raises(ConfigError, match=r"reg\.on"):
        checked("--train.method=mae", "--reg.on=predicted")
    preset = check_config(load_config(find_preset("lejepa_vit_cpu")))
    assert preset.train.method == "lejepa" and preset.reg.mechanism == "sigreg"


def test_local_view_positions_span_the_training_grid():
    vit = VisionTransformer(img_size=28, patch_size=4, in_chans=1, dim=32, depth=1, heads=2)
    assert vit(torch.randn(2, 1, 16, 16)).shape == (2, 16, 32)
    small = vit.pos_embed_for((4, 4), torch.device("cpu"))[0].view(4, 4, 32)
    full = sincos_pos_embed(32, (7, 7)).view(7, 7, 32)
    for (i, j), (r, c) in {(0, 0): (0, 0), (0, 3): (0, 6), (3, 0): (6, 0), (3, 3): (6, 6)}.items():
        assert torch.allclose(small[i, j], full[r, c], atol=1e-6)
    assert torch.equal(vit.pos_embed_for((7, 7), torch.device("cpu")), vit.pos_embed)
    with pytest.raises(ValueError, match="patch size"):
        vit(torch.randn(1, 1, 18, 18))


def test_without_sigreg_collapses_and_with_it_does_not(tmp_path):
    """Invariance alone (reg.kind=none) collapses on a smoke run and the alarm fires; LeJEPA's SIGReg keeps the
    embeddings spread on the same run (same seed, data and schedule)."""
    def run(kind):
        cfg = load_config(find_preset("smoke"), ["--train.method=lejepa", f"--reg.kind={kind}", "--train.steps=40",
                                                 "--train.monitor_every=40", "--views.local_views=1"])
        return train(cfg, tmp_path / kind, log=lambda *a: None)

    assert run("none")["collapse_warned"]
    assert not run("sigreg")["collapse_warned"]
