"""train_step, the one training step: the loop and the throughput bench run the same function on the same batches,
and a non-finite loss never reaches the weights."""

import pytest
import torch

from openjepa.bench import throughput
from openjepa.config import load_config
from openjepa.data.stream import BatchStream
from openjepa.methods import METHODS
from openjepa.train import loop, step
from openjepa.train.checkpoint import load_checkpoint
from openjepa.train.logging import read_metrics
from openjepa.train.monitor import build_monitor
from openjepa.train.optim import apply_schedules, build_optimizer
from openjepa.train.run import find_preset, load_train_data
from openjepa.validate import resolve_config

CPU = torch.device("cpu")


def smoke(*overrides):
    return resolve_config(load_config(find_preset("smoke"), [
        "--train.progress=false", "--train.threads=1", "--train.steps=3", "--train.log_every=1",
        "--train.monitor_every=0", "--train.ckpt_every=1", *overrides]))


def first_step_by_hand(cfg):
    """The loop's first step rebuilt from its pieces: seed, data, held-out rows, method, optimiser, schedule."""
    torch.manual_seed(cfg.train.seed)
    x, y = load_train_data(cfg)
    _, x_train = build_monitor(cfg, x, y)
    stream = BatchStream(x_train, cfg.data.batch_size, cfg.train.seed)
    method = METHODS[cfg.train.method](cfg)
    opt = build_optimizer(method, cfg.optim)
    apply_schedules(opt, 0, cfg.train.steps, cfg.optim)
    method.train()
    batch = step.step_batch(method, stream, 0, cfg.train.seed)
    return method, opt, batch


def test_the_bench_times_the_loops_step():
    assert throughput.train_step is loop.train_step is step.train_step


@pytest.mark.parametrize("accum", [1, 2])
def test_train_step_is_the_loops_first_step(tmp_path, one_thread, accum):
    cfg = smoke(f"--train.accum_steps={accum}")
    loop.train(cfg, tmp_path / "run", log=lambda *a: None)
    row = next(r for r in read_metrics(tmp_path / "run") if r["step"] == 1)
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoints" / "step_00000001.pt")

    method, opt, batch = first_step_by_hand(cfg)
    result = step.train_step(method, opt, batch, 0, cfg, CPU)
    assert result.skipped is None
    assert float(result.loss) == row["loss"] and float(result.grad_norm) == row["grad_norm"]
    assert result.logs["ema"] == row["ema"]  # on_step_end ran, with the loop's step count
    for name, t in method.state_dict().items():
        assert torch.equal(t, ckpt["model"][name]), name


def test_the_bench_profiles_the_loops_batches_with_train_step(monkeypatch, one_thread):
    cfg = smoke("--model.depth=1")
    method, _, batch = first_step_by_hand(cfg)
    bench_batches = throughput.sample_batches(cfg, method)
    assert len(bench_batches) == 3 and bench_batches[0].keys() == batch.keys()
    assert all(torch.equal(bench_batches[0][k], batch[k]) for k in batch)

    calls = []
    real = throughput.train_step
    monkeypatch.setattr(throughput, "train_step", lambda *a, **k: calls.append(a[3]) or real(*a, **k))
    shares = throughput.time_breakdown(cfg, method, bench_batches, CPU, steps=2)
    assert calls == [0, 1, 2]
    assert abs(sum(shares.values()) - 1) < 0.01 and "matmul" in shares


def test_a_nonfinite_loss_never_reaches_the_weights(monkeypatch, one_thread):
    cfg = smoke()
    method, opt, batch = first_step_by_hand(cfg)
    before = {k: v.clone() for k, v in method.state_dict().items()}
    real = type(method).step
    monkeypatch.setattr(type(method), "step", lambda self, b: (real(self, b)[0] * float("nan"), {"pred_loss": float("nan")}))
    monkeypatch.setattr(type(method), "on_step_end", lambda *a: pytest.fail("on_step_end ran after a skipped step"))
    result = step.train_step(method, opt, batch, 0, cfg, CPU)
    assert result.skipped == "loss (pred_loss)"
    assert all(p.grad is None for p in method.parameters()) and not opt.state
    assert all(torch.equal(v, before[k]) for k, v in method.state_dict().items())
