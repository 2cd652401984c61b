"""Deterministic batch stream over an in-memory image tensor.

Every batch is a pure function of (seed, step): the epoch's permutation comes from (seed, epoch) and the
per-step randomness (augmentation, masks) from `step_generator(seed, step)`. A resumed run therefore sees
exactly the batches the uninterrupted run would have seen, with no sampler state to checkpoint.
With `world > 1` each rank takes a disjoint slice of every global batch.

The data may be one tensor (N, ...) or a dict of tensors that share their first axis (e.g. trajectories:
{"obs": (N, T, C, H, W) uint8, "a": (N, T, A) float}); a batch has the same form.
"""

from __future__ import annotations

import torch


def step_generator(seed: int, step: int, stream: int = 0) -> torch.Generator:
    """A CPU generator for one step; `stream` separates independent uses within a step."""
    return torch.Generator().manual_seed((seed * 1_000_003 + step * 8191 + stream * 131) % (2**63 - 1))


def num_rows(x: torch.Tensor | dict[str, torch.Tensor]) -> int:
    """Number of samples in a tensor (N, ...) or in a dict of tensors sharing their first axis."""
    if isinstance(x, dict):
        sizes = {k: v.shape[0] for k, v in x.items()}
        if len(set(sizes.values())) != 1:
            raise ValueError(f"dataset tensors differ in their number of samples: {sizes}")
        return next(iter(sizes.values()))
    return x.shape[0]


def take(x: torch.Tensor | dict[str, torch.Tensor], idx: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor]:
    """Rows `idx` of a tensor or of every tensor of a dict."""
    return {k: v[idx] for k, v in x.items()} if isinstance(x, dict) else x[idx]


def check_batch_size(n: int, batch_size: int, world: int, what: str) -> None:
    """A global batch of `batch_size` must fit in the `n` samples of `what` and split evenly over `world` ranks."""
    if n < batch_size:
        raise ValueError(f"{what} has {n} samples, fewer than data.batch_size={batch_size}; "
                         f"lower data.batch_size or add data")
    if batch_size % world:
        raise ValueError(f"data.batch_size={batch_size} is not divisible by the world size {world}")


class BatchStream:
    def __init__(self, x: torch.Tensor | dict[str, torch.Tensor], batch_size: int, seed: int, rank: int = 0,
                 world: int = 1):
        n = num_rows(x)
        check_batch_size(n, batch_size, world, "dataset")
        self.x, self.batch_size, self.seed, self.rank, self.world = x, batch_size, seed, rank, world
        self.n = n
        self.steps_per_epoch = n // batch_size
        self._epoch, self._perm = -1, None

    def epoch_of(self, step: int) -> int:
        return step // self.steps_per_epoch

    def indices(self, step: int) -> torch.Tensor:
        epoch = self.epoch_of(step)
        if epoch != self._epoch:
            g = torch.Generator().manual_seed(self.seed * 7919 + epoch)
            self._epoch, self._perm = epoch, torch.randperm(self.n, generator=g)
        i = (step % self.steps_per_epoch) * self.batch_size
        local = self.batch_size // self.world
        return self._perm[i + self.rank * local: i + (self.rank + 1) * local]

    def batch(self, step: int) -> torch.Tensor | dict[str, torch.Tensor]:
        """The rows of this step, e.g. uint8 (B_local, C, H, W) for images."""
        return take(self.x, self.indices(step))
