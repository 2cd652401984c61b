"""Training methods. Each is a small nn.Module with

    collate(x, generator) -> batch            CPU-side (masks), x float (B, C, H, W)
    step(batch) -> (loss, logs)               forward + objective
    on_step_end(step, total) -> logs          e.g. the EMA update
    eval_encoder() -> nn.Module               the encoder to probe / export

and no training loop of its own (see openjepa.train.loop).
"""

from openjepa.methods.ijepa import IJEPA
from openjepa.methods.mae import MAE

METHODS = {
    "ijepa": IJEPA,
    "mae": MAE,
}
