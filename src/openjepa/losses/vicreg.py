"""VICReg variance and covariance terms (Bardes, Ponce, LeCun 2022), computed in fp32.

For embeddings z (N, D) (N samples of one batch):
    variance   = mean_j relu(gamma - sqrt(Var(z_j) + eps))        hinge on each dimension's std
    covariance = sum_{i != j} Cov(z)_ij^2 / D                      decorrelates dimensions
"""

from __future__ import annotations

import torch


def variance_loss(z: torch.Tensor, gamma: float = 1.0, eps: float = 1e-4) -> torch.Tensor:
    z = z.float()
    std = torch.sqrt(z.var(dim=0) + eps)  # (D,)
    return torch.relu(gamma - std).mean()


def covariance_loss(z: torch.Tensor) -> torch.Tensor:
    z = z.float()
    N, D = z.shape
    zc = z - z.mean(dim=0)
    cov = zc.T @ zc / (N - 1)  # (D, D)
    off = cov - torch.diag(torch.diagonal(cov))
    return off.pow(2).sum() / D
