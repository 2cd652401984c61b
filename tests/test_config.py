import pytest

from openjepa.config import ConfigError, build_config, config_to_yaml, load_config
from openjepa.train.run import find_preset
from openjepa.validate import check_config, resolve_config


def test_defaults_and_presets_load():
    cfg = build_config({})
    assert cfg.train.method == "ijepa"
    for name in ("smoke", "ijepa_vit_cpu", "ijepa_vit_gpu"):
        assert load_config(find_preset(name)).data.img_size % load_config(find_preset(name)).model.patch_size == 0


def test_unknown_key_is_named_with_suggestion():
    with pytest.raises(ConfigError, match=r"train\.stpes.*did you mean 'steps'"):
        build_config({"train": {"stpes": 10}})


def test_unknown_section_is_named_with_suggestion():
    with pytest.raises(ConfigError, match=r"'optimm'.*did you mean 'optim'"):
        build_config({"optimm": {"lr": 1.0}})


def test_override_typo_is_named():
    with pytest.raises(ConfigError, match=r"model\.dimm.*did you mean 'dim'"):
        build_config({}, ["--model.dimm=32"])


@pytest.mark.parametrize("override, key", [
    ("--train.steps=abc", "train.steps"),
    ("--train.steps=1.5", "train.steps"),
    ("--optim.lr=fast", "optim.lr"),
    ("--train.precision=fp16", "train.precision"),
    ("--data.channels=2", "data.channels"),
    ("--model.heads=5", "model.heads"),
    ("--mask.target_scale=[0.5, 0.2]", "mask.target_scale"),
    ("--train.progress=maybe", "train.progress"),
    ("--model.patch_size=5", "model.patch_size"),
])
def test_bad_values_name_the_key(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        build_config({}, [override])


def test_overrides_apply_and_coerce():
    cfg = build_config({"train": {"steps": 5}}, ["--train.steps=7", "--optim.lr=0.01", "--mask.target_scale=[0.1,0.2]",
                                                  "--train.progress=false"])
    assert cfg.train.steps == 7 and cfg.optim.lr == 0.01 and cfg.mask.target_scale == (0.1, 0.2)
    assert cfg.train.progress is False


def test_malformed_override():
    with pytest.raises(ConfigError, match="section.key=value"):
        build_config({}, ["--steps"])


def test_yaml_round_trip(tmp_path):
    cfg = build_config({}, ["--train.steps=3", "--model.dim=48"])
    p = tmp_path / "c.yaml"
    p.write_text(config_to_yaml(cfg, {"git_sha": "abc"}))
    assert load_config(p) == cfg


def test_missing_file():
    with pytest.raises(FileNotFoundError):
        load_config("/nonexistent/config.yaml")


@pytest.mark.parametrize("override,key", [("--train.method=ijepaa", "train.method"),
                                          ("--data.dataset=mnist", "data.dataset"),
                                          ("--model.encoder=swin", "model.encoder")])
def test_registry_names_are_checked_by_validate(override, key):
    cfg = build_config({}, [override])  # config.py knows no registry: the name parses
    with pytest.raises(ConfigError, match="^" + key.replace(".", r"\.") + ": unknown"):
        resolve_config(cfg)


def test_ema_default_follows_the_method():
    assert build_config({}).reg.ema is None  # unresolved until the method is known
    assert resolve_config(build_config({})).reg.ema is True
    assert resolve_config(build_config({}, ["--train.method=mae"])).reg.ema is False


def test_train_refuses_a_bad_name_before_touching_anything(tmp_path, capsys):
    from openjepa.cli import main

    run = tmp_path / "run"
    assert main(["train", "smoke", "--train.method=ijepaa", "--out", str(run)]) != 0
    assert "train.method" in capsys.readouterr().err and not run.exists()


def test_every_preset_loads_and_passes_the_strict_check():
    from openjepa.train.run import CONFIG_DIR

    presets = sorted(CONFIG_DIR.glob("*.yaml"))
    assert presets
    for p in presets:
        check_config(load_config(p))
