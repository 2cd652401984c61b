"""Property tests of SIGReg (losses/sigreg.py): Gaussian passes, collapse fails, fp32, seeds, gradients, DDP."""

import math

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from openjepa.losses.sigreg import SIGReg, epps_pulley, random_directions, sigreg

# Measured with N=1024, D=32, 256 directions: a standard Gaussian gives 0.83-1.35 over 30 seeds (theory
# ~1.05, independent of N); the bad cases below give 160-1600 (they grow like N).
GAUSS_MAX, BAD_MIN = 3.0, 50.0
N, D = 1024, 32


def _gauss(seed=0, n=N, d=D):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed))


def test_standard_gaussian_is_small():
    for s in range(3):
        assert sigreg(_gauss(s), seed=s).item() < GAUSS_MAX


@pytest.mark.parametrize(
    "name, make",
    [
        ("collapsed", lambda g: g[:1].expand_as(g).contiguous()),
        ("shifted_mean_3", lambda g: g + 3.0),
        ("rank_1", lambda g: g[:, :1] * _gauss(9, 1, D)),
        ("scaled_std_5", lambda g: 5.0 * g),
    ],
)
def test_non_gaussian_batches_are_large(name, make):
    z = make(_gauss(1))
    assert z.shape == (N, D)
    assert sigreg(z, seed=0).item() > BAD_MIN, name


def test_trapezoid_weights_match_closed_form():
    # All rows at 0: phi_hat = 1, statistic = N * int_{-3}^{3} (1 - g)^2 g dt with g = exp(-t^2/2).
    n, a = 10, 3.0
    gauss_int = lambda c: math.sqrt(math.pi / c) * math.erf(a * math.sqrt(c))  # int_{-a}^{a} exp(-c t^2)
    expected = n * (gauss_int(0.5) - 2 * gauss_int(1.0) + gauss_int(1.5))
    assert epps_pulley(torch.zeros(n, 1)).item() == pytest.approx(expected, rel=5e-3)
    # An asymmetric sample (non-zero imaginary part) against a fine complex-valued reference on [-3, 3].
    p = torch.tensor([[-0.5], [0.2], [1.7], [2.5]], dtype=torch.float64)
    t = torch.linspace(-a, a, 20001, dtype=torch.float64)
    g = torch.exp(-t * t / 2)
    ref = p.shape[0] * torch.trapezoid((torch.exp(1j * t * p).mean(0) - g).abs() ** 2 * g, t)
    assert epps_pulley(p.float()).item() == pytest.approx(ref.item(), rel=5e-3)


def test_huge_gaussian_sample_near_zero_relative_to_shifted():
    p = _gauss(2, 100_000, 1)
    good, bad = epps_pulley(p).item(), epps_pulley(p + 0.5).item()
    assert good < 3.0 and bad > 1000 * good


