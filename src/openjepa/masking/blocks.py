"""2-D multi-block mask sampling for I-JEPA.

The sampler follows the multi-block strategy of Assran et al. (2023), "Self-Supervised
Learning from Images with a Joint-Embedding Predictive Architecture" (I-JEPA), written from
the paper's description, with several defects of the commonly used reference sampler fixed
(see :class:`MultiBlockMasker`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = ["MultiBlockMasker"]


def _check_range(name: str, value: tuple[float, float], *, upper_one: bool) -> None:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (lo, hi) of numbers, got {value!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if upper_one and not (0.0 < lo <= 1.0 and 0.0 < hi <= 1.0):
        raise ValueError(f"{name} values must lie in (0, 1], got {value!r}")
    if not upper_one and not (lo > 0.0 and hi > 0.0):
        raise ValueError(f"{name} values must be > 0, got {value!r}")
    if lo > hi:
        raise ValueError(f"{name} must satisfy lo <= hi, got {value!r}")


@dataclass
class MultiBlockMasker:
    """Seeded multi-block (context, targets) mask sampler for I-JEPA on an ``(h, w)`` patch grid.

    I-JEPA (Assran et al., 2023) predicts the representations of ``M`` rectangular *target*
    blocks from a large *context* block from which the target patches are removed. Each call
    returns, for a batch of ``B`` images:

    * ``ctx_idx``: ``(B, Kc)`` int64, sorted ascending, unique per row;
    * ``tgt_idx``: ``(B, M, Kt)`` int64 with ``M = n_targets``, each block in row-major order;

    all being flat patch indices ``row * w + col`` in ``[0, h * w)``. One target block size
    ``(bh, bw)`` (so ``Kt = bh * bw``) and one context block size are drawn per batch; block
    positions are drawn per sample and per block. A size comes from a scale ``s`` (fraction
    of the grid area) and an aspect ratio ``a = bh / bw``: ``area = s*h*w``,
    ``bh = round(sqrt(area*a))``, ``bw = round(sqrt(area/a))``, clamped to ``[1, h]`` /
    ``[1, w]``. The context of a sample is its context block minus the union of its target
    blocks, so context and targets are always disjoint; contexts are randomly subsampled to
    the batch minimum ``Kc`` and sorted. A sample is redrawn (rejection sampling, per sample)
    when its context would have fewer than ``min_context`` patches.

    Defects of the reference I-JEPA sampler fixed here:

    * every top-left position keeping a block inside the grid is reachable, including
      blocks touching the last row/column (the reference used an exclusive upper bound
      one too small);
    * scale and aspect ratio are drawn independently (the aspect log-uniformly), instead
      of both being derived from one shared uniform draw;
    * contexts are truncated to the batch minimum by a random subset (from ``generator``)
      rather than always dropping the highest patch indices;
    * sampling always terminates: after ``max_tries`` redraws of the failing samples the
      sampler falls back to (1) shrinking the batch's target block by one patch along its
      longer side (re-running the retries each time) down to ``1x1``, then (2) using the
      whole grid as the context block with ``1x1`` targets; if that still fails it raises
      ``ValueError`` naming the grid, the scales and ``min_context``. The number of target
      blocks is never changed, so ``tgt_idx`` always has ``M = n_targets``.

    All randomness comes from the ``torch.Generator`` passed to :meth:`__call__`, so equal
    generator states give identical masks.
    """

    grid: tuple[int, int]
    n_targets: int = 4
    target_scale: tuple[float, float] = (0.15, 0.2)
    target_aspect: tuple[float, float] = (0.75, 1.5)
    context_scale: tuple[float, float] = (0.85, 1.0)
    context_aspect: tuple[float, float] = (1.0, 1.0)
    min_context: int = 4
    max_tries: int = 20

    def __post_init__(self) -> None:
        try:
            h, w = self.grid
        except (TypeError, ValueError):
            raise ValueError(f"grid must be a pair (h, w), got {self.grid!r}") from None
        if isinstance(h, bool) or isinstance(w, bool) or int(h) != h or int(w) != w or h < 1 or w < 1:
            raise ValueError(f"grid must be two positive integers, got {self.grid!r}")
        self.grid = (int(h), int(w))
        for name in ("n_targets", "min_context", "max_tries"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        _check_range("target_scale", self.target_scale, upper_one=True)
        _check_range("context_scale", self.context_scale, upper_one=True)
        _check_range("target_aspect", self.target_aspect, upper_one=False)
        _check_range("context_aspect", self.context_aspect, upper_one=False)
        self.target_scale = tuple(float(v) for v in self.target_scale)  # type: ignore[assignment]
        self.context_scale = tuple(float(v) for v in self.context_scale)  # type: ignore[assignment]
        self.target_aspect = tuple(float(v) for v in self.target_aspect)  # type: ignore[assignment]
        self.context_aspect = tuple(float(v) for v in self.context_aspect)  # type: ignore[assignment]

    # ------------------------------------------------------------------ helpers
    def _block_size(self, scale: float, aspect: float) -> tuple[int, int]:
        """Block ``(bh, bw)`` for a scale (fraction of grid area) and aspect ratio ``bh/bw``."""
        h, w = self.grid
        area = scale * h * w
        bh = int(math.floor(math.sqrt(area * aspect) + 0.5))
        bw = int(math.floor(math.sqrt(area / aspect) + 0.5))
        return min(max(bh, 1), h), min(max(bw, 1), w)

    def _draw_size(
        self, scale: tuple[float, float], aspect: tuple[float, float], generator: torch.Generator
    ) -> tuple[int, int]:
        u_s, u_a = torch.rand(2, generator=generator, device=generator.device, dtype=torch.float64).tolist()
        s = scale[0] + (scale[1] - scale[0]) * u_s
        la, lb = math.log(aspect[0]), math.log(aspect[1])
        a = math.exp(la + (lb - la) * u_a)
        return self._block_size(s, a)

    def _error(self) -> ValueError:
        return ValueError(
            f"MultiBlockMasker cannot keep min_context={self.min_context} context patches on grid "
            f"{self.grid} with n_targets={self.n_targets}, target_scale={self.target_scale}, "
            f"context_scale={self.context_scale} (retries and fallbacks exhausted); lower "
            f"min_context, n_targets or target_scale, or use a larger grid"
        )

    def _place(
        self,
        batch_size: int,
        tgt_hw: tuple[int, int],
        ctx_hw: tuple[int, int],
        generator: torch.Generator,
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Draw positions with per-sample rejection; return (tgt_top_left, ctx_mask) or None."""
        h, w = self.grid
        m = self.n_targets
        dev = generator.device
        (th, tw), (ch, cw) = tgt_hw, ctx_hw
        rows = torch.arange(h, device=dev)
        cols = torch.arange(w, device=dev)
        tgt_tl = torch.zeros(batch_size, m, 2, dtype=torch.long, device=dev)
        ctx = torch.zeros(batch_size, h, w, dtype=torch.bool, device=dev)
        todo = torch.arange(batch_size, device=dev)
        for _ in range(self.max_tries):
            n = todo.numel()
            # inclusive upper bounds: randint's high is exclusive, so h - bh + 1 reaches the last row
            t_top = torch.randint(0, h - th + 1, (n, m), generator=generator, device=dev)
            t_left = torch.randint(0, w - tw + 1, (n, m), generator=generator, device=dev)
            c_top = torch.randint(0, h - ch + 1, (n, 1), generator=generator, device=dev)
            c_left = torch.randint(0, w - cw + 1, (n, 1), generator=generator, device=dev)
            t_r = (rows >= t_top[..., None]) & (rows < t_top[..., None] + th)  # (n, m, h)
            t_c = (cols >= t_left[..., None]) & (cols < t_left[..., None] + tw)  # (n, m, w)
            union = (t_r[..., :, None] & t_c[..., None, :]).any(dim=1)  # (n, h, w)
            c_r = (rows >= c_top) & (rows < c_top + ch)  # (n, h)
            c_c = (cols >= c_left) & (cols < c_left + cw)  # (n, w)
            cmask = c_r[:, :, None] & c_c[:, None, :] & ~union
            good = cmask.flatten(1).sum(dim=1) >= self.min_context
            idx = todo[good]
            tgt_tl[idx] = torch.stack((t_top, t_left), dim=-1)[good]
            ctx[idx] = cmask[good]
            todo = todo[~good]
            if todo.numel() == 0:
                return tgt_tl, ctx
        return None

    # --------------------------------------------------------------------- call
    def __call__(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Sample one batch of masks.

        Returns ``ctx_idx`` ``(B, Kc)`` int64 (sorted, unique per row) and ``tgt_idx``
        ``(B, M, Kt)`` int64 (``M = n_targets``, each block row-major), flat indices
        ``row * w + col`` into the ``(h, w)`` grid. Context and targets are disjoint per sample.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        h, w = self.grid
        dev = generator.device
        tgt_hw = self._draw_size(self.target_scale, self.target_aspect, generator)
        ctx_hw = self._draw_size(self.context_scale, self.context_aspect, generator)

        placed = self._place(batch_size, tgt_hw, ctx_hw, generator)
        while placed is None:
            th, tw = tgt_hw
            if th > 1 or tw > 1:  # fallback 1: shrink the target block along its longer side
                tgt_hw = (th - 1, tw) if th >= tw and th > 1 else (th, tw - 1)
            elif ctx_hw != (h, w):  # fallback 2: whole grid as context block, 1x1 targets
                ctx_hw = (h, w)
            else:
                raise self._error()
            placed = self._place(batch_size, tgt_hw, ctx_hw, generator)
        tgt_tl, ctx = placed

        # targets: top-left flat index + row-major offsets inside the block
        th, tw = tgt_hw
        offs = (torch.arange(th, device=dev)[:, None] * w + torch.arange(tw, device=dev)[None, :]).flatten()
        tgt_idx = (tgt_tl[..., 0] * w + tgt_tl[..., 1])[..., None] + offs  # (B, M, Kt)

        # contexts: random subset of size Kc (batch minimum), then sorted
        ctx = ctx.flatten(1)
        kc = int(ctx.sum(dim=1).min())
        keys = torch.rand(ctx.shape, generator=generator, device=dev)
        keys = keys.masked_fill(~ctx, 2.0)  # non-context patches sort last
        ctx_idx = keys.argsort(dim=1)[:, :kc].sort(dim=1).values
        return ctx_idx.long(), tgt_idx.long()
