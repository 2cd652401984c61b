"""The throughput benchmark: FLOP counting, the peak probe and the row contract (tiny configs)."""

import torch
from torch import nn

from openjepa.bench.throughput import matmul_peak, run_throughput, step_flops


class Linear1(nn.Module):
    """A 'method' whose step is one matmul: forward 2*B*I*O FLOPs, backward (weight grad only) the same again."""
    batch_dims = {"x": 0}

    def __init__(self, i: int, o: int):
        super().__init__()
        self.w = nn.Parameter(torch.randn(i, o))

    def step(self, batch):
        return (batch["x"] @ self.w).sum(), {}


def test_step_flops_counts_forward_and_backward():
    m = Linear1(16, 8)
    batches = [{"x": torch.randn(4, 16)}, {"x": torch.randn(6, 16)}]
    assert step_flops(m, batches, torch.device("cpu")) == (4 * 4 * 16 * 8 + 4 * 6 * 16 * 8) / 2
    assert m.w.grad is None  # counting leaves no gradients behind


def test_step_flops_on_a_slice_of_a_large_batch_is_scaled_exactly():
    m = Linear1(16, 8)
    batches = [{"x": torch.randn(64, 16)}]
    whole = step_flops(m, batches, torch.device("cpu"))
    assert step_flops(m, batches, torch.device("cpu"), max_rows=8) == whole == 4 * 64 * 16 * 8


def test_matmul_peak_is_a_plausible_rate():
    fp32 = matmul_peak("fp32", torch.device("cpu"), sizes=(128,), repeats=3)
    assert 0.1 < fp32 < 1e5  # GFLOP/s


def test_rows_have_the_contract_keys_and_consistent_figures(tmp_path, monkeypatch):
    monkeypatch.setattr("openjepa.bench.throughput.PEAK_SIZES", {"cpu": (256,), "cuda": (256,)})
    tiny = ["--model.depth=1", "--model.pred_depth=1", "--data.batch_size=16"]
    configs = [("smoke_cpu", "smoke", "cpu", []), ("smoke_gpu", "smoke", "cuda", ["--data.dataset=synthetic"])]
    result = run_throughput(quick=True, workdir=tmp_path, overrides=tiny, out=tmp_path / "t.json", configs=configs)
    assert result["suite"] == "throughput" and result["git_sha"] and result["machine"]
    cpu = [r for r in result["rows"] if r["config"] == "smoke_cpu"]
    assert [r["dtype"] for r in cpu] == ["fp32", "bf16"]
    for r in cpu:
        assert {"config", "dtype", "samples_per_s", "gflops_per_s", "mfu", "peak_gflops", "gflop_per_step"} <= set(r)
        assert r["samples_per_s"] > 0 and r["gflop_per_step"] > 0 and r["timed_steps"] == 4
        assert r["cpu_model"] and r["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
        assert set(r["cpu_flags"]) <= {"amx_bf16", "amx_tile", "avx512_bf16", "avx512f", "avx2"}
        assert r["compile"] is False
        expect = r["gflop_per_step"] * r["samples_per_s"] / r["batch_size"]
        assert abs(r["gflops_per_s"] - expect) <= 0.01 * expect + 0.1
        assert abs(r["mfu"] - r["gflops_per_s"] / r["peak_gflops"]) <= 0.01 * r["mfu"]
    gpu = [r for r in result["rows"] if r["config"] == "smoke_gpu"]
    if not torch.cuda.is_available():
        assert gpu == [{"config": "smoke_gpu", "dtype": "bf16", "skipped": "no CUDA device"}]


def test_synthetic_dataset_has_the_configured_shape():
    from openjepa.config import load_config
    from openjepa.train.run import find_preset, load_train_data

    cfg = load_config(find_preset("smoke"), ["--data.dataset=synthetic", "--data.channels=3", "--data.batch_size=8"])
    x, y = load_train_data(cfg)
    assert x.dtype == torch.uint8 and x.shape == (24, 3, cfg.data.img_size, cfg.data.img_size) and y is None
    assert torch.equal(x, load_train_data(cfg)[0])  # seeded
