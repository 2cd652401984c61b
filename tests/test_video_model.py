"""Video encoder, tube masks and the frame-causal predictor: shapes, coverage, no peeking at the future."""

import pytest
import torch

from openjepa.masking.tubes import TubeMasker, extend_over_time, future_masks
from openjepa.models.video import CausalPredictor, TubeletEmbed, VideoTransformer, patchify3d


def test_tubelet_embed_shapes_and_patchify_layout():
    emb = TubeletEmbed(img_size=16, frames=8, patch_size=4, tubelet=2, in_chans=3, dim=12)
    assert emb.grid == (4, 4, 4) and emb.num_patches == 64
    x = torch.randn(2, 3, 8, 16, 16)
    z = emb(x)
    assert z.shape == (2, 64, 12)
    # token k is a linear map of exactly patchify3d(x)[:, k]
    px = patchify3d(x, 2, 4)
    assert px.shape == (2, 64, 3 * 2 * 4 * 4)
    ref = px @ emb.proj.weight.flatten(1).T + emb.proj.bias
    assert torch.allclose(z, ref, atol=1e-5)
    # token (s, i, j) covers frames 2s..2s+1, rows 4i.., cols 4j..
    k = 1 * 16 + 2 * 4 + 3
    assert torch.equal(px[:, k].view(2, 3, 2, 4, 4), x[:, :, 2:4, 8:12, 12:16])


@pytest.mark.parametrize("patch_size,tubelet", [(8, 2), (4, 1), (2, 2)])
def test_hmlp_stem_tokens_see_only_their_own_tubelet(patch_size, tubelet):
    """The non-linear stem keeps the linear embedding's locality: a pixel changes exactly the token of its
    tubelet (so masks and frame-causality hold), and every pixel of a tubelet reaches its token."""
    torch.manual_seed(0)
    emb = TubeletEmbed(img_size=16, frames=4, patch_size=patch_size, tubelet=tubelet, in_chans=3, dim=16, stem="hmlp")
    emb.reset_parameters()
    _, h, w = emb.grid
    x = torch.randn(2, 3, 4, 16, 16)
    z = emb(x)
    assert z.shape == (2, emb.num_patches, 16)
    gen = torch.Generator().manual_seed(1)
    for _ in range(12):
        c, t, i, j = (int(torch.randint(n, (1,), generator=gen)) for n in (3, 4, 16, 16))
        x2 = x.clone()
        x2[1, c, t, i, j] += 2.0
        changed = ((emb(x2) - z).abs().sum(-1) > 1e-6).nonzero().tolist()
        assert changed == [[1, (t // tubelet) * h * w + (i // patch_size) * w + j // patch_size]]


def test_hmlp_stem_needs_a_power_of_two_patch():
    with pytest.raises(ValueError, match="power-of-two"):
        TubeletEmbed(img_size=12, frames=4, patch_size=6, tubelet=2, in_chans=1, dim=8, stem="hmlp")
    with pytest.raises(ValueError, match="unknown stem"):
        TubeletEmbed(img_size=16, frames=4, patch_size=4, tubelet=2, in_chans=1, dim=8, stem="conv")


def test_video_transformer_shapes_and_idx():
    enc = VideoTransformer(img_size=16, frames=8, patch_size=4, tubelet=2, in_chans=1, dim=24, depth=1, heads=2).eval()
    x = torch.randn(2, 1, 8, 16, 16)
    assert enc(x).shape == (2, 64, 24)
    idx = torch.arange(16).expand(2, -1)
    assert enc(x, idx).shape == (2, 16, 24)
    assert enc(torch.randn(2, 1, 12, 16, 16)).shape == (2, 96, 24)  # longer clips: more time slices


def test_future_masks_cover_the_grid_once():
    ctx, tgt = future_masks(3, (4, 2, 2), 1)
    assert ctx.shape == (3, 4) and tgt.shape == (3, 1, 12)
    assert torch.equal(torch.cat([ctx[0], tgt[0, 0]]), torch.arange(16))


def test_tube_masks_are_tubes_disjoint_from_context():
    grid = (4, 6, 6)
    masker = TubeMasker(grid, n_targets=3, target_scale=(0.1, 0.2), context_scale=(1.0, 1.0))
    ctx, tgt = masker(5, torch.Generator().manual_seed(0))
    assert ctx.shape[0] == 5 and tgt.shape[:2] == (5, 3)
    hw = 36
    for b in range(5):
        c = set(ctx[b].tolist())
        for m in range(3):
            t = tgt[b, m].view(4, -1)  # (T', Kt2): the same 2-D block at every slice
            assert torch.equal(t - t[:1], (torch.arange(4) * hw)[:, None].expand_as(t))
            assert not c & set(tgt[b, m].tolist())
        # context is the same 2-D set at every slice
        cv = ctx[b].view(4, -1)
        assert torch.equal(cv - cv[:1], (torch.arange(4) * hw)[:, None].expand_as(cv))
    again = masker(5, torch.Generator().manual_seed(0))
    assert torch.equal(again[0], ctx) and torch.equal(again[1], tgt)
    assert torch.equal(extend_over_time(torch.tensor([[0, 5]]), (2, 2, 3)), torch.tensor([[0, 5, 6, 11]]))


def test_causal_predictor_does_not_see_the_future():
    """Context at every slice, targets at every slice: changing the context at slice s+1 (a later frame)
    leaves every prediction for slices <= s unchanged, and changes some later one."""
    torch.manual_seed(0)
    grid = (4, 2, 2)
    pred = CausalPredictor(grid, dim=16, pred_dim=16, depth=2, heads=2).eval()
    ctx_idx = torch.tensor([[0, 1, 4, 5, 8, 9, 12, 13]])  # two tokens per slice
    tgt_idx = torch.tensor([[[2, 3, 6, 7, 10, 11, 14, 15]]])
    z = torch.randn(1, 8, 16)
    base = pred(z, ctx_idx, tgt_idx)
    for s in range(3):
        z2 = z.clone()
        z2[:, 2 * (s + 1):] += torch.randn_like(z2[:, 2 * (s + 1):])  # change slices > s
        out = pred(z2, ctx_idx, tgt_idx)
        early = 2 * (s + 1)  # target tokens at slices <= s
        assert torch.allclose(out[..., :early, :], base[..., :early, :], atol=1e-6)
        assert (out[..., early:, :] - base[..., early:, :]).abs().max() > 1e-5


def test_encoder_plus_predictor_future_mode_ignores_target_frames():
    """End to end: with future masks, changing frames after the context changes no prediction."""
    torch.manual_seed(0)
    enc = VideoTransformer(img_size=8, frames=8, patch_size=4, tubelet=2, in_chans=1, dim=16, depth=1, heads=2).eval()
    pred = CausalPredictor(enc.grid, dim=16, pred_dim=16, depth=1, heads=2).eval()
    ctx, tgt = future_masks(1, enc.grid, 2)  # frames 0-3 are context
    x = torch.randn(1, 1, 8, 8, 8)
    a = pred(enc(x, ctx), ctx, tgt)
    x2 = x.clone()
    x2[:, :, 4:] = torch.randn_like(x2[:, :, 4:])
    assert torch.equal(pred(enc(x2, ctx), ctx, tgt), a)
    x3 = x.clone()
    x3[:, :, 3] += 1.0
    assert (pred(enc(x3, ctx), ctx, tgt) - a).abs().max() > 1e-5
