"""DataLoader-based batch source for streaming datasets, with BatchStream's (seed, step) contract.

    source = StreamingSource(records, decoder, batch_size, seed, rank, world, workers=4)
    for b in source.batches(start=k):        # b["x"] uint8 (B_local, C, H, W) or (B_local, C, T, H, W)
        ...                                  # b["y"] int64 (B_local,) when labelled, b["index"], b["step"]
    source.new_bad_files()                   # [(name, reason)] seen since the last call: log them

What a step sees is a pure function of (seed, step, world, rank), whatever the number of workers:
* epoch e = step // steps_per_epoch permutes the N samples with a generator seeded by (seed, e) (numpy
  SeedSequence); position j of step s's global batch is sample perm[(s % steps_per_epoch) * B + j], and
  rank r of w takes positions [r * B/w, (r+1) * B/w), so the ranks' union is the world-1 batch;
* the sample's augmentation (crop box, flip, clip window) comes from a generator seeded by (seed, s, j);
* an unreadable sample is replaced by the next position of the permutation (j+1, j+2, ... mod N; the same
  augmentation draws), and the replaced file travels back with the batch, so bad files are counted in the main
  process in step order. Once more than max_bad_fraction of the N samples have proved unreadable, or
  `max_tries` in a row fail for one sample, a BadDataError names examples.
Items are (step, j) pairs: a batch sampler yields this rank's pairs for steps start, start+1, ...; each DataLoader
worker decodes whole batches, and the loader hands them back in order. Resuming at step k = a new iterator
started at k, with no sampler state to checkpoint.

Masks are not made here: the training loop still draws them in the main process with method.collate, from
the step's generator (see notes/issue27_integration.md).
"""

from __future__ import annotations

import itertools
import signal
from typing import Any, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from openjepa.data.stream import check_batch_size
from openjepa.data.streaming.decode import BAD_DATA, ClipDecoder, ImageDecoder
from openjepa.data.streaming.index import Records

_PERM, _AUG = 7919, 27  # tags that keep the permutation and augmentation seed sequences apart


def _tensors(x: np.ndarray | dict[str, np.ndarray]) -> torch.Tensor | dict[str, torch.Tensor]:
    """A decoder's output as tensors: one array, or a dict of them (ViewsDecoder's views)."""
    return {k: torch.from_numpy(v) for k, v in x.items()} if isinstance(x, dict) else torch.from_numpy(x)


def _stack(xs: list) -> torch.Tensor | dict[str, torch.Tensor]:
    """Per-sample tensors (or dicts of them) -> batched along a new first axis."""
    return {k: torch.stack([x[k] for x in xs]) for k in xs[0]} if isinstance(xs[0], dict) else torch.stack(xs)


