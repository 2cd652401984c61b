"""Tests for openjepa.eval.report.write_report."""

from __future__ import annotations

import base64
import json
import pathlib
import re

import numpy as np
import pytest

from openjepa.config import config_to_yaml, load_config
from openjepa.eval.report import write_report
from openjepa.train.run import find_preset, provenance

IMG_RE = re.compile(r'<img [^>]*src="data:image/png;base64,([A-Za-z0-9+/=]+)"')
BANNER = 'id="collapse-warning"'

NASTY = "<script>alert('x')</script> & more"  # a config value that must come out escaped


def _run_config_yaml() -> str:
    """config.yaml as training writes it (train.loop: config_to_yaml(cfg, provenance())), with a data.path that
    needs escaping."""
    cfg = load_config(find_preset("smoke"), [f"--data.path={NASTY}"])
    return config_to_yaml(cfg, {**provenance(), "git_sha": "abc1234deadbeef"})


def _write_metrics(path: pathlib.Path, *, collapsed: bool, truncated: bool = True) -> None:
    lines = []
    for i in range(20):
        step = 10 * (i + 1)
        lines.append({"step": step, "epoch": i // 10, "loss": 1.0 / (1 + i), "lr": 1e-3 * min(1, (i + 1) / 5),
                      "wd": 0.04 + 0.001 * i, "ema": 0.996 + 0.0001 * i, "samples_per_s": 500.0 + i})
        if step % 50 == 0:
            is_bad = collapsed and step == 150
            lines.append({"step": step, "rankme": 3.0 if is_bad else 40.0 + i,
                          "feat_std": 0.001 if is_bad else 0.12, "mean_cos": 0.99 if is_bad else 0.05,
                          "knn_top1": 0.3 + 0.02 * i, "collapsed": is_bad})
    text = "\n".join(json.dumps(r) for r in lines) + "\n"
    if truncated:
        text += '{"step": 210, "loss": 0.0'  # crash mid-write
    path.write_text(text)


def _make_run(root: pathlib.Path, *, collapsed: bool = True) -> pathlib.Path:
    run = root / "run_ijepa_tiny"
    run.mkdir()
    (run / "config.yaml").write_text(_run_config_yaml())
    _write_metrics(run / "metrics.jsonl", collapsed=collapsed)
    warnings = ["feat_std 0.001 far below 1/sqrt(64)"] if collapsed else []
    (run / "eval.json").write_text(json.dumps({
        "rows": [
            {"name": "target_encoder", "linear_top1": 0.8766, "knn_top1": 0.8123, "rankme": 41.25,
             "feat_std": 0.1234, "mean_cos": 0.0456, "collapsed": False, "dim": 64},
            {"name": "context<encoder>", "linear_top1": 0.5, "knn_top1": 0.25, "rankme": 12.0,
             "feat_std": 0.05, "mean_cos": 0.3, "collapsed": False, "dim": 64},
        ],
        "warnings": warnings,
    }))
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(3, 16)) * 4
    y = np.repeat(np.arange(3), 30)
    z = centers[y] + rng.normal(size=(90, 16))
    np.savez(run / "embedding.npz", z=z.astype(np.float32), y=y,
             class_names=np.array(["cat", "dog", "bird"]))
    return run


@pytest.fixture(scope="module")
def full_report(tmp_path_factory):
    run = _make_run(tmp_path_factory.mktemp("full"), collapsed=True)
    out = write_report(run)
    return run, out, out.read_text(encoding="utf-8")


def test_full_report_written(full_report):
    run, out, html = full_report
    assert out == run / "report.html"
    assert out.is_file()
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]
    assert html.startswith("<!DOCTYPE html>")
    # self-contained: no scripts, no external resources
    assert "<script" not in html.lower()
    assert "http://" not in html and "https://" not in html


