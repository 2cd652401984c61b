"""train.compile: the compiled blocks give the eager step's loss, gradients and weights (fp32, CPU), do not
recompile when I-JEPA's mask sizes change, and leave the state dict's keys alone. torch.compile must work here
(the CPU backend needs a C compiler): a failure to compile fails the test, it is never skipped."""

import torch
import torch._dynamo

from openjepa.config import ConfigError
from openjepa.train import step
from openjepa.train.compile import compile_blocks, is_compiled
from openjepa.train.optim import apply_schedules
from test_train_step import CPU, first_step_by_hand, smoke

import pytest


def _batches(method, cfg, n):
    from openjepa.data.stream import BatchStream
    from openjepa.train.monitor import build_monitor
    from openjepa.train.run import load_train_data

    x, y = load_train_data(cfg)
    _, x_train = build_monitor(cfg, x, y)
    stream = BatchStream(x_train, cfg.data.batch_size, cfg.train.seed)
    return [step.step_batch(method, stream, s, cfg.train.seed) for s in range(n)]


def test_compiled_steps_equal_eager_and_do_not_recompile_for_new_mask_sizes(one_thread):
    cfg_eager = smoke("--train.precision=fp32")
    cfg_comp = smoke("--train.precision=fp32", "--train.compile=true")
    eager, opt_e, _ = first_step_by_hand(cfg_eager)
    comp, opt_c, _ = first_step_by_hand(cfg_comp)
    keys = list(eager.state_dict())
    batches = _batches(eager, cfg_eager, 3)
    sizes = {(b["ctx_idx"].shape[1], b["tgt_idx"].shape[-1]) for b in batches}
    assert len(sizes) > 1, "the steps must differ in mask sizes for the recompile check to mean anything"

    torch._dynamo.reset()
    graphs = []
    for s, batch in enumerate(batches):
        for opt in (opt_e, opt_c):
            apply_schedules(opt, s, cfg_eager.train.steps, cfg_eager.optim)
        r_e = step.train_step(eager, opt_e, batch, s, cfg_eager, CPU)
        r_c = step.train_step(comp, opt_c, batch, s, cfg_comp, CPU)
        graphs.append(torch._dynamo.utils.counters["stats"]["unique_graphs"])
        assert torch.allclose(r_c.loss, r_e.loss, rtol=1e-5, atol=1e-6), (s, r_c.loss, r_e.loss)
        assert torch.allclose(r_c.grad_norm, r_e.grad_norm, rtol=1e-4, atol=1e-6)
    assert all(is_compiled(m) for m in comp.modules() if type(m).__name__ == "Block")
    assert not any(is_compiled(m) for m in eager.modules())
    assert graphs[0] > 0 and graphs[-1] == graphs[0], f"recompiled for new mask sizes: graphs per step {graphs}"
    # same keys (no `_orig_mod.`), same weights to float tolerance, loadable into an eager method (checkpoints,
    # EMA target, export)
    sd = comp.state_dict()
    assert list(sd) == keys
    for name, t in eager.state_dict().items():
        assert torch.allclose(sd[name], t, rtol=1e-4, atol=1e-6), name
    eager.load_state_dict(sd)


def test_compile_blocks_is_idempotent_and_leaves_parameters_alone():
    cfg = smoke()
    method, _, _ = first_step_by_hand(cfg)
    names = [n for n, _ in method.named_parameters()]
    n = compile_blocks(method)
    assert n == 2 + 2 + 1  # encoder and its EMA target (depth 2 each), predictor (depth 1)
    assert compile_blocks(method) == 0
    assert [n for n, _ in method.named_parameters()] == names


def test_compile_is_refused_with_fsdp():
    with pytest.raises(ConfigError, match="train.compile"):
        smoke("--train.compile=true", "--train.parallel=fsdp")
