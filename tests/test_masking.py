"""Property tests for openjepa.masking.blocks.MultiBlockMasker."""

from __future__ import annotations

import pytest
import torch

from openjepa.masking.blocks import MultiBlockMasker


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def block_shape(idx: torch.Tensor, w: int) -> tuple[int, int]:
    rows, cols = idx // w, idx % w
    return int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)


def check_batch(ctx: torch.Tensor, tgt: torch.Tensor, m: MultiBlockMasker, b: int) -> None:
    h, w = m.grid
    assert ctx.dtype == torch.int64 and tgt.dtype == torch.int64
    assert ctx.ndim == 2 and ctx.shape[0] == b and ctx.shape[1] >= m.min_context
    assert tgt.ndim == 3 and tgt.shape[:2] == (b, m.n_targets) and tgt.shape[2] >= 1
    for t in (ctx, tgt):
        assert int(t.min()) >= 0 and int(t.max()) < h * w
    # sorted ascending, no duplicates
    assert bool((ctx[:, 1:] > ctx[:, :-1]).all())
    for i in range(b):
        assert not set(ctx[i].tolist()) & set(tgt[i].flatten().tolist())


@pytest.mark.parametrize("grid", [(7, 7), (8, 8), (6, 10), (14, 14)])
def test_shapes_range_disjoint_sorted(grid):
    m = MultiBlockMasker(grid)
    g = gen(0)
    for b in (1, 5, 32):
        ctx, tgt = m(b, g)
        check_batch(ctx, tgt, m, b)


def test_targets_are_rectangles_of_one_size():
    m = MultiBlockMasker((9, 11), target_aspect=(0.5, 2.0))
    g = gen(1)
    h, w = m.grid
    for _ in range(30):
        _, tgt = m(8, g)
        kt = tgt.shape[2]
        bh, bw = block_shape(tgt[0, 0], w)
        assert bh * bw == kt
        for blk in tgt.reshape(-1, kt):
            top, left = int(blk[0]) // w, int(blk[0]) % w
            assert top + bh <= h and left + bw <= w
            expect = [(top + r) * w + left + c for r in range(bh) for c in range(bw)]
            assert blk.tolist() == expect  # full rectangle, row-major, same size for all blocks


def test_block_size_formula():
    m = MultiBlockMasker((10, 10))
    assert m._block_size(0.16, 1.0) == (4, 4)
    assert m._block_size(0.18, 2.0) == (6, 3)
    assert m._block_size(0.18, 0.5) == (3, 6)
    assert m._block_size(1.0, 1.0) == (10, 10)
    assert m._block_size(1.0, 4.0) == (10, 5)  # clamped to h
    assert m._block_size(0.001, 1.0) == (1, 1)  # clamped to >= 1


def test_determinism():
    m = MultiBlockMasker((7, 7))
    a = m(16, gen(123))
    b = m(16, gen(123))
    c = m(16, gen(124))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not (a[0].shape == c[0].shape and torch.equal(a[0], c[0]) and a[1].shape == c[1].shape
                and torch.equal(a[1], c[1]))


