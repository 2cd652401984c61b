"""bench/reuse.py: which earlier runs a bench's --reuse keeps."""

from types import SimpleNamespace

from openjepa.bench import reuse


def _saved(monkeypatch, step, diff):
    monkeypatch.setattr(reuse, "last_checkpoint", lambda run_dir, cfg: (step, diff))


def test_a_run_saved_with_the_precision_auto_chose_stands_for_an_auto_config(tmp_path, monkeypatch):
    cfg = SimpleNamespace(train=SimpleNamespace(steps=10, precision="auto"))
    _saved(monkeypatch, 10, ["train.precision: 'bf16' -> 'auto'"])  # a run saves auto's choice, never 'auto'
    assert reuse.finished_run(tmp_path, cfg) is None
    _saved(monkeypatch, 4, ["train.precision: 'bf16' -> 'auto'"])
    assert reuse.resumable_step(tmp_path, cfg) == 4
    # an explicit precision must match, and so must every other training key
    _saved(monkeypatch, 10, ["train.precision: 'bf16' -> 'fp32'"])
    assert "train.precision" in reuse.finished_run(tmp_path, cfg)
    _saved(monkeypatch, 10, ["train.precision: 'bf16' -> 'auto'", "optim.lr: 0.001 -> 0.002"])
    assert "optim.lr" in reuse.finished_run(tmp_path, cfg) and "precision" not in reuse.finished_run(tmp_path, cfg)
    # sections a bench ignores (settings that score a run, not train it)
    _saved(monkeypatch, 10, ["eval.protocols: 'mean' -> 'mean,lastk'"])
    assert reuse.finished_run(tmp_path, cfg, ignore=("eval",)) is None and reuse.finished_run(tmp_path, cfg)
    _saved(monkeypatch, 4, ["eval.protocols: 'mean' -> 'mean,lastk'"])
    assert reuse.resumable_step(tmp_path, cfg, ignore=("eval",)) == 4 and reuse.resumable_step(tmp_path, cfg) is None
