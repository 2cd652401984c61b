"""The method contract: `Method` (the Protocol every entry of METHODS satisfies), `BaseMethod` (its defaults) and
`TargetEncoder` (the frozen target copy, its EMA step and the choice of the encoder to evaluate, written once).

The training loop, eval, export, the benches and planning use a method only through the names below; a
capability is a declared class attribute (`has_target`, `is_video`, `has_actions`), never probed with
`hasattr`.
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar, Protocol, runtime_checkable

import torch
from torch import nn

from openjepa.config import Config
from openjepa.models.ema import ema_step


@runtime_checkable
class Method(Protocol):
    """What the rest of OpenJEPA calls on a method (an nn.Module built as `METHODS[name](cfg)`)."""

    has_target: ClassVar[bool]  # a target encoder can be kept (reg.ema may be true); its default for reg.ema
    is_video: ClassVar[bool]  # trains on clips (B, C, T, H, W) from data.dataset physics or videos; has
    #                           future_error / copy_last_gain (surprise, the video monitor)
    has_actions: ClassVar[bool]  # action-conditioned world model: encode_state, encode_goal, imagine,
    #                              action_repeat (planning); trains on data.dataset=trajectories
    batch_dims: ClassVar[dict[str, int]]  # batch axis of each tensor `collate` returns (sharding, micro-batches)
    cfg: Config

    @classmethod
    def check(cls, cfg: Config) -> None:
        """Raise ConfigError naming the first key of cfg (set away from its default) that this method ignores."""

    def collate(self, x: Any, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """CPU-side augmentation and masks: a batch of normalised data -> the tensors `step` takes."""

    @classmethod
    def stream_decoder(cls, cfg: Config) -> Any:
        """Streaming datasets: the per-sample decoder + augmentation the DataLoader workers run
        (data/streaming: ImageDecoder, ClipDecoder, ViewsDecoder); a function of the config alone."""

    def collate_decoded(self, x: Any, generator: torch.Generator, batch_size: int, rows: slice
                        ) -> dict[str, torch.Tensor]:
        """Streaming datasets: this rank's rows `rows` of the step's global batch of `batch_size`, decoded and
        augmented by `stream_decoder` (normalised) -> this rank's tensors for `step`. Whatever is drawn per
        sample here (masks) is drawn for the whole global batch and sliced, so the ranks' union is the
        1-process batch."""

    def step(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """Forward pass and objective -> (scalar loss, logs)."""

    def on_step_end(self, step: int, total: int) -> dict[str, float]:
        """After the optimiser step (e.g. the EMA update) -> logs."""

    def eval_encoder(self) -> nn.Module:
        """The encoder to probe and export."""


class BaseMethod(nn.Module):
    """Defaults of the contract: no target encoder, image data, nothing to do after a step, the online encoder
    is evaluated. Subclasses set `batch_dims` and implement `collate`, `step` and `check`."""

    has_target: ClassVar[bool] = False
    is_video: ClassVar[bool] = False
    has_actions: ClassVar[bool] = False
    batch_dims: ClassVar[dict[str, int]] = {}
    encoder: nn.Module
    cfg: Config

    def on_step_end(self, step: int, total: int) -> dict[str, float]:
        return {}

    def eval_encoder(self) -> nn.Module:
        return self.encoder

    @classmethod
    def stream_decoder(cls, cfg: Config) -> Any:
        """Images: one random resized crop (data.crop_scale, data.flip) per sample, made in the workers."""
        from openjepa.data.streaming import ImageDecoder  # PyAV and PIL load only for streaming runs

        d = cfg.data
        return ImageDecoder(d.img_size, d.channels, crop_scale=d.crop_scale, flip=d.flip)

    def collate_decoded(self, x: Any, generator: torch.Generator, batch_size: int, rows: slice
                        ) -> dict[str, torch.Tensor]:
        raise ValueError(f"method {self.cfg.train.method!r} does not train on streaming datasets")


class TargetEncoder(BaseMethod):
    """A method whose targets come from a target encoder: the EMA copy of `encoder` when reg.ema, else the online
    encoder itself (under stop-gradient at the call site). Call `_init_target(cfg)` right after building
    `self.encoder`."""

    has_target: ClassVar[bool] = True
    target_encoder: nn.Module | None

    def _init_target(self, cfg: Config) -> None:
        ema = self.has_target if cfg.reg.ema is None else cfg.reg.ema  # unresolved configs: the method's default
        self.target_encoder = copy.deepcopy(self.encoder).requires_grad_(False) if ema else None

    def on_step_end(self, step: int, total: int) -> dict[str, float]:
        o = self.cfg.optim
        return ema_step(self.target_encoder, self.encoder, step, total, o.ema_start, o.ema_end)

    def eval_encoder(self) -> nn.Module:
        """The EMA target encoder (as in I-JEPA and V-JEPA), else the online one."""
        return self.target_encoder if self.target_encoder is not None else self.encoder
