"""Probe protocols (eval/protocols.py) on synthetic data with a known answer, the attentive probe's isolation from
test labels, the documented feature/token shapes, and eval rows carrying every requested protocol."""

from types import SimpleNamespace

import pytest
import torch

from openjepa.config import EVAL_PROTOCOLS, ConfigError, build_config
from openjepa.eval.protocols import (attentive_fit, attentive_probe, evaluate_protocols, layer_norm_rows,
                                     parse_protocols, pixel_tokens)

CFG = SimpleNamespace(probe_iters=50, knn_k=5, knn_temperature=0.07, attentive_epochs=100)


def _tokens(n: int, separable: bool, seed: int, T: int = 6, D: int = 8, classes: int = 4):
    """(n, T, D) tokens; separable: one token per sample carries a class direction (at a random position)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    tok = torch.randn(n, T, D, generator=g) * 0.3
    if separable:
        pos = torch.randint(0, T, (n,), generator=g)
        tok[torch.arange(n), pos, y] += 4.0
    return tok, y


def _featurizer(tok_tr, tok_te, x_tr):
    """A fake model over index 'images': tokens as given, mean/lastk pooled from them."""
    def featurize(x, pool, desc):
        tok = tok_tr if x is x_tr else tok_te
        if pool == "tokens":
            return tok
        z = tok.mean(1) * tok.shape[1]  # the pooled class signal, undiluted
        return torch.cat([z, z], 1) if pool == "lastk" else z
    return featurize


@pytest.mark.parametrize("separable", [True, False])
def test_every_protocol_separable_near_perfect_noise_near_chance(separable):
    tok_tr, y_tr = _tokens(400, separable, 0)
    tok_te, y_te = _tokens(200, separable, 1)
    x_tr, x_te = torch.zeros(400, 1), torch.zeros(200, 1)
    out = evaluate_protocols(_featurizer(tok_tr, tok_te, x_tr), (x_tr, y_tr, x_te, y_te), list(EVAL_PROTOCOLS), CFG)
    assert list(out) == list(EVAL_PROTOCOLS)
    for p, r in out.items():
        if separable:
            assert r["linear_top1"] >= 0.97, (p, r)
        else:
            assert r["linear_top1"] <= 0.40, (p, r)  # 4 classes: chance 0.25
        assert ("knn_top1" in r) == (p != "attentive")
    assert out["lastk"]["dim"] == 2 * out["mean"]["dim"]


def test_attentive_probe_never_reads_test_labels():
    tok_tr, y_tr = _tokens(400, True, 0)
    tok_te, y_te = _tokens(200, True, 1)
    a = attentive_probe(tok_tr, y_tr, tok_te, y_te, epochs=100)
    perm = y_te[torch.randperm(200, generator=torch.Generator().manual_seed(3))]
    b = attentive_probe(tok_tr, y_tr, tok_te, (perm + 1) % 4, epochs=100)
    # the choices made at train time (lr, wd, validation score) are the same whatever the test labels
    assert {k: a[k] for k in a if k != "linear_top1"} == {k: b[k] for k in b if k != "linear_top1"}
    assert a["linear_top1"] > 0.9 > b["linear_top1"]  # only the score changed
    # and the fit itself takes no test data: deterministic from the train set alone
    p1, i1 = attentive_fit(tok_tr, y_tr, epochs=2)
    p2, i2 = attentive_fit(tok_tr, y_tr, epochs=2)
    assert i1 == i2 and all(torch.equal(u, v) for u, v in zip(p1.state_dict().values(), p2.state_dict().values()))


def test_pixel_tokens_shape_and_layout():
    x = torch.randint(0, 256, (3, 2, 8, 12), dtype=torch.uint8)
    t = pixel_tokens(x, 4)
    assert t.shape == (3, (8 // 4) * (12 // 4), 4 * 4 * 2)
    # token 1 is the patch at grid row 0, column 1; features are (py, px, channel)
    patch = (x[0, :, 0:4, 4:8].float() / 255 - 0.5) / 0.5
    assert torch.allclose(t[0, 1], patch.permute(1, 2, 0).reshape(-1))
    with pytest.raises(ValueError, match="multiple of the patch size"):
        pixel_tokens(x, 5)


def test_lastk_features_shape_from_a_vit():
    from openjepa.methods import METHODS

    cfg = build_config({}, ["--model.dim=16", "--model.depth=3", "--model.heads=2", "--model.pred_dim=8",
                            "--model.pred_depth=1", "--model.pred_heads=2"])
    torch.manual_seed(0)
    enc = METHODS["ijepa"](cfg).eval_encoder()
    x = torch.randint(0, 256, (5, cfg.data.channels, cfg.data.img_size, cfg.data.img_size), dtype=torch.uint8)
    assert enc.features(x, "lastk", k=3).shape == (5, 3 * 16)
    n_tok = (cfg.data.img_size // cfg.model.patch_size) ** 2
    assert enc.features(x, "tokens").shape == (5, n_tok, 16)


def test_layernorm_rows_and_protocol_parsing():
    z = torch.randn(4, 10) * 5 + 3
    n = layer_norm_rows(z)
    assert torch.allclose(n.mean(1), torch.zeros(4), atol=1e-5) and torch.allclose(n.std(1, unbiased=False),
                                                                                   torch.ones(4), atol=1e-3)
    assert parse_protocols("mean, attentive,mean") == ["mean", "attentive"]
    with pytest.raises(ValueError, match="unknown protocol"):
        parse_protocols("mean,bogus")
    with pytest.raises(ConfigError, match=r"^eval\.protocols"):
        build_config({}, ["--eval.protocols=mean,bogus"])
    assert build_config({}, []).eval.protocols == "mean"


def test_eval_row_carries_every_requested_protocol():
    from openjepa.eval.evaluate import evaluate_encoder
    from openjepa.methods import METHODS

    cfg = build_config({}, ["--model.dim=16", "--model.depth=2", "--model.heads=2", "--model.pred_dim=8",
                            "--model.pred_depth=1", "--model.pred_heads=2", "--eval.train_samples=100",
                            "--eval.test_samples=100", "--eval.probe_iters=5", "--eval.attentive_epochs=1",
                            "--eval.lastk=2", "--eval.protocols=mean,lastk,attentive"])
    g = torch.Generator().manual_seed(0)
    s, c = cfg.data.img_size, cfg.data.channels
    split = (torch.randint(0, 256, (100, c, s, s), generator=g, dtype=torch.uint8), torch.arange(100) % 3,
             torch.randint(0, 256, (60, c, s, s), generator=g, dtype=torch.uint8), torch.arange(60) % 3)
    torch.manual_seed(0)
    enc = METHODS["ijepa"](cfg).eval_encoder()
    dev = torch.device("cpu")
    for name, e in (("ijepa", enc), ("raw_pixels", None)):
        row = evaluate_encoder(name, e, split, cfg.eval, dev, "fp32", progress=False, patch=cfg.model.patch_size)[0]
        assert list(row["protocols"]) == ["mean", "lastk", "attentive"]
        assert row["protocols"]["mean"]["linear_top1"] == row["linear_top1"]
        assert 0.0 <= row["protocols"]["attentive"]["linear_top1"] <= 1.0
        want = 16 * 2 if e is not None else c * s * s  # raw pixels have no layers: lastk = the pixels
        assert row["protocols"]["lastk"]["dim"] == want
    # the default protocol list leaves the row as it always was
    cfg.eval.protocols = "mean"
    row = evaluate_encoder("ijepa", enc, split, cfg.eval, dev, "fp32", progress=False)[0]
    assert "protocols" not in row


def test_lastk_deeper_than_the_encoder_is_refused_up_front():
    from openjepa.config import load_config
    from openjepa.train.run import find_preset

    with pytest.raises(ConfigError, match="eval.lastk"):
        load_config(find_preset("smoke"), ["--eval.protocols=mean,lastk", "--eval.lastk=3"])  # smoke: depth 2
    assert load_config(find_preset("smoke"), ["--eval.protocols=mean,lastk", "--eval.lastk=2"]).eval.lastk == 2


def test_protocol_bars_draws_rows_with_protocols_and_skips_the_rest(tmp_path):
    from openjepa.eval.plots import protocol_bars

    rows = [{"name": "raw_pixels", "protocols": {"mean": {"linear_top1": 0.86}, "lastk": {"linear_top1": 0.86}}},
            {"name": "ijepa", "protocols": {"mean": {"linear_top1": 0.78}, "attentive": {"linear_top1": 0.84}}},
            {"name": "old_row_without_protocols", "linear_top1": 0.5}]
    path = tmp_path / "bars.png"
    assert protocol_bars(rows, path, "t") == str(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 1000
    assert protocol_bars(rows[2:], tmp_path / "none.png", "t") is None and not (tmp_path / "none.png").exists()
