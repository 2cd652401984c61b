import torch

from openjepa.losses.vicreg import covariance_loss, variance_loss


def test_variance_hinge_on_hand_made_input():
    z = torch.tensor([[0.0, 0.0], [2.0, 0.2]])  # per-dim var (unbiased): 2.0 and 0.02
    expected = (torch.relu(1 - torch.sqrt(torch.tensor(2.0 + 1e-4))) + torch.relu(1 - torch.sqrt(torch.tensor(0.02 + 1e-4)))) / 2
    assert torch.allclose(variance_loss(z), expected)
    assert variance_loss(torch.randn(4096, 8) * 3) < 1e-6  # wide features: no penalty
    assert variance_loss(torch.ones(16, 8)) > 0.98  # constant features: full penalty


def test_covariance_on_hand_made_input():
    z = torch.tensor([[1.0, 1.0], [-1.0, -1.0]])  # perfectly correlated dims; cov = [[2, 2], [2, 2]]
    assert torch.allclose(covariance_loss(z), torch.tensor(2 * 2.0 ** 2 / 2))
    g = torch.randn(20000, 4)
    assert covariance_loss(g) < 0.01


def test_losses_are_fp32_under_bf16_inputs():
    z = torch.randn(64, 8).bfloat16()
    assert variance_loss(z).dtype == torch.float32 and covariance_loss(z).dtype == torch.float32