def _ignore_sigint(worker_id: int) -> None:
    """Workers leave Ctrl-C to the training process, which finishes its step and checkpoints (its batch must
    still arrive); they stop with the loader."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class BadDataError(ValueError):
    """Too much of the dataset is unreadable; the message names examples."""


def _examples(bad: list[tuple[str, str]], k: int = 3) -> str:
    shown = "; ".join(f"{n} ({r})" for n, r in bad[:k])
    return shown + (f"; and {len(bad) - k} more" if len(bad) > k else "")


class StepSamples(Dataset):
    """Map-style dataset whose item (step, j) is position j of step's global batch (see the module docstring)."""

    def __init__(self, records: Records, decoder: ImageDecoder | ClipDecoder, batch_size: int, seed: int,
                 max_tries: int = 64):
        self.records, self.decoder, self.batch_size, self.seed = records, decoder, batch_size, seed
        self.n = len(records)
        self.steps_per_epoch = self.n // batch_size
        self.max_tries = min(max_tries, self.n)
        self._perms: dict[int, np.ndarray] = {}

    def permutation(self, epoch: int) -> np.ndarray:
        if epoch not in self._perms:
            if len(self._perms) >= 2:  # a worker straddles at most two epochs at a time
                self._perms.pop(min(self._perms))
            self._perms[epoch] = np.random.default_rng([self.seed, epoch, _PERM]).permutation(self.n)
        return self._perms[epoch]

    def __getitem__(self, item: tuple[int, int]) -> dict[str, Any]:
        step, j = item
        perm = self.permutation(step // self.steps_per_epoch)
        pos = (step % self.steps_per_epoch) * self.batch_size + j
        u = np.random.default_rng([self.seed, step, j, _AUG]).random(self.decoder.draws)
        bad: list[tuple[str, str]] = []
        for t in range(self.max_tries):
            i = int(perm[(pos + t) % self.n])
            try:
                x = self.decoder(self.records.source(i), u)
            except BAD_DATA as e:
                bad.append((self.records.name(i), f"{type(e).__name__}: {e}"))
                continue
            return {"x": _tensors(x), "y": self.records.label(i), "index": i, "bad": bad}
        raise BadDataError(f"step {step}, position {j}: {len(bad)} samples in a row are unreadable, e.g. "
                           f"{_examples(bad)}; is {self.records.root} the dataset you meant?")


class StepBatchSampler(Sampler):
    """This rank's items of steps start, start+1, ... (end excluded; None: for ever)."""

    def __init__(self, batch_size: int, rank: int, world: int, start: int, end: int | None = None):
        self.local = batch_size // world
        self.rank, self.start, self.end = rank, start, end

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        steps = range(self.start, self.end) if self.end is not None else itertools.count(self.start)
        lo = self.rank * self.local
        for s in steps:
            yield [(s, j) for j in range(lo, lo + self.local)]

    def __len__(self) -> int:
        if self.end is None:
            raise TypeError("an endless step sampler has no length")
        return max(self.end - self.start, 0)


def collate_samples(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Items of one step -> {"x": stacked uint8, "y", "index": int64 (B_local,), "bad": [(name, reason)]}."""
    return {"x": _stack([it["x"] for it in items]),
            "y": torch.tensor([it["y"] for it in items], dtype=torch.int64),
            "index": torch.tensor([it["index"] for it in items], dtype=torch.int64),
            "bad": [b for it in items for b in it["bad"]]}


class StreamingSource:
    """Batches of one rank from a streaming dataset, decoded in `workers` DataLoader processes."""

    def __init__(self, records: Records, decoder: ImageDecoder | ClipDecoder, batch_size: int, seed: int,
                 rank: int = 0, world: int = 1, workers: int = 0, pin_memory: bool = False,
                 prefetch_factor: int = 2, max_bad_fraction: float = 0.001, max_tries: int = 64):
        n = len(records)
        check_batch_size(n, batch_size, world, f"dataset {records.root}")
        if not 0 <= max_bad_fraction <= 1:
            raise ValueError(f"data.max_bad_fraction must be in [0, 1], got {max_bad_fraction}")
        if workers < 0:
            raise ValueError(f"data.workers must be >= 0, got {workers}")
        self.samples = StepSamples(records, decoder, batch_size, seed, max_tries)
        self.records, self.batch_size, self.rank, self.world = records, batch_size, rank, world
        self.n, self.steps_per_epoch = n, self.samples.steps_per_epoch
        self.workers, self.pin_memory, self.prefetch_factor = workers, pin_memory, prefetch_factor
        self.max_bad_fraction = max_bad_fraction
        self.bad: dict[str, str] = {}  # every distinct unreadable file seen, name -> reason, in step order
        self._unreported: list[tuple[str, str]] = []

    def loader(self, start: int, end: int | None = None) -> DataLoader:
        return DataLoader(self.samples, batch_sampler=StepBatchSampler(self.batch_size, self.rank, self.world,
                                                                       start, end),
                          num_workers=self.workers, collate_fn=collate_samples, pin_memory=self.pin_memory,
                          prefetch_factor=self.prefetch_factor if self.workers else None,
                          worker_init_fn=_ignore_sigint if self.workers else None)

    def batches(self, start: int = 0, end: int | None = None) -> Iterator[dict[str, Any]]:
        """Batches of steps start, start+1, ... (end excluded): {"step", "x", "y" (labelled data only),
        "index"}; raises BadDataError once too much of the data has proved unreadable."""
        for step, b in enumerate(self.loader(start, end), start):
            self.record_bad(b.pop("bad"))
            if not self.records.labelled:
                del b["y"]
            b["step"] = step
            yield b

    def batch(self, step: int) -> dict[str, Any]:
        """One step's batch (a fresh loader each call: for tests and spot checks, not for a training loop)."""
        return next(self.batches(step, step + 1))

    def new_bad_files(self) -> list[tuple[str, str]]:
        """The unreadable files first seen since the last call, (name, reason): what the loop logs."""
        out, self._unreported = self._unreported, []
        return out

    def reset_bad(self, bad: list[tuple[str, str]]) -> None:
        """The unreadable files known at a checkpoint (resume, rollback) replace the count; none of them is
        reported again."""
        self.bad, self._unreported = dict(bad), []

    def record_bad(self, bad: list[tuple[str, str]]) -> None:
        """Count unreadable files (what each batch carries back; under DDP also the other ranks' lists, gathered
        by the loop) and raise BadDataError past max_bad_fraction."""
        for name, reason in bad:
            if name not in self.bad:
                self.bad[name] = reason
                self._unreported.append((name, reason))
        if len(self.bad) > self.max_bad_fraction * self.n:
            raise BadDataError(
                f"{len(self.bad)} of the {self.n} samples of {self.records.root} are unreadable, more than "
                f"data.max_bad_fraction={self.max_bad_fraction:g} of them: {_examples(list(self.bad.items()))}. "
                f"Fix or remove these files (or raise data.max_bad_fraction)")


class _IndexSamples(Dataset):
    """Item i -> sample i with the decoder's evaluation view; an unreadable one comes back with x None."""

    def __init__(self, records: Records, decoder: ImageDecoder | ClipDecoder):
        self.records, self.decoder = records, decoder
        self.u = np.full(decoder.draws, 0.5)  # unused by the centre view except the clip window: the middle

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> dict[str, Any]:
        try:
            x = _tensors(self.decoder(self.records.source(i), self.u))
        except BAD_DATA as e:
            return {"x": None, "y": self.records.label(i), "index": i,
                    "bad": [(self.records.name(i), f"{type(e).__name__}: {e}")]}
        return {"x": x, "y": self.records.label(i), "index": i, "bad": []}


def _collate_kept(items: list[dict[str, Any]]) -> dict[str, Any]:
    kept = [it for it in items if it["x"] is not None]
    out = collate_samples(kept) if kept else {"x": None, "y": torch.zeros(0, dtype=torch.int64),
                                              "index": torch.zeros(0, dtype=torch.int64)}
    out["bad"] = [b for it in items for b in it["bad"]]
    return out


def sequential_batches(records: Records, decoder: ImageDecoder | ClipDecoder, batch_size: int, workers: int = 0,
                       pin_memory: bool = False) -> Iterator[dict[str, Any]]:
    """Every sample once, in index order, with the evaluation view (build the decoder with crop_scale=None):
    for feature extraction and probes. Unreadable samples are dropped from their batch and listed in its "bad";
    a batch may therefore be short, or hold x None when all of it was unreadable."""
    loader = DataLoader(_IndexSamples(records, decoder), batch_size=batch_size, shuffle=False, num_workers=workers,
                        collate_fn=_collate_kept, pin_memory=pin_memory)
    yield from loader
