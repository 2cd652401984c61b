"""The resnet encoder (models/resnet.py): token-grid shapes, idx semantics, masked context encoding that sees no
pixel outside the kept patches, features(pool), config rules, and I-JEPA / LeJEPA / MAE training with it."""

import math

import pytest
import torch

from openjepa.config import ConfigError, build_config, load_config
from openjepa.methods import METHODS
from openjepa.models import ENCODERS
from openjepa.models.resnet import ResNetEncoder
from openjepa.validate import check_config


def tiny(img_size=28, patch_size=4, in_chans=1, dim=32, depth=3):
    return ResNetEncoder(img_size=img_size, patch_size=patch_size, in_chans=in_chans, dim=dim, depth=depth)


@pytest.mark.parametrize("img,chans,patch", [(28, 1, 4), (28, 1, 2), (32, 3, 4), (32, 3, 2), (64, 3, 16)])
def test_token_grid_shapes(img, chans, patch):
    enc = tiny(img, patch, chans)
    n = (img // patch) ** 2
    assert enc.grid == (img // patch, img // patch) and enc.num_patches == n
    x = torch.randn(2, chans, img, img)
    assert enc(x).shape == (2, n, 32)
    idx = torch.tensor([[0, n - 1, 3], [5, 1, 2]])
    assert enc(x, idx).shape == (2, 3, 32)
    assert sum(enc.counts) == 3 and enc.widths[-1] == 32  # model.depth blocks; the last stage is model.dim wide
    # no positions: a smaller input (LeJEPA's local views) gives a smaller grid
    side = img // 2 // patch * patch
    assert enc(torch.randn(2, chans, side, side)).shape == (2, (side // patch) ** 2, 32)
    with pytest.raises(ValueError, match="patch size"):
        enc(torch.randn(1, chans, img + 1, img + 1))


def test_idx_returns_the_cells_at_idx_in_order():
    """idx of the whole grid, permuted, masks nothing: the tokens are forward(x)'s, in idx's order."""
    enc = tiny().eval()
    x = torch.randn(2, 1, 28, 28)
    perm = torch.stack([torch.randperm(49), torch.randperm(49)])
    full = enc(x)
    assert torch.allclose(enc(x, perm), torch.gather(full, 1, perm.unsqueeze(-1).expand(-1, -1, 32)), atol=1e-5)


@pytest.mark.parametrize("name,kw", [("vit", {"heads": 2}), ("resnet", {}), ("resnet", {"patch_size": 2}),
                                     ("resnet", {"img_size": 64, "patch_size": 16})])
def test_tokens_at_idx_see_only_the_kept_patches(name, kw):
    """A token encoder given idx must not see the other patches (I-JEPA's context must not see the targets), even
    at kept cells bordering the changed patches, whose full-image tokens do change (the receptive field): taking
    the context tokens from a full-image pass would fail this."""
    args = dict(img_size=28, patch_size=4, in_chans=1, dim=32, depth=3) | kw
    enc = ENCODERS[name](**args).train()
    g, p = args["img_size"] // args["patch_size"], args["patch_size"]
    x = torch.randn(2, 1, args["img_size"], args["img_size"])
    keep = torch.zeros(g, g, dtype=torch.bool)
    keep[: g // 2 + 1] = True  # the top rows of patches; their last row borders the changed ones
    idx = keep.flatten().nonzero().squeeze(1).expand(2, -1)
    x2 = x.clone()
    x2[..., (g // 2 + 1) * p:, :] = 5 * torch.randn_like(x2[..., (g // 2 + 1) * p:, :])
    assert torch.allclose(enc(x, idx), enc(x2, idx), atol=1e-5)
    border = keep.flatten().nonzero().squeeze(1)[-g:]  # the kept row next to the changed pixels
    assert not torch.allclose(enc(x)[:, border], enc(x2)[:, border], atol=1e-3)


@pytest.mark.parametrize("img,patch", [(28, 4), (28, 2), (64, 16)])
def test_a_kept_rectangle_is_encoded_as_if_it_were_the_whole_image(img, patch):
    """Re-masking every conv input makes a masked region act as the zero padding beyond an image border: the
    kept top rows give exactly the tokens of the image cropped to those rows. Zeroing only the pixels fails this
    (the masked region's bias-driven activations reach the border cells; max difference ~1.5 at init)."""
    enc = tiny(img, patch).train()
    g = img // patch
    rows = g // 2 + 1
    x = torch.randn(2, 1, img, img)
    idx = torch.arange(rows * g).expand(2, -1)
    assert torch.allclose(enc(x, idx), enc(x[..., : rows * patch, :]), atol=1e-5)


def test_kept_pixels_do_change_the_context_tokens():
    enc = tiny().eval()
    x = torch.randn(1, 1, 28, 28)
    idx = torch.arange(0, 21).unsqueeze(0)  # the top three rows of patches
    x2 = x.clone()
    x2[..., :4, :4] += 3  # patch 0, kept
    assert not torch.allclose(enc(x, idx), enc(x2, idx), atol=1e-3)


def test_features_pools():
    enc = tiny(depth=4)  # widths 16, 16, 32; blocks 1, 1, 2
    assert enc.counts == [1, 1, 2] and enc.widths == [16, 16, 32]
    images = torch.randint(0, 256, (5, 1, 28, 28), dtype=torch.uint8)
    mean = enc.features(images)
    assert mean.shape == (5, 32)
    assert enc.features(images, pool="tokens").shape == (5, 49, 32)
    assert torch.allclose(enc.features(images, pool="lastk", k=1), mean, atol=1e-6)  # k=1 is pool="mean"
    assert enc.features(images, pool="lastk", k=2).shape == (5, 64)  # both last-stage blocks: k * dim
    assert enc.features(images, pool="lastk", k=4).shape == (5, 16 + 16 + 32 + 32)  # the blocks' widths
    with pytest.raises(ValueError, match="4 blocks"):
        enc.features(images, pool="lastk", k=5)


RESNET = ["--model.encoder=resnet", "--model.dim=32", "--model.depth=3", "--train.precision=fp32"]
PRED = ["--model.pred_dim=16", "--model.pred_depth=1", "--model.pred_heads=2"]
ARGS = {"ijepa": RESNET + PRED, "mae": ["--train.method=mae"] + RESNET + PRED,
        "lejepa": ["--train.method=lejepa", "--model.proj_hidden=64", "--model.proj_dim=16"] + RESNET}


@pytest.mark.parametrize("name,extra,chans,img", [
    ("ijepa", [], 1, 28), ("ijepa", ["--model.patch_size=2", "--data.img_size=32", "--data.channels=3"], 3, 32),
    ("lejepa", [], 1, 28), ("mae", [], 1, 28)])
def test_methods_learn_with_the_resnet_in_five_steps(five_steps, name, extra, chans, img):
    cfg = check_config(build_config({}, ARGS[name] + extra))
    method = METHODS[name](cfg)
    batch = method.collate(torch.randn(16, chans, img, img), torch.Generator().manual_seed(0))
    if name == "lejepa":  # local views at views.local_size (16 px): a 4 x 4 grid
        assert batch["local"].shape[0] == 2 and method.encoder(batch["local"][0]).shape == (16, 16, 32)
    losses, _ = five_steps(method, torch.randn(16, chans, img, img))
    assert all(math.isfinite(v) for v in losses) and losses[-1] < losses[0], losses
    if hasattr(method, "target_encoder"):
        assert all(p.grad is None for p in method.target_encoder.parameters())


def test_config_rules():
    for name in ("ijepa", "lejepa", "mae"):
        check_config(build_config({}, ARGS[name]))
    check_config(build_config({}, ARGS["ijepa"] + ["--model.mlp_ratio=2"]))  # the predictor's MLP
    check_config(build_config({}, ARGS["ijepa"] + ["--eval.protocols=lastk", "--eval.lastk=3"]))
    cases = [
        (ARGS["ijepa"] + ["--model.heads=4"], "model.heads"),
        (ARGS["lejepa"] + ["--model.mlp_ratio=2"], "model.mlp_ratio"),
        (["--train.method=vjepa", "--data.dataset=physics", "--data.img_size=32", "--model.patch_size=8",
          "--model.encoder=resnet"], "model.encoder"),
        (["--train.method=world_model", "--data.dataset=trajectories", "--model.encoder=resnet",
          "--data.img_size=64"], "model.encoder"),
        (["--model.encoder=cnn"], "model.encoder"),
    ]
    for overrides, key in cases:
        with pytest.raises(ConfigError, match="^" + key.replace(".", r"\.")):
            check_config(build_config({}, overrides))


def test_ijepa_resnet_trains_with_the_real_loop_exports_and_reloads(tmp_path):
    from openjepa.export import export_encoder, load_encoder
    from openjepa.train.loop import train
    from openjepa.train.run import find_preset

    cfg = load_config(find_preset("smoke"), ["--model.encoder=resnet", "--train.steps=4", "--train.monitor_every=4",
                                             "--train.ckpt_every=4"])
    run = tmp_path / "run"
    summary = train(cfg, run, log=lambda *a: None)
    assert summary["finished"] and math.isfinite(summary["final_loss"])
    enc = load_encoder(export_encoder(run, tmp_path / "export"))
    assert isinstance(enc, ResNetEncoder)
    images = torch.randint(0, 256, (3, 1, 28, 28), dtype=torch.uint8)
    assert enc.counts == [0, 1, 1] and enc.widths == [16, 24, 48]  # the smoke preset's dim 48, depth 2
    assert enc.features(images, pool="lastk", k=2).shape == (3, 24 + 48)
