"""Faults injected into real training runs: kills (also mid-checkpoint), signals, NaNs, full disks, corrupt and
malicious checkpoints. Each test states what must survive."""

import errno
import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import openjepa
from openjepa.cli import main
from openjepa.config import load_config
from openjepa.methods.ijepa import IJEPA
from openjepa.train import checkpoint as ckpt_mod
from openjepa.train.checkpoint import load_checkpoint, save_checkpoint, step_files
from openjepa.train.loop import train
from openjepa.train.run import find_preset

QUIET = dict(log=lambda *a: None)


def smoke(*overrides):
    return load_config(find_preset("smoke"), ["--train.progress=false", *overrides])


def metrics(run_dir):
    rows = [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["loss"]) for r in rows if "loss" in r]


def test_keep_last_and_last_is_the_newest(tmp_path):
    run = tmp_path / "run"
    train(smoke("--train.ckpt_every=5", "--train.keep_last=2"), run, **QUIET)
    folder = run / "checkpoints"
    assert [p.name for p in step_files(folder)] == ["step_00000020.pt", "step_00000015.pt"]
    assert os.path.samefile(folder / "last.pt", folder / "step_00000020.pt") or \
        (folder / "last.pt").read_bytes() == (folder / "step_00000020.pt").read_bytes()
    assert not list(folder.glob("*.tmp"))


def test_corrupt_newest_checkpoint_falls_back_and_still_matches(tmp_path):
    """Truncate the newest checkpoint (and so last.pt): resume warns, takes the one before, ends identical."""
    ref, run = tmp_path / "ref", tmp_path / "run"
    train(smoke(), ref, **QUIET)
    train(smoke("--train.stop_after=10", "--train.ckpt_every=5"), run, **QUIET)
    newest = run / "checkpoints" / "step_00000010.pt"
    newest.write_bytes(newest.read_bytes()[:1000])
    (run / "checkpoints" / "last.pt").write_bytes(b"garbage")
    said = []
    train(smoke("--train.ckpt_every=5"), run, resume=True, log=said.append)
    assert any("skipping" in m and "step_00000010.pt" in m for m in said)
    assert any("from step_00000005.pt at step 5" in m for m in said)
    assert metrics(ref) == metrics(run)


class Evil:
    def __reduce__(self):
        return (os.system, (f"touch {os.environ.get('EVIL_MARKER', '/tmp/openjepa-evil')}",))


