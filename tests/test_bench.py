"""The benchmark suites' output contract, on a tiny budget (the real budgets live in the suites)."""

import json

import pytest

from openjepa.cli import main

TINY = {
    "images": ["--model.dim=48", "--model.depth=2", "--model.pred_dim=24", "--model.pred_depth=1",
               "--model.proj_hidden=64", "--model.proj_dim=16", "--train.steps=3", "--train.monitor_every=3", "--train.monitor_samples=32", "--train.progress=false",
               "--eval.train_samples=200", "--eval.test_samples=100", "--eval.probe_iters=20", "--eval.lastk=2",
               "--eval.attentive_epochs=1"],
    "collapse": ["--train.steps=4", "--train.monitor_every=2", "--eval.train_samples=200", "--eval.test_samples=100",
                 "--eval.probe_iters=20"],
}
KEYS = {
    "images": {"name", "linear_top1", "knn_top1", "rankme", "train_seconds"},
    "collapse": {"name", "collapsed", "rankme", "linear_top1"},
}
NAMES = {
    "images": ["raw_pixels", "random_init", "ijepa", "ijepa_vicreg", "ijepa_sigreg", "mae", "lejepa"],
    "collapse": ["none", "ema", "vicreg", "sigreg", "ema+sigreg"],
}


@pytest.mark.parametrize("suite", ["images", "collapse"])
def test_suite_writes_every_row_with_checkpoints(suite, tmp_path, capsys):
    out = tmp_path / "result.json"
    assert main(["bench", suite, "--quick", "--out", str(out), "--workdir", str(tmp_path / "work"), *TINY[suite]]) == 0
    result = json.loads(out.read_text())
    assert result["suite"] == suite and result["git_sha"] and result["machine"]
    assert [r["name"] for r in result["rows"]] == NAMES[suite]
    for row in result["rows"]:
        assert KEYS[suite] <= set(row)
        if row["name"] != "raw_pixels":
            assert row["checkpoint"].startswith(str(tmp_path / "work"))
    if suite == "images":  # every row carries every probe protocol (eval/protocols.py)
        for row in result["rows"]:
            assert list(row["protocols"]) == ["mean", "lastk", "layernorm", "attentive"], row["name"]
            assert row["protocols"]["mean"]["linear_top1"] == row["linear_top1"]
            assert "knn_top1" in row["protocols"]["lastk"] and "knn_top1" not in row["protocols"]["attentive"]
        assert result["figure"] == str(tmp_path / "result_protocols.png")  # bars per row and protocol
        assert (tmp_path / "result_protocols.png").stat().st_size > 1000
    if suite == "collapse":
        assert (tmp_path / "result.png").stat().st_size > 1000
    trained = result["rows"][-1]["checkpoint"]
    capsys.readouterr()
    assert main(["eval", trained, "--json", "--train-samples=200", "--test-samples=100"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"][0]["checkpoint"] == trained
