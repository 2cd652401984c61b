import math

import torch

from openjepa.eval.collapse import collapse_panel, rankme
from openjepa.eval.knn import knn_top1
from openjepa.eval.probe import linear_probe


def test_panel_flags_constant_embedding():
    z = torch.ones(256, 64) * 3.0 + 1e-6 * torch.randn(256, 64)
    p = collapse_panel(z)
    assert p["collapsed"]
    assert p["rankme"] < 2 and p["mean_cos"] > 0.99


def test_panel_passes_gaussian():
    z = torch.randn(512, 64)
    p = collapse_panel(z)
    assert not p["collapsed"]
    assert p["rankme"] > 40
    assert abs(p["feat_std"] * math.sqrt(64) - 1) < 0.1
    assert abs(p["mean_cos"]) < 0.05


def test_panel_flags_low_rank_direction_collapse():
    z = torch.randn(512, 1) @ torch.randn(1, 64)  # all samples on one line
    assert collapse_panel(z)["collapsed"]


def test_panel_shared_offset_is_not_collapse_but_few_directions_are():
    g = torch.Generator().manual_seed(0)
    healthy = 4.0 + torch.randn(512, 64, generator=g)  # common component, 64 directions of variation
    p = collapse_panel(healthy)
    assert p["mean_cos"] > 0.9 and p["rankme"] > 6.4 and not p["collapsed"]
    narrow = 4.0 + 0.5 * torch.randn(512, 3, generator=g) @ torch.randn(3, 64, generator=g)  # 3 directions
    p = collapse_panel(narrow)
    assert p["mean_cos"] > 0.9 and p["rankme"] < 6.4 and p["collapsed"]


def test_rankme_counts_dimensions():
    z = torch.zeros(100, 8)
    z[:, :4] = torch.randn(100, 4)
    assert 3.0 < rankme(z) <= 4.01


def _clusters(n, d=16, classes=4, noise=0.3, seed=0):
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(classes, d, generator=g) * 3
    y = torch.randint(0, classes, (n,), generator=g)
    return centers[y] + noise * torch.randn(n, d, generator=g), y


def test_knn_and_probe_separate_clusters_and_fail_on_noise():
    z, y = _clusters(600)
    ztr, ytr, zte, yte = z[:400], y[:400], z[400:], y[400:]
    assert knn_top1(ztr, ytr, zte, yte, k=10) > 0.95
    assert linear_probe(ztr, ytr, zte, yte)["linear_top1"] > 0.95
    noise = torch.randn(200, 16)
    assert knn_top1(ztr, ytr, noise, yte, k=10) < 0.5