def test_malicious_pickle_checkpoint_is_refused(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    monkeypatch.setenv("EVIL_MARKER", str(marker))
    path = tmp_path / "evil.pt"
    torch.save({"model": {}, "config": {}, "step": 0, "payload": Evil()}, path)
    with pytest.raises(ValueError, match="refused"):
        load_checkpoint(path)
    assert not marker.exists()
    path.write_bytes(pickle.dumps(Evil()))
    with pytest.raises(ValueError):
        load_checkpoint(path)
    assert not marker.exists()
    assert main(["eval", str(path), "--json"]) == 2 and not marker.exists()


def _wait_for(predicate, proc, timeout=900):
    deadline = time.time() + timeout
    while not predicate() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert predicate(), "the training process did not get going"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_checkpoints_the_current_step_and_resume_matches(sig, tmp_path):
    ref, run = tmp_path / "ref", tmp_path / "run"
    steps = ["--train.steps=60", "--train.ckpt_every=1000", "--train.log_every=1", "--train.monitor_every=30"]
    train(smoke(*steps), ref, **QUIET)
    proc = subprocess.Popen([sys.executable, "-m", "openjepa", "train", "smoke", "--out", str(run),
                             "--train.progress=false", *steps], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    log = run / "metrics.jsonl"
    _wait_for(lambda: log.exists() and log.read_text().count("\n") >= 5, proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=900)
    assert proc.returncode == 128 + sig, err
    state = load_checkpoint(run / "checkpoints" / "last.pt")
    assert 5 <= state["step"] < 60  # a checkpoint at the step the signal arrived, though ckpt_every is 1000
    assert main(["train", "--resume", str(run)]) == 0
    assert metrics(ref) == metrics(run)


KILLER = """
import os, signal, sys
import torch
from openjepa.train import checkpoint
from openjepa.cli import main
mode, renames, saves = sys.argv[1], [0], [0]
real_replace, real_save = os.replace, torch.save
def replace(src, dst):  # SIGKILL after the 2nd step file is written, before it is renamed into place
    if os.path.basename(str(dst)).startswith("step_"):
        renames[0] += 1
        if mode == "before_rename" and renames[0] == 2:
            os.kill(os.getpid(), signal.SIGKILL)
    return real_replace(src, dst)
def save(obj, f):  # SIGKILL halfway through writing the 2nd checkpoint's bytes
    saves[0] += 1
    if mode == "mid_write" and saves[0] == 2:
        real_save(obj, f); f.flush(); f.truncate(f.tell() // 2); f.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    return real_save(obj, f)
checkpoint.os.replace, checkpoint.torch.save = replace, save
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.parametrize("mode", ["before_rename", "mid_write"])
def test_sigkill_during_a_checkpoint_write(mode, tmp_path):
    """SIGKILL inside save_checkpoint (file written but not renamed; file half written): the previous checkpoint
    stays valid, resume drops the unfinished file and the metrics match an uninterrupted run."""
    ref, run = tmp_path / "ref", tmp_path / "run"
    steps = ["--train.steps=30", "--train.ckpt_every=5", "--train.log_every=5", "--train.monitor_every=0"]
    train(smoke(*steps), ref, **QUIET)
    proc = subprocess.run([sys.executable, "-c", KILLER, mode, "train", "smoke", "--out", str(run),
                           "--train.progress=false", *steps], capture_output=True, timeout=900)
    assert proc.returncode == -signal.SIGKILL
    folder = run / "checkpoints"
    assert list(folder.glob("*.tmp")), "the kill should have left an unfinished write behind"
    assert load_checkpoint(folder / "last.pt")["step"] == 5
    assert main(["train", "--resume", str(run)]) == 0
    assert not list(folder.glob("*.tmp"))
    assert metrics(ref) == metrics(run)


def _inject_nan_loss(monkeypatch, calls_to_poison):
    real, count = IJEPA.step, [0]

    def step(self, batch):
        loss, logs = real(self, batch)
        count[0] += 1
        if count[0] in calls_to_poison:
            loss = loss * float("nan")
            logs = {**logs, "pred_loss": float("nan")}
        return loss, logs

    monkeypatch.setattr(IJEPA, "step", step)


def _all_finite(run):
    return all(bool(torch.isfinite(t).all()) for p in (run / "checkpoints").glob("*.pt")
               for t in load_checkpoint(p)["model"].values() if t.is_floating_point())


def test_an_isolated_nan_step_is_skipped(tmp_path, monkeypatch):
    _inject_nan_loss(monkeypatch, {7})
    run = tmp_path / "run"
    summary = train(smoke(), run, **QUIET)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert summary["finished"] and summary["rollbacks"] == 0
    assert {"step": 7, "skipped": "loss (pred_loss)"} in rows
    assert _all_finite(run)


def test_repeated_nans_roll_back_with_a_lower_lr(tmp_path, monkeypatch):
    _inject_nan_loss(monkeypatch, {12, 13, 14})
    run = tmp_path / "run"
    said = []
    summary = train(smoke("--train.ckpt_every=5"), run, log=said.append)
    assert summary["finished"] and summary["rollbacks"] == 1
    assert any("rolled back to" in m and "(step 10)" in m for m in said)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert {"step": 10, "rollback": 1, "lr_scale": 0.5, "cause": "loss (pred_loss)"} in rows
    assert [r["lr_scale"] for r in rows if r.get("step") == 20 and "loss" in r] == [0.5]
    assert load_checkpoint(run / "checkpoints" / "last.pt")["lr_scale"] == 0.5
    assert _all_finite(run)


def test_nans_with_on_nonfinite_stop_give_a_report(tmp_path, monkeypatch):
    _inject_nan_loss(monkeypatch, {12, 13, 14})
    run = tmp_path / "run"
    with pytest.raises(FloatingPointError, match=r"step 14.*offending tensor: loss \(pred_loss\)"):
        train(smoke("--train.ckpt_every=5", "--train.on_nonfinite=stop"), run, **QUIET)
    report = json.loads((run / "failure.json").read_text())
    assert report["step"] == 14 and report["last_finite_metrics"]["step"] == 10
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == 10 and _all_finite(run)


class NaNGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, g):
        return g * float("nan")


def test_a_nan_gradient_names_the_parameter(tmp_path, monkeypatch):
    real = IJEPA.step

    def step(self, batch):
        loss, logs = real(self, batch)
        return loss + 0.0 * NaNGrad.apply(self.encoder.blocks[1].mlp[0].weight).sum(), logs

    monkeypatch.setattr(IJEPA, "step", step)
    with pytest.raises(FloatingPointError, match=r"gradient of encoder\.blocks\.1\.mlp\.0\.weight"):
        train(smoke("--train.on_nonfinite=stop"), tmp_path / "run", **QUIET)


def test_disk_full_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    run = tmp_path / "run"
    real, calls = torch.save, [0]

    def save(obj, f):
        calls[0] += 1
        if calls[0] == 3:
            f.write(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(obj, f)

    monkeypatch.setattr(ckpt_mod.torch, "save", save)
    with pytest.raises(OSError, match="disk full.*previous checkpoint is intact"):
        train(smoke("--train.ckpt_every=5", "--train.monitor_every=0"), run, **QUIET)
    folder = run / "checkpoints"
    assert load_checkpoint(folder / "last.pt")["step"] == 10 and not list(folder.glob("*.tmp"))
    monkeypatch.setattr(ckpt_mod.torch, "save", real)
    train(smoke("--train.ckpt_every=5", "--train.monitor_every=0"), run, resume=True, **QUIET)
    assert load_checkpoint(folder / "last.pt")["step"] == 20


def test_nan_weights_are_never_written(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint({"model": {"w": torch.ones(2)}, "config": {}, "step": 1}, path)
    with pytest.raises(FloatingPointError, match="'w'"):
        save_checkpoint({"model": {"w": torch.tensor([1.0, float("nan")])}, "config": {}, "step": 2}, path)
    assert load_checkpoint(path)["step"] == 1


def test_resume_with_a_different_config_needs_force(tmp_path, capsys):
    run = tmp_path / "run"
    train(smoke("--train.stop_after=10"), run, **QUIET)
    assert main(["train", "--resume", str(run), "--optim.lr=0.5"]) == 2
    assert "optim.lr: 0.001 -> 0.5" in capsys.readouterr().err
    assert main(["train", "--resume", str(run), "--optim.lr=0.5", "--force"]) == 0
    assert load_checkpoint(run / "checkpoints" / "last.pt")["config"]["optim"]["lr"] == 0.5


def test_same_seed_same_run(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    train(smoke(), a, **QUIET)
    train(smoke(), b, **QUIET)
    assert metrics(a) == metrics(b)


def test_export_and_load_encoder(tmp_path, capsys):
    run = tmp_path / "run"
    train(smoke("--train.steps=5"), run, **QUIET)
    assert main(["export", str(run), "--out", str(tmp_path / "enc")]) == 0
    files = {p.name for p in (tmp_path / "enc").iterdir()}
    assert files == {"model.safetensors", "config.json"}
    encoder = openjepa.load_encoder(tmp_path / "enc")
    from openjepa.train.checkpoint import load_method

    method, _, _ = load_method(run)
    x = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(encoder(x), method.eval_encoder()(x))
    with pytest.raises(FileNotFoundError, match="not an exported encoder"):
        openjepa.load_encoder(tmp_path)