def test_invariant_to_row_order():
    z = _gauss(3) * 1.3 + 0.2
    perm = torch.randperm(N, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(sigreg(z), sigreg(z[perm]), rtol=1e-6, atol=1e-6)


def test_seed_controls_directions():
    a0, a0b, a1 = random_directions(D, 64, 0), random_directions(D, 64, 0), random_directions(D, 64, 1)
    assert torch.equal(a0, a0b) and not torch.allclose(a0, a1)
    torch.testing.assert_close(a0.norm(dim=0), torch.ones(64))
    z = _gauss(4) + 0.5
    assert sigreg(z, seed=5).item() == sigreg(z, seed=5).item()
    assert sigreg(z, seed=5).item() != sigreg(z, seed=6).item()
    assert SIGReg(num_directions=256)(z, seed=5).item() == sigreg(z, seed=5).item()


def test_fp32_under_bf16_autocast():
    z = _gauss(5, 256).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = sigreg(z)
    assert out.dtype == torch.float32 and out.dim() == 0 and torch.isfinite(out)
    # Autocast really is off inside: same value as the fp32 computation on the same (bf16-rounded) numbers.
    torch.testing.assert_close(out, sigreg(z.float()), rtol=1e-6, atol=1e-6)


def test_gradient_flows_and_sgd_reduces_loss():
    z = (0.05 * _gauss(6, 128, 8) + 1.0).requires_grad_()  # nearly collapsed, off-centre
    sigreg(z, num_directions=32).backward()
    assert torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0
    held_out = lambda: sigreg(z.detach(), num_directions=64, seed=1000).item()
    before = held_out()
    opt = torch.optim.SGD([z], lr=1.0)
    for step in range(10):  # fresh directions each step, as in training
        opt.zero_grad()
        sigreg(z, num_directions=32, seed=step).backward()
        opt.step()
    assert held_out() < 0.5 * before  # measured: 130 -> 10


def test_total_collapse_gives_identical_row_gradients():
    # The documented pitfall: rows that are all equal get equal gradients, so SIGReg alone cannot split them.
    z = torch.ones(16, 4).requires_grad_()
    sigreg(z, num_directions=8).backward()
    torch.testing.assert_close(z.grad, z.grad[:1].expand_as(z.grad))


def test_rejects_bad_shapes_and_arguments():
    with pytest.raises(ValueError, match="N, D"):
        sigreg(torch.randn(2, 3, 4))
    with pytest.raises(ValueError, match="num_points"):
        epps_pulley(torch.randn(4, 2), num_points=1)
    with pytest.raises(ValueError, match="num_directions"):
        SIGReg(num_directions=0)


# ---- DDP: 2 gloo processes, each with a shard of one global batch -------------------------------------

_DDP_KW = dict(num_directions=16, seed=7)


def _ddp_batches():
    x = _gauss(11, 24, 6)  # global inputs (24, 6)
    w = _gauss(12, 6, 5) * 0.5  # replicated "parameter" (6, 5); z = x @ w
    return x, w


def _ddp_worker(rank, world, init, splits, out_dir):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    try:
        x, w0 = _ddp_batches()
        results = {}
        for split in splits:
            lo = sum(split[:rank])
            rows = slice(lo, lo + split[rank])
            # (a) the shard itself is the leaf
            z = x[rows].clone().requires_grad_()
            loss = sigreg(z, **_DDP_KW)
            loss.backward()
            # (b) a replicated parameter, gradients averaged across ranks as DDP does
            w = w0.clone().requires_grad_()
            sigreg(x[rows] @ w, **_DDP_KW).backward()
            dist.all_reduce(w.grad)
            w.grad /= world
            local = sigreg(x[rows], dist_sync=False, **_DDP_KW)
            results[split] = dict(loss=loss.detach(), z_grad=z.grad, w_grad=w.grad, local=local, rows=rows)
        torch.save(results, f"{out_dir}/rank{rank}.pt")
        dist.barrier()  # both ranks done communicating before gloo is torn down (avoids an abort at exit)
    finally:
        dist.destroy_process_group()


def test_ddp_matches_single_process(tmp_path):
    world, splits = 2, [(12, 12), (10, 14)]
    init = f"file://{tmp_path}/rendezvous"
    mp.start_processes(_ddp_worker, args=(world, init, splits, str(tmp_path)), nprocs=world, start_method="spawn")

    x, w0 = _ddp_batches()
    z = x.clone().requires_grad_()
    full = sigreg(z, **_DDP_KW)
    full.backward()
    w = w0.clone().requires_grad_()
    sigreg(x @ w, **_DDP_KW).backward()

    for rank in range(world):
        res = torch.load(tmp_path / f"rank{rank}.pt", weights_only=False)
        for split in splits:
            r = res[split]
            # The statistic is the global one (global ECF, global N), not the per-rank one.
            torch.testing.assert_close(r["loss"], full.detach(), rtol=1e-5, atol=1e-5)
            assert abs(r["local"].item() - full.item()) > 1e-3 * full.item()
            # Every rank backprops its own copy of the (replicated) loss and the autograd all-reduce sums
            # those gradients, so a rank's rows get world * d(loss)/d(rows) ...
            torch.testing.assert_close(r["z_grad"], world * z.grad[r["rows"]], rtol=1e-4, atol=1e-6)
            # ... which is exactly what DDP's 1/world averaging of parameter gradients expects.
            torch.testing.assert_close(r["w_grad"], w.grad, rtol=1e-4, atol=1e-6)
