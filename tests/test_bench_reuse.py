"""bench/reuse.py and train/loop.py config_diff: which earlier runs a bench's --reuse (or a resume) keeps."""

from types import SimpleNamespace

from openjepa.bench import reuse
from openjepa.config import load_config
from openjepa.train.loop import config_diff
from openjepa.train.run import find_preset
from openjepa.validate import resolve_config


def _preset(*over):
    return resolve_config(load_config(find_preset("world_model_two_rooms_any"), list(over)))


def test_a_run_saved_with_the_precision_auto_chose_stands_for_an_auto_config():
    auto = _preset()
    assert auto.train.precision == "auto"
    saved = _preset("--train.precision=bf16")  # a run saves auto's choice, never 'auto'
    assert config_diff(saved, auto) == []
    # an explicit precision must match, and so must every other training key
    assert config_diff(saved, _preset("--train.precision=fp32")) == ["train.precision: 'bf16' -> 'fp32'"]
    assert config_diff(saved, _preset("--optim.lr=0.123")) == [f"optim.lr: {saved.optim.lr!r} -> 0.123"]


def _saved(monkeypatch, step, diff):
    monkeypatch.setattr(reuse, "last_checkpoint", lambda run_dir, cfg: (step, diff))


def test_reuse_keeps_finished_runs_and_resumes_unfinished_ones_with_the_same_settings(tmp_path, monkeypatch):
    cfg = SimpleNamespace(train=SimpleNamespace(steps=10))
    _saved(monkeypatch, 10, [])
    assert reuse.finished_run(tmp_path, cfg) is None and reuse.resumable_step(tmp_path, cfg) is None
    _saved(monkeypatch, 4, [])
    assert "stopped at step 4" in reuse.finished_run(tmp_path, cfg) and reuse.resumable_step(tmp_path, cfg) == 4
    _saved(monkeypatch, 10, ["optim.lr: 0.001 -> 0.002"])
    assert "optim.lr" in reuse.finished_run(tmp_path, cfg)
    # sections a bench ignores (settings that score a run, not train it)
    _saved(monkeypatch, 10, ["eval.protocols: 'mean' -> 'mean,lastk'"])
    assert reuse.finished_run(tmp_path, cfg, ignore=("eval",)) is None and reuse.finished_run(tmp_path, cfg)
    _saved(monkeypatch, 4, ["eval.protocols: 'mean' -> 'mean,lastk'"])
    assert reuse.resumable_step(tmp_path, cfg, ignore=("eval",)) == 4 and reuse.resumable_step(tmp_path, cfg) is None
