import pytest
import torch


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    yield


@pytest.fixture
def one_thread():
    """torch on one thread for the test, the caller's count restored after: tiny tensors avoid oversubscription
    stalls on a busy machine, and a step rebuilt by hand sums in the same order as a run with train.threads=1."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def sigkill_after_checkpoint():
    """Run `cmd` (an `openjepa train ... --out run`) in a real process and SIGKILL it as soon as
    run/checkpoints/last.pt exists (or it exited, or 120 s passed) -> whether last.pt exists."""
    import os
    import signal
    import subprocess
    import time

    def run(cmd: list[str], run_dir) -> bool:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ckpt = run_dir / "checkpoints" / "last.pt"
        deadline = time.time() + 120
        while not ckpt.exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        return ckpt.exists()
    return run


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


@pytest.fixture(scope="module")
def rgb_smoke_run(tmp_path_factory):
    """A 4-step smoke run on 16 px RGB images (an .npy array): a checkpoint to embed or evaluate with."""
    import numpy as np

    from openjepa.cli import main

    tmp = tmp_path_factory.mktemp("rgb_smoke")
    np.save(tmp / "train.npy", np.random.default_rng(0).integers(0, 256, (64, 16, 16, 3), dtype=np.uint8))
    run = tmp / "run"
    assert main(["train", "smoke", "--out", str(run), "--data.dataset=images", f"--data.path={tmp / 'train.npy'}",
                 "--data.img_size=16", "--data.channels=3", "--data.batch_size=16", "--train.steps=4",
                 "--train.monitor_every=0", "--train.ckpt_every=4"]) == 0
    return run
