"""`train.compile`: torch.compile of every transformer block of a method, from outside the model classes.

Each block (`models.vit.Block`, `models.action_predictor.AdaLNBlock`) is compiled in place with
`nn.Module.compile`, which keeps the module object and its parameter names (no `_orig_mod.` wrapper): state
dicts, checkpoints, the EMA update (it reads `parameters()`), FSDP-free resumes and exports see the same keys as
eager. The blocks hold all the matmuls, LayerNorms, GELUs and attention; the rest of a step (patch embedding,
gathers, losses) stays eager.

Variable mask sizes: I-JEPA's context and target token counts change every step, so the blocks are compiled
with `dynamic=True` (the batch and token axes are symbolic from the first compile) instead of padding token
counts to buckets: one graph per (block width, grad mode, autocast, mask or not), whatever the token count, and
no padded tokens to mask out of attention or losses.
"""

from __future__ import annotations

from torch import nn

from openjepa.models.action_predictor import AdaLNBlock
from openjepa.models.vit import Block

BLOCKS = (Block, AdaLNBlock)  # the module classes compiled one by one


def is_compiled(module: nn.Module) -> bool:
    """Whether `module` was compiled in place (nn.Module.compile)."""
    return getattr(module, "_compiled_call_impl", None) is not None


def compile_blocks(method: nn.Module, dynamic: bool = True, **options) -> int:
    """Compile every block of `method` in place (already compiled ones are left as they are); returns how many
    were compiled by this call. `options` go to torch.compile (e.g. backend, mode)."""
    n = 0
    for module in method.modules():
        if isinstance(module, BLOCKS) and not is_compiled(module):
            module.compile(dynamic=dynamic, **options)
            n += 1
    return n

