import pytest
import torch

from openjepa.config import build_config
from openjepa.methods import METHODS
from openjepa.models.ema import ema_momentum, ema_update
from openjepa.models.predictor import MaskTokenPredictor
from openjepa.models.vit import VisionTransformer, sincos_pos_embed


def tiny_vit(**kw):
    args = dict(img_size=28, patch_size=4, in_chans=1, dim=32, depth=2, heads=2)
    args.update(kw)
    return VisionTransformer(**args)


def test_vit_shapes_and_idx():
    enc = tiny_vit()
    x = torch.randn(3, 1, 28, 28)
    z = enc(x)
    assert z.shape == (3, 49, 32)
    idx = torch.tensor([[0, 5, 48], [1, 2, 3], [47, 48, 0]])
    assert enc(x, idx).shape == (3, 3, 32)


def test_vit_idx_tokens_only_see_kept_patches():
    """Tokens computed from a subset must not depend on pixels of the dropped patches."""
    enc = tiny_vit().eval()
    x = torch.randn(1, 1, 28, 28)
    idx = torch.tensor([[0, 1, 2]])  # top-left three patches of the first row
    x2 = x.clone()
    x2[..., 20:, 20:] = 5.0  # change the bottom-right patches only
    assert torch.allclose(enc(x, idx), enc(x2, idx), atol=1e-6)
    assert not torch.allclose(enc(x), enc(x2), atol=1e-3)


def test_sincos_positions_distinct_any_rank():
    for grid in [(7, 7), (2, 4, 4)]:
        pe = sincos_pos_embed(48, grid)
        n = int(torch.tensor(grid).prod())
        assert pe.shape == (n, 48)
        assert torch.cdist(pe, pe).add(torch.eye(n) * 10).min() > 1e-3  # every position unique


def test_predictor_shapes_and_block_independence():
    pred = MaskTokenPredictor((7, 7), dim=32, pred_dim=16, depth=2, heads=2).eval()
    z = torch.randn(2, 10, 32)
    ctx = torch.arange(10).expand(2, -1)
    tgt = torch.tensor([[[20, 21, 27, 28], [40, 41, 47, 48]]] * 2)  # (B=2, M=2, Kt=4)
    out = pred(z, ctx, tgt)
    assert out.shape == (2, 2, 4, 32)
    # the prediction of block 0 does not depend on which positions block 1 asks for
    tgt2 = tgt.clone()
    tgt2[:, 1] = torch.tensor([30, 31, 37, 38])
    assert torch.allclose(pred(z, ctx, tgt2)[:, 0], out[:, 0], atol=1e-6)


def test_ema_moves_target_toward_online():
    online, target = tiny_vit(), tiny_vit()
    before = [(t - o).norm() for t, o in zip(target.parameters(), online.parameters())]
    ema_update(target, online, 0.9)
    after = [(t - o).norm() for t, o in zip(target.parameters(), online.parameters())]
    for b, a in zip(before, after):
        assert a <= 0.9 * b + 1e-6
    assert any(a < b for b, a in zip(before, after))
    ema_update(target, online, 0.0)
    assert all(torch.equal(t, o) for t, o in zip(target.parameters(), online.parameters()))


def test_foreach_lerp_ema_equals_the_per_parameter_update():
    """ema_update's one foreach lerp == m * target + (1 - m) * online parameter by parameter; buffers copied."""
    online, target = tiny_vit(), tiny_vit()
    online.register_buffer("count", torch.tensor([3.0]))
    target.register_buffer("count", torch.tensor([0.0]))
    m = 0.996
    expected = [m * t.detach() + (1 - m) * o.detach() for t, o in zip(target.parameters(), online.parameters())]
    ema_update(target, online, m)
    for (name, t), e in zip(target.named_parameters(), expected):
        assert torch.allclose(t, e, rtol=0, atol=1e-7), name
    assert torch.equal(target.count, online.count)


def test_ema_schedule():
    assert ema_momentum(0, 100, 0.996, 1.0) == 0.996
    assert abs(ema_momentum(50, 100, 0.996, 1.0) - 0.998) < 1e-12
    assert ema_momentum(100, 100, 0.996, 1.0) == 1.0


def test_every_method_learns_in_five_steps(five_steps):
    """Five optimiser steps on one batch give finite, falling loss; a target encoder (if any) gets no gradient."""
    for name, cls in METHODS.items():
        if getattr(cls, "is_video", False):  # video methods: tests/test_vjepa.py
            continue
        cfg = build_config({}, [f"--train.method={name}", "--model.dim=32", "--model.depth=2", "--model.heads=2",
                                "--model.pred_dim=16", "--model.pred_depth=1", "--model.pred_heads=2",
                                "--train.precision=fp32"])
        method = cls(cfg)
        # methods on other data than images (world_model: trajectories) provide an example batch
        x = cls.example_input(cfg, 16) if hasattr(cls, "example_input") else torch.randn(16, 1, 28, 28)
        losses, _ = five_steps(method, x)
        assert all(torch.isfinite(torch.tensor(losses)))
        assert losses[-1] < losses[0], (name, losses)
        if hasattr(method, "target_encoder"):
            assert all(p.grad is None for p in method.target_encoder.parameters())


@pytest.mark.parametrize("mask", [None, "bool", "float"])
def test_cpu_bf16_attention_matches_fused_fp32(mask):
    """The explicit bf16 attention path (CPU) agrees with PyTorch's fused fp32 kernel, values and gradients."""
    import torch.nn.functional as F

    from openjepa.models.vit import attention

    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 7, 16, generator=g) for _ in range(3))
    m = None
    if mask == "bool":
        m = torch.ones(7, 7, dtype=torch.bool).tril()  # causal
    elif mask == "float":
        m = torch.randn(7, 7, generator=g)
    ref_in = [t.clone().requires_grad_() for t in (q, k, v)]
    ref = F.scaled_dot_product_attention(*ref_in, attn_mask=m)
    ref.square().sum().backward()
    low_in = [t.to(torch.bfloat16).requires_grad_() for t in (q, k, v)]
    out = attention(*low_in, m)
    out.float().square().sum().backward()
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), ref, atol=0.05, rtol=0.05)
    for a, b in zip(low_in, ref_in):
        torch.testing.assert_close(a.grad.float(), b.grad, atol=0.1, rtol=0.1)
    if mask == "bool":  # causal: a change in the last token leaves the outputs of the others unchanged
        v2 = low_in[2].detach().clone()
        v2[:, :, -1] += 1
        out2 = attention(low_in[0].detach(), low_in[1].detach(), v2, m)
        assert torch.equal(out2[:, :, :-1], out.detach()[:, :, :-1])