def test_coverage_includes_last_row_and_column():
    h, w = 7, 7
    m = MultiBlockMasker((h, w))
    g = gen(2)
    seen_ctx = torch.zeros(h * w, dtype=torch.bool)
    seen_tgt = torch.zeros(h * w, dtype=torch.bool)
    bottom_right_blocks = 0
    for _ in range(200):
        ctx, tgt = m(4, g)
        seen_ctx[ctx.flatten()] = True
        seen_tgt[tgt.flatten()] = True
        last = tgt[..., -1]
        bottom_right_blocks += int(((last // w == h - 1) & (last % w == w - 1)).sum())
    assert bool(seen_ctx.all()), (~seen_ctx).nonzero().flatten().tolist()
    assert bool(seen_tgt.all()), (~seen_tgt).nonzero().flatten().tolist()
    assert bottom_right_blocks > 0  # blocks touching both the last row and last column occur


def test_scale_and_aspect_independent():
    # With one shared uniform draw, small area <=> wide (a < 1) and large area <=> tall:
    # "small and tall" and "large and wide" blocks would never occur.
    h = w = 20
    m = MultiBlockMasker((h, w), target_scale=(0.05, 0.3), target_aspect=(0.4, 2.5))
    g = gen(3)
    shapes = []
    for _ in range(300):
        _, tgt = m(1, g)
        shapes.append(block_shape(tgt[0, 0], w))
    areas = sorted(bh * bw for bh, bw in shapes)
    q1, q3 = areas[len(areas) // 4], areas[3 * len(areas) // 4]
    small_tall = sum(1 for bh, bw in shapes if bh * bw <= q1 and bh > bw)
    small_wide = sum(1 for bh, bw in shapes if bh * bw <= q1 and bh < bw)
    large_tall = sum(1 for bh, bw in shapes if bh * bw >= q3 and bh > bw)
    large_wide = sum(1 for bh, bw in shapes if bh * bw >= q3 and bh < bw)
    assert min(small_tall, small_wide, large_tall, large_wide) >= 5, (
        small_tall, small_wide, large_tall, large_wide)


def test_context_subsample_is_random_not_truncated():
    # Full-grid context block, so a sample's pre-subsampling context is "not in a target".
    # Truncating to the batch minimum by dropping the highest indices keeps patch 0 almost
    # always and patch h*w-1 rarely; random subsampling keeps both at the same rate (the
    # target placement is symmetric under a 180-degree rotation of the grid).
    h = w = 7
    m = MultiBlockMasker((h, w), context_scale=(1.0, 1.0), n_targets=4)
    g = gen(4)
    kept = {0: 0, h * w - 1: 0}
    avail = {0: 0, h * w - 1: 0}
    sizes_differ = False
    for _ in range(50):
        ctx, tgt = m(16, g)
        for i in range(16):
            in_tgt = set(tgt[i].flatten().tolist())
            sizes_differ |= h * w - len(in_tgt) != ctx.shape[1]
            for p in kept:
                if p not in in_tgt:
                    avail[p] += 1
                    kept[p] += int(p in ctx[i].tolist())
    assert sizes_differ  # subsampling actually happened
    r_first, r_last = kept[0] / avail[0], kept[h * w - 1] / avail[h * w - 1]
    assert abs(r_first - r_last) < 0.15, (r_first, r_last)
    assert r_first < 0.95, r_first


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(grid=(4, 4)),
        dict(grid=(4, 4), n_targets=4, target_scale=(0.3, 0.4), min_context=4),
        dict(grid=(2, 2), n_targets=1, target_scale=(0.25, 0.25), min_context=1),
        dict(grid=(7, 7), target_scale=(0.6, 0.8), min_context=10),  # needs the shrink fallback
    ],
)
def test_small_grids_valid(kwargs):
    m = MultiBlockMasker(**kwargs)
    g = gen(5)
    for _ in range(20):
        ctx, tgt = m(8, g)
        check_batch(ctx, tgt, m, 8)


def test_fallback_shrinks_targets():
    m = MultiBlockMasker((4, 4), n_targets=4, target_scale=(1.0, 1.0), target_aspect=(1.0, 1.0),
                         context_scale=(1.0, 1.0), min_context=8)
    ctx, tgt = m(4, gen(6))
    check_batch(ctx, tgt, m, 4)
    assert tgt.shape[2] < 16


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(grid=(2, 2)),  # 4 patches, 1 must be a target, min_context=4 impossible
        dict(grid=(3, 3), min_context=9),
        dict(grid=(1, 1), min_context=1),
    ],
)
def test_impossible_raises_clear_error(kwargs):
    m = MultiBlockMasker(**kwargs)
    with pytest.raises(ValueError) as ei:
        m(4, gen(7))
    msg = str(ei.value)
    assert str(m.grid) in msg and "min_context" in msg
    assert "target_scale" in msg and "context_scale" in msg


@pytest.mark.parametrize(
    "field, value",
    [
        ("grid", (0, 7)),
        ("grid", (7,)),
        ("n_targets", 0),
        ("min_context", 0),
        ("max_tries", 0),
        ("target_scale", (0.0, 0.2)),
        ("target_scale", (0.3, 0.2)),
        ("target_scale", (0.5, 1.5)),
        ("context_scale", (0.9, 1.1)),
        ("target_aspect", (0.0, 1.0)),
        ("target_aspect", (2.0, 1.0)),
        ("context_aspect", (-1.0, 1.0)),
    ],
)
def test_invalid_config_names_field(field, value):
    kwargs = {"grid": (7, 7), field: value}
    with pytest.raises(ValueError, match=field):
        MultiBlockMasker(**kwargs)


def test_invalid_batch_size():
    with pytest.raises(ValueError, match="batch_size"):
        MultiBlockMasker((7, 7))(0, gen(0))
