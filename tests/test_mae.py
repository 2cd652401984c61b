"""MAE baseline: patchify order, the norm-pix loss, which pixels the loss can see, and a real training run."""

import math

import pytest
import torch

from openjepa.config import build_config, load_config
from openjepa.methods.mae import MAE, normalise_patches, pixel_loss
from openjepa.models.predictor import MaskTokenPredictor
from openjepa.models.vit import PatchEmbed2D, gather_tokens, patchify
from openjepa.train.checkpoint import load_method
from openjepa.train.loop import train
from openjepa.train.run import find_preset


def tiny_mae(*overrides):
    cfg = build_config({}, ["--train.method=mae", "--model.dim=32", "--model.depth=2", "--model.heads=2",
                            "--model.pred_dim=16", "--model.pred_depth=1", "--model.pred_heads=2",
                            "--train.precision=fp32", *overrides])
    return MAE(cfg).eval()


def test_patchify_matches_explicit_slicing():
    x = torch.randn(2, 3, 8, 12)
    p = 4
    patches = patchify(x, p)
    assert patches.shape == (2, 2 * 3, 3 * p * p)
    for r in range(2):
        for c in range(3):
            k = r * 3 + c  # row-major token index
            assert torch.equal(patches[:, k], x[:, :, r * p:(r + 1) * p, c * p:(c + 1) * p].flatten(1))
    with pytest.raises(ValueError, match="patch_size"):
        patchify(x, 5)


def test_patchify_token_k_is_what_patch_embed_sees():
    """PatchEmbed2D's conv on token k is a linear map of exactly patchify(x)[:, k] (same order and layout)."""
    embed = PatchEmbed2D(img_size=12, patch_size=4, in_chans=3, dim=8)
    x = torch.randn(2, 3, 12, 12)
    tokens = embed(x)  # (B, N, D)
    w = embed.proj.weight.flatten(1)  # (D, C*p*p)
    assert torch.allclose(tokens, patchify(x, 4) @ w.T + embed.proj.bias, atol=1e-5)


def test_normalise_patches():
    patches = torch.randn(3, 5, 48) * 4 + 2
    out = normalise_patches(patches)
    assert torch.allclose(out.mean(-1), torch.zeros(3, 5), atol=1e-5)
    assert torch.allclose(out.var(-1, unbiased=False), torch.ones(3, 5), atol=1e-4)
    assert torch.equal(normalise_patches(torch.full((1, 16), 7.0)), torch.zeros(1, 16))  # flat patch -> 0, finite


def test_pixel_loss_is_zero_for_the_normalised_target():
    x = torch.randn(2, 1, 28, 28)
    tgt_idx = torch.tensor([[[0, 1, 7, 8], [40, 41, 47, 48]], [[3, 4, 10, 11], [20, 21, 27, 28]]])  # (B, M, Kt)
    B, M, Kt = tgt_idx.shape
    exact = normalise_patches(gather_tokens(patchify(x, 4), tgt_idx.reshape(B, M * Kt))).view(B, M, Kt, -1)
    assert pixel_loss(exact, x, tgt_idx, 4).item() < 1e-10
    assert pixel_loss(exact.to(torch.bfloat16), x, tgt_idx, 4).dtype == torch.float32
    assert math.isclose(pixel_loss(torch.zeros_like(exact), x, tgt_idx, 4).item(), 1.0, rel_tol=1e-4)


def test_predictor_out_dim():
    pred = MaskTokenPredictor((7, 7), dim=32, pred_dim=16, depth=1, heads=2, out_dim=48)
    out = pred(torch.randn(2, 10, 32), torch.arange(10).expand(2, -1), torch.tensor([[[20, 21], [30, 31]]] * 2))
    assert out.shape == (2, 2, 2, 48)


def test_mae_loss_sees_only_context_and_target_patches():
    method = tiny_mae("--mask.context_scale=[0.5,0.6]")
    assert not hasattr(method, "target_encoder") and method.eval_encoder() is method.encoder
    x = torch.randn(8, 1, 28, 28)
    batch = method.collate(x, torch.Generator().manual_seed(0))
    x = batch["x"]  # the random-resized crop that the model sees
    ctx, tgt = batch["ctx_idx"], batch["tgt_idx"]
    unused = [(b, n) for b in range(8) for n in range(49) if n not in ctx[b] and n not in tgt[b]]
    assert unused, "the masks should leave some patches out of both context and targets"

    def loss_with(b, n):
        x2 = x.clone()
        r, c = divmod(n, 7)
        x2[b, :, 4 * r:4 * r + 4, 4 * c:4 * c + 4] = torch.randn(1, 4, 4) * 3
        with torch.no_grad():
            return method.step({**batch, "x": x2})[0]

    with torch.no_grad():
        base = method.step(batch)[0]
    assert torch.allclose(loss_with(*unused[0]), base, rtol=0, atol=1e-7)
    assert not torch.allclose(loss_with(0, int(tgt[0, 0, 0])), base, rtol=0, atol=1e-5)
    assert loss_with(0, int(ctx[0, 0])) != base  # the context is seen, if only faintly by an untrained model


def test_mae_trains_with_the_real_loop_and_reloads(tmp_path):
    cfg = load_config(find_preset("smoke"), ["--train.method=mae", "--train.progress=false", "--train.steps=10",
                                             "--train.monitor_every=5"])
    run = tmp_path / "run"
    summary = train(cfg, run, log=lambda *a: None)
    assert summary["finished"] and math.isfinite(summary["final_loss"])
    method, cfg2, state = load_method(run)
    assert isinstance(method, MAE) and cfg2.train.method == "mae"
    saved = state["model"]
    assert all(torch.equal(v, saved[k]) for k, v in method.state_dict().items())
