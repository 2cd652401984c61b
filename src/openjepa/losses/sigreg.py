"""SIGReg: Sketched Isotropic Gaussian Regularisation (LeJEPA, Balestriero & LeCun 2025), computed in fp32.

For embeddings z (N, D), SIGReg tests whether z looks like a sample of the isotropic standard Gaussian
N(0, I_D), one random 1-D projection at a time (Cramer-Wold: every projection is N(0, 1) iff z is):

    A      (D, M)  random unit directions, drawn from a CPU generator seeded by `seed`
    p = zA (N, M)  projections
    phi(t) = mean_n exp(i t p_n) = mean_n cos(t p_n) + i mean_n sin(t p_n)      empirical char. function
    EP_m   = N * integral |phi(t) - exp(-t^2/2)|^2 exp(-t^2/2) dt               Epps-Pulley statistic
    loss   = mean_m EP_m

The integrand is even in t (real part even, imaginary part odd and squared), so the integral over the real
line is twice the integral over [0, t_max]; it is taken with the trapezoid rule on `num_points` points with
doubled weights (defaults 17 points on [0, 3]). For a Gaussian sample the statistic is about 1 whatever N
(E|phi_hat - phi|^2 = (1 - phi^2) / N); for a non-Gaussian sample it grows like N.

LeJEPA combines it with the prediction loss as  loss = (1 - lam) * prediction + lam * SIGReg,  lam ~ 0.05.

Pitfalls (all handled here except the last):
- bf16 (8-bit mantissa): t * p, cos/sin of it, the sums over N rows and the small difference
  phi_hat - phi (then multiplied by N) lose most of their precision, and users report NaN or meaningless
  losses; so z is cast to fp32 and the whole computation runs with autocast disabled.
- DDP: the characteristic function must be the mean over the *global* batch, and N the global N. The
  per-rank sums of cos and sin (and the count) are combined with the autograd-aware all-reduce of
  torch.distributed.nn.functional, whose result is used. Its backward sums the gradient over ranks, so each
  rank's gradient w.r.t. its own rows is world_size * d(loss)/d(rows); DDP's averaging of parameter
  gradients (divide by world_size) then yields exactly the single-process gradient. A plain (non-autograd)
  all-reduce instead leaves the parameter gradient off by a factor of world_size (and skipping the
  reduction makes the statistic per-rank).
- Near total collapse (all rows equal) every row receives the same gradient, so the rows cannot be pushed
  apart: the gradient that would spread them vanishes. Pair SIGReg with a per-dimension std term (e.g.
  vicreg.variance_loss) if runs can start collapsed.
"""

from __future__ import annotations

import warnings

import torch
import torch.distributed as dist


