"""Training methods. Each is a small nn.Module with

    collate(x, generator) -> batch            CPU-side augmentation (crops, views) and masks; x (B, C, H, W)
                                              normalised, un-augmented images
    has_target                                whether a target encoder exists (reg.ema may be true)
    step(batch) -> (loss, logs)               forward + objective
    on_step_end(step, total) -> logs          e.g. the EMA update
    eval_encoder() -> nn.Module               the encoder to probe / export

and no training loop of its own (see openjepa.train.loop).
"""

from openjepa.methods.ijepa import IJEPA
from openjepa.methods.lejepa import LeJEPA
from openjepa.methods.mae import MAE
from openjepa.methods.vjepa import VJEPA, VPixel
from openjepa.methods.world_model import WorldModel

METHODS = {
    "ijepa": IJEPA,
    "lejepa": LeJEPA,
    "mae": MAE,
    "vjepa": VJEPA,  # video (is_video): data.dataset physics or videos
    "vpixel": VPixel,
    "world_model": WorldModel,  # action-conditioned latent dynamics on trajectories (data.dataset=trajectories)
}
