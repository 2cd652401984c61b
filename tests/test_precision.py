"""train.precision=auto: the choice follows the probe's timings, the cached verdict is read instead of probing
again, CUDA picks bf16, and a run records the precision it resolved to. The CPU facts (model, matmul flags)
come from /proc/cpuinfo's text."""

import json

import pytest
import torch
import yaml

from openjepa.config import build_config
from openjepa.train import loop, precision
from test_train_step import CPU, smoke


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENJEPA_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "precision.json"


def fake_probe(fp32, bf16, calls):
    def run(shape, **kw):
        calls.append(shape)
        return {"fp32": fp32, "bf16": bf16}
    return run


@pytest.mark.parametrize("fp32, bf16, expected", [(2.0, 1.0, "bf16"), (1.0, 2.0, "fp32"), (1.0, 1.0, "bf16")])
def test_the_choice_follows_the_probe_and_is_cached(cache, monkeypatch, fp32, bf16, expected):
    calls = []
    monkeypatch.setattr(precision, "probe", fake_probe(fp32, bf16, calls))
    cfg = smoke("--train.precision=auto")
    assert precision.resolve_precision(cfg, CPU) == expected
    assert len(calls) == 1 and calls[0] == (48, 3, 49)  # the smoke preset's block: dim 48, 3 heads, 7x7 patches
    saved = json.loads(cache.read_text())
    assert [v["precision"] for v in saved.values()] == [expected]
    # a second resolution reads the cache: a probe that now says the opposite is not run
    monkeypatch.setattr(precision, "probe", fake_probe(bf16, fp32, calls))
    assert precision.resolve_precision(cfg, CPU) == expected
    assert len(calls) == 1
    # another block shape is another entry
    precision.resolve_precision(smoke("--train.precision=auto", "--model.dim=96"), CPU)
    assert len(calls) == 2 and len(json.loads(cache.read_text())) == 2


def test_the_cache_is_keyed_by_machine_and_a_bad_cache_is_probed_again(cache, monkeypatch):
    calls = []
    monkeypatch.setattr(precision, "probe", fake_probe(2.0, 1.0, calls))
    cache.parent.mkdir(parents=True)
    cache.write_text("{cut")
    assert precision.resolve_precision(smoke("--train.precision=auto"), CPU) == "bf16" and len(calls) == 1
    key = precision.cache_key((48, 3, 49))
    assert precision.cpu_info()["cpu_model"] in key and torch.__version__ in key
    assert f"threads {torch.get_num_threads()}" in key


def test_explicit_precisions_and_devices(cache, monkeypatch):
    monkeypatch.setattr(precision, "probe", lambda shape: pytest.fail("probed"))
    for p in ("bf16", "fp32"):
        assert precision.resolve_precision(smoke(f"--train.precision={p}"), CPU) == p
    auto = smoke("--train.precision=auto")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert precision.resolve_precision(auto, torch.device("cuda")) == "bf16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert precision.resolve_precision(auto, torch.device("cuda")) == "fp32"
    assert precision.resolve_precision(auto, torch.device("mps")) == "fp32"
    assert not cache.exists()


def test_a_run_records_the_resolved_precision(cache, monkeypatch, tmp_path):
    monkeypatch.setattr(precision, "probe", fake_probe(1.0, 2.0, []))
    cfg = smoke("--train.precision=auto", "--train.steps=1", "--train.ckpt_every=1")
    lines = []
    loop.train(cfg, tmp_path / "run", log=lines.append)
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["train"]["precision"] == "fp32"
    assert any("train.precision=auto -> fp32" in line for line in lines)


def test_probe_times_both_precisions():
    t = precision.probe((16, 2, 4), batch=2, repeats=1)
    assert set(t) == {"fp32", "bf16"} and all(v > 0 for v in t.values())


WORLD = ["--train.method=world_model", "--data.dataset=trajectories", "--data.path=unused", "--model.encoder=cnn",
         "--data.img_size=33", "--model.dim=16", "--model.depth=2", "--model.pred_dim=16", "--model.pred_depth=1",
         "--world.predictor=gru", "--world.frames=4", "--world.rollout=2", "--world.frameskip=2",
         "--reg.ema=false", "--reg.kind=vicreg"]


def test_a_world_model_probes_its_own_step(cache, monkeypatch):
    """The world model (CNN + GRU, small ops) is timed as its own step, not as a transformer block, and keyed so."""
    calls = []
    monkeypatch.setattr(precision, "probe", fake_probe(1.0, 2.0, calls))
    cfg = build_config({}, [*WORLD, "--train.precision=auto"])
    assert precision.resolve_precision(cfg, CPU) == "fp32"
    assert calls[0][:2] == ("step", "world_model") and "gru" in calls[0]
    assert "|step world_model" in next(iter(json.loads(cache.read_text())))


def test_a_convolutional_image_encoder_is_probed_as_itself(cache, monkeypatch):
    calls = []
    monkeypatch.setattr(precision, "probe", fake_probe(2.0, 1.0, calls))
    assert precision.resolve_precision(smoke("--train.precision=auto", "--model.encoder=resnet"), CPU) == "bf16"
    assert calls[0][:2] == ("encoder", "resnet") and "|encoder resnet" in next(iter(json.loads(cache.read_text())))


@pytest.mark.parametrize("what", ["block", "step", "encoder"])
def test_the_probe_leaves_the_random_stream_alone(what):
    """A run that probes starts from the same weights as one that reads the cached verdict."""
    cfg = build_config({}, [*WORLD, "--train.precision=auto"]) if what == "step" else \
        smoke("--train.precision=auto", "--model.encoder=resnet")
    shape = (16, 2, 4) if what == "block" else precision.probe_shape(cfg)
    torch.manual_seed(3)
    before = torch.get_rng_state()
    t = precision.probe(shape, batch=2, repeats=1, cfg=cfg)
    assert set(t) == {"fp32", "bf16"} and all(v > 0 for v in t.values())
    assert torch.equal(torch.get_rng_state(), before)


CPUINFO = """processor\t: 0
model name\t: Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz
flags\t\t: fpu avx2 avx512f avx512_bf16 amx_bf16 amx_tile amx_int8 sse4_2
processor\t: 1
model name\t: Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz
"""


def test_cpu_info_reads_the_model_and_matmul_flags():
    info = precision.cpu_info(CPUINFO)
    assert info["cpu_model"] == "Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz"
    assert info["cpu_flags"] == ["amx_bf16", "amx_tile", "avx2", "avx512_bf16", "avx512f"]
    assert info["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert precision.cpu_info("flags\t: avx2 sse4_2\n")["cpu_flags"] == ["avx2"]
