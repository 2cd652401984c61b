"""Training methods: `METHODS` maps a train.method name to its class. Each satisfies `openjepa.methods.base.Method`
(collate, step, on_step_end, eval_encoder, check and the capability flags has_target, is_video, has_actions,
batch_dims) and owns no training loop (see openjepa.train.loop). Shared parts: `openjepa.methods.common`.
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
    "world_model": WorldModel,  # action-conditioned latent dynamics (has_actions): data.dataset=trajectories
}
