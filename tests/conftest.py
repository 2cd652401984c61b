import pytest
import torch


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    yield


@pytest.fixture
def five_steps():
    """Train a method for five AdamW steps on one fixed batch -> (losses, last logs)."""
    def run(method, x):
        opt = torch.optim.AdamW([p for p in method.parameters() if p.requires_grad], lr=1e-3)
        batch = method.collate(x, torch.Generator().manual_seed(0))
        losses = []
        for step in range(5):
            loss, logs = method.step(batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
            method.on_step_end(step + 1, 5)
            losses.append(loss.item())
        return losses, logs
    return run
