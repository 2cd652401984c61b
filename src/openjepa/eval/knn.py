"""Weighted k-nearest-neighbour classifier on frozen features (cosine similarity, as in DINO / Wu et al. 2018).

Each test sample votes with its k most similar train samples, weighted by exp(sim / T). Shapes:
train_z (N, D), train_y (N,), test_z (M, D), test_y (M,).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


@torch.no_grad()
def knn_top1(train_z: torch.Tensor, train_y: torch.Tensor, test_z: torch.Tensor, test_y: torch.Tensor,
             k: int = 20, temperature: float = 0.07, chunk: int = 1024) -> float:
    train_n = F.normalize(train_z.float(), dim=1)
    test_n = F.normalize(test_z.float(), dim=1)
    n_classes = int(max(train_y.max(), test_y.max())) + 1
    k = min(k, train_n.shape[0])
    correct = 0
    for i in range(0, test_n.shape[0], chunk):
        sim = test_n[i:i + chunk] @ train_n.T  # (m, N)
        top_sim, top_idx = sim.topk(k, dim=1)  # (m, k)
        votes = torch.zeros(sim.shape[0], n_classes)
        votes.scatter_add_(1, train_y[top_idx], (top_sim / temperature).exp())
        correct += int((votes.argmax(1) == test_y[i:i + chunk]).sum())
    return correct / test_n.shape[0]
