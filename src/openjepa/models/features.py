"""`encoder.features(images, pool)`: frozen features of any openjepa encoder in one call (a mixin).

    z = encoder.features(x)                      # (N, D)    mean over tokens of the last layer
    z = encoder.features(x, pool="tokens")       # (N, T, D) every token of the last layer
    z = encoder.features(x, pool="lastk", k=4)   # (N, k*D)  mean-pooled outputs of the last k blocks, concatenated

x: images (N, C, H, W) (video encoders: clips (N, C, T, H, W)), uint8 in [0, 255] or float in [0, 1], at the
model's size; normalised as in training (data/transforms.py:normalize), encoded in batches on the encoder's
device without gradients, returned as float32 on the CPU.

Which encoder: the one `openjepa.load_encoder` returns and `method.eval_encoder()` gives, i.e. the EMA target
encoder for methods that keep one (I-JEPA and V-JEPA with reg.ema on, their default) and the online encoder
otherwise (LeJEPA, MAE, world models). I-JEPA and V-JEPA evaluate the target encoder: it is an average of the online weights
over the last ~1/(1-momentum) steps, so its features are smoother and probe at least as well.

"lastk" is the linear-probe protocol of I-JEPA / DINO for deep ViTs: each of the last k blocks' tokens go through
the encoder's final LayerNorm (as DINOv2's get_intermediate_layers(norm=True)), so every layer enters the probe on
the same scale and k=1 is exactly pool="mean". An encoder opts in by providing `block_outputs(x, last)`.
"""

from __future__ import annotations

import contextlib

import torch

POOLS = ("mean", "tokens", "lastk")


def as_model_input(x: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] or float [0, 1] images -> the float32 [-1, 1] the encoders were trained on."""
    from openjepa.data.transforms import normalize

    if not isinstance(x, torch.Tensor):
        raise TypeError(f"images must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype == torch.uint8:
        return normalize(x)
    if not x.is_floating_point():
        raise TypeError(f"images must be uint8 or float, got {x.dtype}")
    if x.numel() and (x.min() < 0 or x.max() > 1):
        raise ValueError(f"float images must lie in [0, 1] (got values in [{float(x.min()):.3g}, "
                         f"{float(x.max()):.3g}]); pass uint8 images, or divide by 255")
    return (x.float() - 0.5) / 0.5


class Features:
    """Mixin for encoders: `features(images, pool, k)`; the class provides `block_outputs(x, last)` -> the
    normed tokens after each of its last `last` blocks, oldest first (the last one equals forward(x))."""

    def block_outputs(self, x: torch.Tensor, last: int) -> list[torch.Tensor]:
        if last != 1:
            raise ValueError(f"{type(self).__name__} has no blocks to pool: use pool='mean' or k=1")
        return [self(x)]

    @torch.no_grad()
    def features(self, images: torch.Tensor, pool: str = "mean", k: int = 4, batch_size: int = 256,
                 precision: str = "fp32") -> torch.Tensor:
        """Frozen features (see the module docstring); precision "bf16" runs the encoder under bf16 autocast
        (CPU or CUDA), as training did with train.precision=bf16."""
        if pool not in POOLS:
            raise ValueError(f"pool must be one of {', '.join(POOLS)}, got {pool!r}")
        if pool == "lastk" and k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        param = next(self.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        use_bf16 = precision == "bf16" and device.type in ("cpu", "cuda")
        was_training = self.training
        self.eval()
        out = []
        try:
            for i in range(0, images.shape[0], batch_size):
                xb = as_model_input(images[i:i + batch_size]).to(device)
                ctx = torch.autocast(device.type, dtype=torch.bfloat16) if use_bf16 else contextlib.nullcontext()
                with ctx:
                    if pool == "lastk":
                        z = torch.cat([h.float().mean(1) for h in self.block_outputs(xb, k)], dim=1)  # (b, k*D)
                    else:
                        z = self(xb).float()  # (b, T, D)
                        z = z.mean(1) if pool == "mean" else z
                out.append(z.cpu())
        finally:
            self.train(was_training)
        if not out:
            raise ValueError("no images to encode (images.shape[0] == 0)")
        return torch.cat(out)