def random_directions(dim: int, num_directions: int, seed: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """(dim, num_directions) fp32 unit columns, drawn on CPU so every rank gets the same ones for one seed."""
    g = torch.Generator(device="cpu").manual_seed(int(seed))
    a = torch.randn(dim, num_directions, generator=g)  # (D, M)
    return (a / a.norm(dim=0, keepdim=True)).to(device)


def _trapezoid_grid(num_points: int, t_max: float, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Points t (K,) on [0, t_max] and weights (K,): doubled trapezoid weights times exp(-t^2/2)."""
    if num_points < 2:
        raise ValueError(f"num_points must be >= 2, got {num_points}")
    if not t_max > 0:
        raise ValueError(f"t_max must be > 0, got {t_max}")
    t = torch.linspace(0.0, t_max, num_points, device=device)  # (K,)
    dt = t_max / (num_points - 1)
    trap = torch.full((num_points,), 2.0 * dt, device=device)  # doubled: integral over [-t_max, t_max]
    trap[0] = trap[-1] = dt
    return t, trap * torch.exp(-0.5 * t * t)


def _sync_group(dist_sync: bool, process_group) -> tuple[bool, object]:
    """Whether to all-reduce, and over which group (None: skip)."""
    if not dist_sync or not (dist.is_available() and dist.is_initialized()):
        return False, None
    if process_group is not None:
        return True, process_group
    return dist.get_world_size() > 1, dist.group.WORLD


def _all_reduce_sum(x: torch.Tensor, group) -> torch.Tensor:
    """Autograd-aware sum over ranks (backward: sum of the ranks' gradients)."""
    from torch.distributed.nn.functional import all_reduce

    with warnings.catch_warnings():  # deprecated in favour of _functional_collectives, which has no autograd
        warnings.simplefilter("ignore", FutureWarning)
        return all_reduce(x, op=dist.ReduceOp.SUM, group=group)


def epps_pulley(
    p: torch.Tensor,
    num_points: int = 17,
    t_max: float = 3.0,
    dist_sync: bool = True,
    process_group=None,
) -> torch.Tensor:
    """p (N, M) projections -> (M,) statistic per direction (global over ranks when dist_sync and DDP is on).

    Under DDP each rank passes its own rows (counts may differ between ranks); `process_group` selects the
    group (default: the world, when its size is > 1).
    """
    if p.dim() != 2:
        raise ValueError(f"epps_pulley expects projections of shape (N, M), got {tuple(p.shape)}")
    with torch.autocast(device_type=p.device.type, enabled=False):
        p = p.float()
        N, M = p.shape
        t, w = _trapezoid_grid(num_points, t_max, p.device)  # (K,), (K,)
        tp = p.unsqueeze(-1) * t  # (N, M, K)
        sums = torch.cat([tp.cos().sum(0).flatten(), tp.sin().sum(0).flatten(), p.new_full((1,), float(N))])
        sync, group = _sync_group(dist_sync, process_group)
        if sync:
            sums = _all_reduce_sum(sums, group)
        K = t.numel()
        n = sums[-1].detach()  # global N
        re = sums[: M * K].view(M, K) / n  # (M, K) mean cos
        im = sums[M * K : 2 * M * K].view(M, K) / n  # (M, K) mean sin
        err = (re - torch.exp(-0.5 * t * t)) ** 2 + im**2  # (M, K) |phi_hat - phi|^2
        return n * (err * w).sum(-1)  # (M,)


def sigreg(
    z: torch.Tensor,
    num_directions: int = 256,
    seed: int = 0,
    num_points: int = 17,
    t_max: float = 3.0,
    dist_sync: bool = True,
    process_group=None,
) -> torch.Tensor:
    """z (N, D) -> scalar fp32 loss: mean Epps-Pulley statistic over `num_directions` seeded directions.

    Give every rank the same `seed` (e.g. the step) so that all project on the same directions.
    """
    if z.dim() != 2:
        raise ValueError(f"sigreg expects embeddings of shape (N, D), got {tuple(z.shape)}; pool or flatten first")
    if num_directions < 1:
        raise ValueError(f"num_directions must be >= 1, got {num_directions}")
    with torch.autocast(device_type=z.device.type, enabled=False):
        a = random_directions(z.shape[1], num_directions, seed, z.device)  # (D, M)
        p = z.float() @ a  # (N, M)
        return epps_pulley(p, num_points, t_max, dist_sync, process_group).mean()


class SIGReg(torch.nn.Module):
    """Module wrapper of `sigreg` holding its hyper-parameters; forward(z (N, D), seed) -> scalar."""

    def __init__(
        self,
        num_directions: int = 256,
        num_points: int = 17,
        t_max: float = 3.0,
        dist_sync: bool = True,
        process_group=None,
    ):
        super().__init__()
        if num_directions < 1:
            raise ValueError(f"num_directions must be >= 1, got {num_directions}")
        if num_points < 2:
            raise ValueError(f"num_points must be >= 2, got {num_points}")
        if not t_max > 0:
            raise ValueError(f"t_max must be > 0, got {t_max}")
        self.num_directions, self.num_points, self.t_max = num_directions, num_points, t_max
        self.dist_sync, self.process_group = dist_sync, process_group

    def forward(self, z: torch.Tensor, seed: int = 0) -> torch.Tensor:
        return sigreg(z, self.num_directions, seed, self.num_points, self.t_max, self.dist_sync, self.process_group)

    def extra_repr(self) -> str:
        return f"num_directions={self.num_directions}, num_points={self.num_points}, t_max={self.t_max}"
