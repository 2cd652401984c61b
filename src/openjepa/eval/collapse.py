"""Collapse panel: cheap statistics of an embedding matrix z (N, D) that reveal representation collapse.

- RankMe (Garrido et al. 2023): exp(entropy of the normalised singular values of z); 1 for a constant or
  rank-1 batch, up to min(N, D) for a full-rank one.
- feat_std: mean over dimensions of the std of the l2-normalised embeddings; ~1/sqrt(D) for isotropic
  features, -> 0 when every sample maps to the same direction.
- mean_cos: mean pairwise cosine similarity between distinct samples; ~0 healthy, -> 1 collapsed.

`collapsed` is True when any of the following holds (thresholds chosen so that a standard Gaussian batch
is far from all of them and a constant batch trips all of them):
  feat_std * sqrt(D) < 0.1, RankMe < max(2, 0.01 * min(N, D)), or mean_cos > 0.9 with RankMe < 0.1 * min(N, D).
A high mean_cos alone is not collapse: healthy features can share a large common component (e.g. mean-pooled
tokens of videos whose static scene fills most of the frame) while still varying along many directions.
"""

from __future__ import annotations

import math

import torch

FEAT_STD_MIN = 0.1  # as a fraction of the isotropic value 1/sqrt(D)
MEAN_COS_MAX = 0.9
RANKME_MIN_FRAC = 0.01
RANKME_COS_FRAC = 0.1  # a high mean_cos counts only with RankMe below this share of min(N, D)


@torch.no_grad()
def rankme(z: torch.Tensor, eps: float = 1e-7) -> float:
    s = torch.linalg.svdvals(z.double())  # (min(N, D),)
    if s.sum() <= 0:
        return 1.0
    p = s / s.sum() + eps
    return float(torch.exp(-(p * p.log()).sum()))


@torch.no_grad()
def collapse_panel(z: torch.Tensor) -> dict[str, float | bool]:
    """z (N, D) embeddings -> {"rankme", "feat_std", "mean_cos", "collapsed"}."""
    if z.ndim != 2 or z.shape[0] < 2:
        raise ValueError(f"collapse_panel needs an (N, D) matrix with N >= 2, got shape {tuple(z.shape)}")
    z = z.double()
    N, D = z.shape
    zn = torch.nn.functional.normalize(z, dim=1)
    feat_std = float(zn.std(dim=0).mean())
    s = zn.sum(0)
    mean_cos = float((s @ s - (zn * zn).sum()) / (N * (N - 1)))
    rank = rankme(z)
    collapsed = (feat_std * math.sqrt(D) < FEAT_STD_MIN or rank < max(2.0, RANKME_MIN_FRAC * min(N, D))
                 or (mean_cos > MEAN_COS_MAX and rank < RANKME_COS_FRAC * min(N, D)))
    return {"rankme": rank, "feat_std": feat_std, "mean_cos": mean_cos, "collapsed": bool(collapsed)}


def collapse_message(panel: dict, step: int | None = None) -> str:
    where = f" at step {step}" if step is not None else ""
    return (f"REPRESENTATION COLLAPSE suspected{where}: RankMe={panel['rankme']:.2f}, "
            f"feat_std={panel['feat_std']:.4f}, mean_cos={panel['mean_cos']:.3f} "
            f"(a healthy run keeps RankMe well above 2, feat_std near 1/sqrt(D), mean_cos near 0)")