def test_full_report_images(full_report):
    _, _, html = full_report
    imgs = IMG_RE.findall(html)
    # loss, schedules, collapse panel, online probe, PCA
    assert len(imgs) == 5
    for b64 in imgs:
        assert base64.b64decode(b64)[:8] == b"\x89PNG\r\n\x1a\n"


def test_full_report_header_and_banner(full_report):
    _, _, html = full_report
    assert "run_ijepa_tiny" in html
    assert "<tr><td>method</td><td>ijepa</td></tr>" in html  # train.method of the real config.yaml
    assert "<tr><td>git sha</td><td>abc1234deadbeef</td></tr>" in html
    assert "<tr><td>feature dim</td><td>64</td></tr>" in html  # eval.json rows' width, not model.dim (48)
    assert "healthy feature std 1/sqrt(64)" in html
    assert "final step" in html and ">200<" in html  # truncated line (step 210) skipped
    assert "0.05" in html  # final loss 1/20
    assert BANNER in html
    assert "collapse detected at step 150" in html
    assert "feat_std 0.001 far below 1/sqrt(64)" in html
    # banner comes before the body sections
    assert html.index(BANNER) < html.index("<h2>")


def test_full_report_escaping(full_report):
    _, _, html = full_report
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; more" in html and NASTY not in html
    assert "context&lt;encoder&gt;" in html
    assert "<details><summary>config.yaml</summary><pre>" in html


def test_full_report_eval_table(full_report):
    _, _, html = full_report
    table = html[html.index('<table class="eval">'):]
    table = table[: table.index("</table>")]
    for cell in ("87.7%", "81.2%", "50.0%", "25.0%", "41.25", "0.1234", "0.0456", "target_encoder"):
        assert f"<td>{cell}</td>" in table, cell


def test_no_banner_without_collapse(tmp_path):
    run = _make_run(tmp_path, collapsed=False)
    html = write_report(run).read_text()
    assert BANNER not in html
    assert "WARNING" not in html
    assert len(IMG_RE.findall(html)) == 5


def test_minimal_one_row(tmp_path):
    run = tmp_path / "tiny"
    run.mkdir()
    (run / "metrics.jsonl").write_text('{"step": 1, "loss": 2.5, "lr": 0.001}\n')
    out = write_report(str(run))
    html = out.read_text()
    assert len(IMG_RE.findall(html)) == 2  # loss + schedules
    assert "No eval.json" in html and "No embedding.npz" in html and "No config.yaml" in html
    assert BANNER not in html
    assert "2.5" in html


def test_empty_metrics_and_rewrite(tmp_path):
    run = tmp_path / "empty"
    run.mkdir()
    (run / "metrics.jsonl").write_text("")
    out = write_report(run)
    html = out.read_text()
    assert IMG_RE.findall(html) == []
    assert "empty" in html
    # rewriting replaces the file atomically
    (run / "metrics.jsonl").write_text('{"step": 3, "loss": -1.0, "grad_norm": 0.5}\n{"step": 4, "loss": 1.0}\n')
    html = write_report(run).read_text()
    assert len(IMG_RE.findall(html)) == 2  # loss (linear y, non-positive value) + other metrics
    assert "grad_norm" in html


def test_not_a_directory(tmp_path):
    with pytest.raises(NotADirectoryError):
        write_report(tmp_path / "missing")


def test_report_of_a_real_run_names_its_method(tmp_path):
    """A two-step training writes its own config.yaml and metrics.jsonl; the report's header names the run's
    method and git sha from that file, and draws the loss it logged."""
    from openjepa.train.loop import train

    cfg = load_config(find_preset("smoke"), ["--data.dataset=synthetic", "--train.steps=2", "--train.progress=false",
                                             "--train.monitor_every=0"])
    run = tmp_path / "run"
    train(cfg, run, log=lambda *a, **k: None)
    html = write_report(run).read_text()
    assert f"<tr><td>method</td><td>{cfg.train.method}</td></tr>" in html
    assert re.search(r"<tr><td>git sha</td><td>[^<]+</td></tr>", html)
    assert "Training loss vs step" in html
