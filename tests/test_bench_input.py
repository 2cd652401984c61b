"""bench/input.py: the input-pipeline suite on a tiny generated tree returns every row with finite positive
measurements, its workers-per-GPU estimate is the ceiling of GPU rate / per-worker rate at the GPU row's image
size, the JPEG tree is generated once and reused, and `openjepa bench input` reaches it."""

import json
import math

import pytest

from openjepa.bench import SUITES
from openjepa.bench.input import Budget, make_tree, run_input, worker_counts
from openjepa.cli import build_parser

TINY = Budget(images=40, classes=4, small_images=12, batch_size=4, batches_per_worker=2, rss_batches=2,
              rss_workers=1, max_workers=2, repeats=1)
FIELDS = {
    "pil_decode": {"measure", "name", "images", "seconds", "samples_per_s"},
    "streaming": {"measure", "name", "workers", "img_size", "channels", "batch_size", "samples", "seconds",
                  "samples_per_s", "per_worker_samples_per_s"},
    "peak_rss": {"measure", "name", "images", "workers", "batch_size", "batches", "peak_rss_mb", "peak_rss_worker_mb",
                 "peak_rss_total_mb"},
    "gpu_feed": {"measure", "name", "config", "gpu", "gpu_samples_per_s", "img_size", "channels",
                 "per_worker_samples_per_s", "workers_needed"},
}


def throughput_file(path):
    """A `bench throughput` result with two GPU rows at different image sizes and a CPU row (not a GPU: no
    estimate)."""
    path.write_text(json.dumps({
        "suite": "throughput", "git_sha": "abc", "machine": "Linux x86_64, some CPU, 16 torch threads, GPU Test G1",
        "configs": {"big/bf16": {"data": {"img_size": 224, "channels": 3}},
                    "small/bf16": {"data": {"img_size": 32, "channels": 1}},
                    "cpu/fp32": {"data": {"img_size": 224, "channels": 3}}},
        "rows": [{"config": "big", "dtype": "bf16", "device": "cuda", "samples_per_s": 1234.5},
                 {"config": "small", "dtype": "bf16", "device": "cuda", "samples_per_s": 5000.0},
                 {"config": "cpu", "dtype": "fp32", "device": "cpu", "samples_per_s": 50.0}]}))
    return path


def test_tiny_suite_rows_and_gpu_estimate(tmp_path):
    res = run_input(True, tmp_path / "work", [], tmp_path / "out.json", budget=TINY,
                    throughput_file=throughput_file(tmp_path / "gpu.json"))
    assert res["suite"] == "input" and res["git_sha"] and res["machine"] and res["configs"]["budget"]["images"] == 40
    rows = res["rows"]
    for r in rows:
        assert set(r) == FIELDS[r["measure"]], r["name"]
        for k, v in r.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "workers":
                assert math.isfinite(v) and v > 0, (r["name"], k, v)
    assert len({r["name"] for r in rows}) == len(rows)
    stream = {(r["img_size"], r["channels"], r["workers"]): r for r in rows if r["measure"] == "streaming"}
    assert {(224, 3, 0), (224, 3, 1), (224, 3, 2), (32, 1, 0)} <= set(stream)
    assert stream[(224, 3, 2)]["samples"] == 2 * TINY.batches_per_worker * TINY.batch_size
    assert [r["images"] for r in rows if r["measure"] == "peak_rss"] == [40, 12]

    feed = {r["config"]: r for r in rows if r["measure"] == "gpu_feed"}
    assert set(feed) == {"big", "small"}  # the CPU row is no GPU to feed
    for name, size, channels, gpu_rate in (("big", 224, 3, 1234.5), ("small", 32, 1, 5000.0)):
        rate = stream[(size, channels, 0)]["per_worker_samples_per_s"]
        assert feed[name]["per_worker_samples_per_s"] == rate
        assert feed[name]["workers_needed"] == math.ceil(gpu_rate / rate) == res["summary"]["workers_per_gpu"][name]
        assert feed[name]["gpu"] == "Test G1"

    plain = next(r for r in rows if r["measure"] == "pil_decode")
    assert plain["images"] == stream[(224, 3, 0)]["samples"]  # the same files, decoded both ways
    s = res["summary"]
    assert s["pipeline_overhead"] == round(plain["samples_per_s"] / stream[(224, 3, 0)]["samples_per_s"], 3)
    rss = [r["peak_rss_total_mb"] for r in rows if r["measure"] == "peak_rss"]
    assert s["rss_ratio"] == round(rss[0] / rss[1], 3)
    assert s["cpu_count"] >= 1 and s["tree"]["mean_kb"] > 0


def test_tree_is_generated_once_and_reused(tmp_path):
    root = make_tree(tmp_path, 6, 2)
    files = sorted(root.rglob("*.jpg"))
    assert len(files) == 6 and {f.parent.name for f in files} == {"c000", "c001"}
    stamps = [f.stat().st_mtime_ns for f in files]
    assert make_tree(tmp_path, 6, 2) == root
    assert [f.stat().st_mtime_ns for f in files] == stamps
    (root / "c000" / "img_000000.jpg").unlink()  # a changed spec (here: no marker match) rebuilds
    root.with_name(root.name + ".json").write_text("{}")
    make_tree(tmp_path, 6, 2)
    assert len(list(root.rglob("*.jpg"))) == 6


def test_worker_counts_and_cli():
    assert worker_counts(1) == [1, 2] and worker_counts(2) == [1, 2]
    assert worker_counts(6) == [1, 2, 4, 6] and worker_counts(16) == [1, 2, 4, 8, 16]
    assert SUITES["input"] is run_input
    args = build_parser().parse_args(["bench", "input", "--quick", "--workdir", "w"])
    assert args.suite == "input" and args.quick


def test_overrides_are_refused(tmp_path):
    with pytest.raises(ValueError, match="no config overrides"):
        run_input(True, tmp_path, ["--train.steps=3"], tmp_path / "o.json", budget=TINY)
    assert not any(tmp_path.iterdir())  # refused before generating anything
