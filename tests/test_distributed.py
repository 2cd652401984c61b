"""Data parallelism (train/distributed.py): 2 gloo processes under torchrun equal 1 process on the same global
batch; gradient accumulation equals the large batch; every sample once per epoch; world-size-free resume."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from openjepa.config import load_config
from openjepa.data.stream import BatchStream
from openjepa.train.checkpoint import load_checkpoint
from openjepa.train.distributed import shard
from openjepa.train.loop import train
from openjepa.train.run import find_preset

QUIET = dict(log=lambda *a: None)
RUN = ["--train.progress=false", "--train.steps=6", "--train.log_every=1", "--train.monitor_every=0",
       "--train.ckpt_every=3", "--data.batch_size=16"]


def smoke(*overrides):
    return load_config(find_preset("smoke"), [*RUN, *overrides])


def losses(run_dir):
    rows = [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in rows if "loss" in r]


def weights(run_dir):
    return load_checkpoint(Path(run_dir) / "checkpoints" / "last.pt")["model"]


def assert_same_run(a, b, rtol=1e-4, atol=1e-5):
    assert torch.allclose(torch.tensor(losses(a)), torch.tensor(losses(b)), rtol=rtol, atol=atol), (losses(a), losses(b))
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.allclose(wa[k], wb[k], rtol=rtol, atol=atol), k


def test_every_sample_once_per_epoch_across_ranks():
    x = torch.arange(103).view(103, 1, 1, 1)
    stream = BatchStream(x, batch_size=8, seed=3)
    seen = []
    for step in range(stream.steps_per_epoch):
        batch = {"x": stream.batch(step)}
        for rank in range(4):
            seen += shard(batch, {"x": 0}, rank, 4)["x"].flatten().tolist()
    assert len(seen) == len(set(seen)) == 8 * (103 // 8)
    with pytest.raises(ValueError, match="equal parts"):
        shard({"x": torch.zeros(6)}, {"x": 0}, 0, 4)


@pytest.mark.parametrize("method", ["ijepa", "mae"])
def test_gradient_accumulation_equals_the_large_batch(method, tmp_path):
    extra = [f"--train.method={method}", "--train.precision=fp32"] + ["--reg.kind=none"]
    train(smoke(*extra), tmp_path / "big", **QUIET)
    train(smoke(*extra, "--train.accum_steps=4"), tmp_path / "micro", **QUIET)
    assert_same_run(tmp_path / "big", tmp_path / "micro")


def torchrun(tmp_path, out, *overrides, resume=False):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    what = ["--resume", str(out)] if resume else ["smoke", "--out", str(out)]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "openjepa",
           "train", *what, *RUN, "--train.threads=1", *overrides]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_two_gloo_ranks_equal_one_process_and_resume_on_one(tmp_path):
    single, ddp, mixed = tmp_path / "single", tmp_path / "ddp", tmp_path / "mixed"
    train(smoke("--train.precision=fp32"), single, **QUIET)
    proc = torchrun(tmp_path, ddp, "--train.precision=fp32")
    assert proc.stdout.count("training ijepa") == 1 and proc.stdout.count("finished") == 1  # rank 0 alone talks
    assert_same_run(single, ddp)
    # a checkpoint written by 2 ranks resumes in 1 process
    torchrun(tmp_path, mixed, "--train.precision=fp32", "--train.stop_after=3")
    assert load_checkpoint(mixed / "checkpoints" / "last.pt")["step"] == 3
    train(smoke("--train.precision=fp32"), mixed, resume=True, **QUIET)
    assert_same_run(single, mixed)


def test_fsdp_two_ranks_equal_one_process_and_checkpoints_move_between_modes(tmp_path):
    """train.parallel=fsdp (sharded weights, gradients, optimiser state) gives the single-process run; its
    checkpoints are full tensors that resume in one process, and a single-process checkpoint resumes sharded."""
    single, fsdp, to_one, from_one = tmp_path / "single", tmp_path / "fsdp", tmp_path / "to_one", tmp_path / "from_one"
    args = ["--train.precision=fp32", "--train.monitor_every=3"]
    train(smoke(*args), single, **QUIET)
    proc = torchrun(tmp_path, fsdp, *args, "--train.parallel=fsdp")
    assert proc.stdout.count("training ijepa") == 1
    assert_same_run(single, fsdp)
    assert (fsdp / "checkpoints" / "best.pt").exists()
    torchrun(tmp_path, to_one, *args, "--train.parallel=fsdp", "--train.stop_after=3")
    train(smoke(*args), to_one, resume=True, **QUIET)
    assert_same_run(single, to_one)
    train(smoke(*args, "--train.stop_after=3"), from_one, **QUIET)
    torchrun(tmp_path, from_one, *args, "--train.parallel=fsdp", resume=True)
    assert_same_run(single, from_one)


def test_fsdp_without_torchrun_is_refused(tmp_path):
    with pytest.raises(ValueError, match="torchrun"):
        train(smoke("--train.parallel=fsdp"), tmp_path / "r", **QUIET)


def test_streaming_two_gloo_ranks_equal_one_process(tmp_path):
    """data.dataset=image_folder with 2 DataLoader workers per process: each rank decodes its half of every global
    batch (its own rows, cropped by (seed, step, position)) and draws its rows of the global masks, so 2 ranks
    train the 1-process run."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(40):
        d = tmp_path / "imgs" / f"c{i % 2}"
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (18 + i % 5, 20, 3), dtype=np.uint8)).save(d / f"{i}.png")
    data = ["--train.precision=fp32", "--data.dataset=image_folder", f"--data.path={tmp_path / 'imgs'}",
            f"--data.index_dir={tmp_path / 'index'}", "--data.img_size=16", "--data.channels=3",
            "--data.batch_size=8", "--data.workers=2", "--train.monitor_samples=16", "--train.steps=4"]
    train(smoke(*data), tmp_path / "single", **QUIET)
    torchrun(tmp_path, tmp_path / "ddp", *data)
    assert_same_run(tmp_path / "single", tmp_path / "ddp")
