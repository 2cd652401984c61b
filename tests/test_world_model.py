"""Action-conditioned world model: predictor shapes and frame causality, the method's losses, training on
collected trajectories with the one loop."""

import pytest
import torch

from openjepa.config import ConfigError, build_config
from openjepa.methods import METHODS
from openjepa.models.action_predictor import PREDICTORS

TINY = ["--train.method=world_model", "--model.encoder=cnn", "--data.img_size=65", "--model.dim=32",
        "--model.heads=4", "--model.depth=4", "--model.pred_dim=32", "--model.pred_depth=2", "--model.pred_heads=4",
        "--world.frames=6", "--world.rollout=3", "--train.precision=fp32"]
VARIANTS = {"gru": ["--world.predictor=gru"], "transformer_adaln": ["--world.predictor=transformer", "--world.cond=adaln"],
            "transformer_tokens": ["--world.predictor=transformer", "--world.cond=tokens"]}


def make_predictor(kind, cond="adaln"):
    return PREDICTORS[kind](16, 2, pred_dim=32, depth=2, heads=4, max_frames=8, cond=cond)


@pytest.mark.parametrize("kind, cond", [("gru", "adaln"), ("transformer", "adaln"), ("transformer", "tokens")])
def test_predictor_shapes_and_frame_causality(kind, cond):
    torch.manual_seed(0)
    p = make_predictor(kind, cond)
    for prm in p.parameters():  # break adaLN-Zero's identity start so that every path carries signal
        prm.data.add_(0.05 * torch.randn_like(prm))
    s, a = torch.randn(3, 8, 16), torch.randn(3, 8, 2)
    out = p(s, a)
    assert out.shape == (3, 8, 16)
    t = 4
    s2, a2 = s.clone(), a.clone()
    s2[:, t + 1:] += torch.randn_like(s2[:, t + 1:])
    a2[:, t + 1:] += torch.randn_like(a2[:, t + 1:])
    out2 = p(s2, a2)
    assert torch.allclose(out[:, :t + 1], out2[:, :t + 1], atol=1e-6)  # predictions <= t ignore the future
    assert not torch.allclose(out[:, t + 1:], out2[:, t + 1:], atol=1e-4)
    a3 = a.clone()
    a3[:, t] += 1.0
    assert not torch.allclose(p(s, a3)[:, t], out[:, t], atol=1e-5)  # the action at t matters for s_{t+1}
    roll = p.rollout(s[:, 0], a)
    assert roll.shape == (3, 8, 16)
    assert torch.allclose(roll[:, 0], out[:, 0], atol=1e-5)  # the first open-loop step is the teacher-forced one
    # longer than the training window: the transformer slides its window
    assert p.rollout(s[:, 0], torch.randn(3, 12, 2)).shape == (3, 12, 16)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_world_model_learns_in_five_steps(variant, five_steps):
    cfg = build_config({}, TINY + VARIANTS[variant] + ["--reg.ema=false", "--reg.kind=vicreg"])
    method = METHODS["world_model"](cfg)
    x = method.example_input(cfg, 8, torch.Generator().manual_seed(0))
    losses, logs = five_steps(method, x)
    assert all(torch.isfinite(torch.tensor(losses))) and losses[-1] < losses[0], losses
    assert {"pred_tf", "pred_rollout", "idm", "reg_var", "reg_cov"} <= set(logs)


@pytest.mark.parametrize("mech", [["--reg.ema=true", "--reg.kind=none"], ["--reg.ema=false", "--reg.kind=sigreg"],
                                  ["--reg.ema=false", "--reg.kind=vicreg", "--world.smooth_weight=0.1"]])
def test_anti_collapse_recipes_run(mech, five_steps):
    cfg = build_config({}, TINY + mech)
    method = METHODS["world_model"](cfg)
    losses, logs = five_steps(method, method.example_input(cfg, 8, torch.Generator().manual_seed(1)))
    assert all(torch.isfinite(torch.tensor(losses)))
    if cfg.reg.ema:
        assert "ema" not in logs or True
        assert all(p.grad is None for p in method.target_encoder.parameters())
    if "sigreg" in cfg.reg.kind:
        assert "reg_sigreg" in logs
    if cfg.world.smooth_weight:
        assert "smooth" in logs


def test_collate_cuts_aligned_windows():
    cfg = build_config({}, TINY)
    method = METHODS["world_model"](cfg)
    L = 10  # episode of 10 frames; frame t of episode n has value n * 100 + t everywhere
    obs = (torch.arange(4)[:, None] * 100 + torch.arange(L)[None]).float()[:, :, None, None, None].expand(4, L, 1, 65, 65)
    a = (torch.arange(4)[:, None] * 100 + torch.arange(L - 1)[None]).float()[..., None].expand(4, L - 1, 2)
    b = method.collate({"obs": obs, "a": a}, torch.Generator().manual_seed(0))
    assert b["obs"].shape == (4, 6, 1, 65, 65) and b["a"].shape == (4, 5, 2)
    first = b["obs"][:, :, 0, 0, 0]
    assert torch.equal(first[:, 1:] - first[:, :-1], torch.ones(4, 5))  # consecutive frames
    assert torch.equal(b["a"][..., 0], first[:, :-1])  # a[t] belongs to obs[t]
    with pytest.raises(ValueError, match="trajectories"):
        method.collate(torch.zeros(4, 1, 65, 65), torch.Generator())


def test_collate_with_frameskip_strides_frames_and_concatenates_actions():
    k = 3
    method = METHODS["world_model"](build_config({}, TINY + [f"--world.frameskip={k}"]))
    L = 20  # (6 - 1) * 3 + 1 = 16 env frames per window
    obs = (torch.arange(4)[:, None] * 100 + torch.arange(L)[None]).float()[:, :, None, None, None].expand(4, L, 1, 65, 65)
    a = torch.stack([(torch.arange(4)[:, None] * 100 + torch.arange(L - 1)[None]).float(), -torch.ones(4, L - 1)], -1)
    b = method.collate({"obs": obs, "a": a}, torch.Generator().manual_seed(0))
    assert b["obs"].shape == (4, 6, 1, 65, 65) and b["a"].shape == (4, 5, 2 * k)
    first = b["obs"][:, :, 0, 0, 0]  # (4, 6) env frame numbers
    assert torch.equal(first[:, 1:] - first[:, :-1], torch.full((4, 5), float(k)))  # every k-th frame
    # model action t = the k env actions from frame t to frame t + 1, (x, y) pairs in order
    assert torch.equal(b["a"][..., 0::2], first[:, :-1, None] + torch.arange(k))
    assert torch.equal(b["a"][..., 1::2], -torch.ones(4, 5, k))
    loss, _ = method.step(b | {"obs": torch.randn(4, 6, 1, 65, 65)})
    assert torch.isfinite(loss)
    with pytest.raises(ValueError, match="frameskip"):  # episodes shorter than one window
        method.collate({"obs": obs[:, :15], "a": a[:, :14]}, torch.Generator())
    # planning: a held action (B, H, 2) is the model action of k equal env actions
    s0, held = torch.randn(2, 32), torch.randn(2, 4, 2)
    assert method.action_repeat == k
    tiled = held.repeat_interleave(k, 1).reshape(2, 4, 2 * k)  # (B, H, k*A): k copies of each action
    assert torch.allclose(method.imagine(s0, held), method.predictor.rollout(s0, tiled))


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="world.frameskip"):
        build_config({}, TINY + ["--world.frameskip=0"])
    with pytest.raises(ConfigError, match="world.rollout"):
        build_config({}, TINY + ["--world.rollout=6"])
    with pytest.raises(ConfigError, match="world.predictor"):
        build_config({}, TINY + ["--world.predictor=lstm"])


def test_trains_on_collected_data_with_the_loop(tmp_path):
    from openjepa.data.trajectories import collect
    from openjepa.train.loop import train

    data = collect("two_rooms", episodes=40, steps=6, out=tmp_path / "d", seed=0, progress=False)
    cfg = build_config({}, TINY + [f"--data.dataset=trajectories", f"--data.path={data}", "--data.batch_size=8",
                                   "--train.steps=4", "--train.monitor_every=4", "--train.monitor_samples=16",
                                   "--train.progress=false", "--reg.ema=false", "--reg.kind=vicreg"])
    summary = train(cfg, tmp_path / "run", log=lambda *a: None)
    assert summary["finished"] and (tmp_path / "run" / "checkpoints" / "last.pt").is_file()
    bad = build_config({}, TINY + [f"--data.dataset=trajectories", f"--data.path={data}", "--data.img_size=64"])
    with pytest.raises(ValueError, match="data.img_size=65"):
        train(bad, tmp_path / "run2", log=lambda *a: None)


@pytest.mark.parametrize("preset", ["world_model_two_rooms", "world_model_four_rooms"])
def test_presets_load(preset):
    from openjepa.config import load_config
    from openjepa.train.run import find_preset

    cfg = load_config(find_preset(preset))
    assert cfg.train.method == "world_model" and cfg.data.dataset == "trajectories" and cfg.model.encoder == "cnn"
    assert cfg.world.rollout == cfg.world.frames - 1


def test_latent_map_encoder_and_conv_predictor_are_translation_equivariant():
    """The conv predictor applies one local rule everywhere: shifting the input map by whole cells (and keeping
    clear of the map's edges) shifts its prediction the same way, which is why it transfers to unseen layouts."""
    from openjepa.models.cnn import ConvMapEncoder

    torch.manual_seed(0)
    enc = ConvMapEncoder(img_size=65, dim=4, depth=2)
    assert enc.map_shape == (4, 16, 16) and enc(torch.randn(2, 1, 65, 65)).shape == (2, 256, 4)
    p = PREDICTORS["conv"](4 * 16 * 16, 2, pred_dim=8, depth=2, map_shape=(4, 16, 16))
    for prm in p.parameters():  # leave the zero-initialised output layer: every path must carry signal
        prm.data.add_(0.1 * torch.randn_like(prm))
    m = torch.zeros(1, 4, 16, 16)
    m[..., 5:8, 5:8] = torch.randn(1, 4, 3, 3)  # a blob well inside the map
    a = torch.tensor([[[0.5, -1.0]]])  # (B, T, A)
    out = p(m.flatten(1)[:, None], a).view(1, 4, 16, 16)
    shifted = p(torch.roll(m, (3, 2), (2, 3)).flatten(1)[:, None], a).view(1, 4, 16, 16)
    inner = (..., slice(5, 14), slice(4, 14))  # cells >= depth away from the edges, before and after the shift
    assert torch.allclose(torch.roll(out, (3, 2), (2, 3))[inner], shifted[inner], atol=1e-5)
    assert not torch.allclose(out, p(m.flatten(1)[:, None], -a).view(1, 4, 16, 16), atol=1e-4)  # actions matter
    assert p.rollout(m.flatten(1), a.repeat(1, 3, 1)).shape == (1, 3, 256 * 4)
    with pytest.raises(ValueError, match="map_shape"):
        PREDICTORS["conv"](64, 2, map_shape=None)


def test_latent_map_world_model_needs_its_pair_and_trains(tmp_path):
    from openjepa.data.trajectories import collect
    from openjepa.train.loop import train
    from openjepa.validate import check_config

    MAP = ["--train.method=world_model", "--model.encoder=cnn_map", "--data.img_size=65", "--model.dim=4",
           "--model.depth=2", "--model.pred_dim=8", "--model.pred_depth=2", "--world.predictor=conv",
           "--world.frames=4", "--world.rollout=3", "--train.precision=fp32", "--reg.ema=false", "--reg.kind=vicreg",
           "--data.dataset=trajectories", "--data.path=unused"]
    with pytest.raises(ConfigError, match="cnn_map"):
        check_config(build_config({}, [a for a in MAP if a != "--world.predictor=conv"]))
    data = collect("two_rooms", episodes=12, steps=4, out=tmp_path / "d", seed=0, progress=False,
                   env_kwargs={"layout": "train"})
    cfg = build_config({}, MAP + [f"--data.path={data}", "--data.batch_size=4",
                                  "--train.steps=3", "--train.monitor_every=0", "--train.progress=false"])
    check_config(cfg)
    summary = train(cfg, tmp_path / "run", log=lambda *a: None)
    assert summary["finished"]
    from openjepa.planning.run import load_world_model

    model, _ = load_world_model(tmp_path / "run")
    s = model.encode_state(torch.zeros(2, 1, 65, 65))
    assert s.shape == (2, 4 * 16 * 16) and model.imagine(s, torch.zeros(2, 5, 2)).shape == (2, 5, 4 * 16 * 16)


def test_layout_general_preset_trains_five_steps_on_random_layouts(tmp_path, one_thread):
    from openjepa.config import load_config
    from openjepa.data.trajectories import collect
    from openjepa.train.loop import train
    from openjepa.train.run import find_preset
    from openjepa.validate import check_config

    data = collect("two_rooms", episodes=8, steps=80, out=tmp_path / "d", seed=0, progress=False,
                   env_kwargs={"layout": "train"})
    cfg = load_config(find_preset("world_model_two_rooms_any"),
                      [f"--data.path={data}", "--data.batch_size=4", "--train.steps=5", "--train.monitor_every=0",
                       "--train.progress=false", "--train.precision=fp32"])
    check_config(cfg)
    assert cfg.model.encoder == "cnn_map" and cfg.world.predictor == "conv" and cfg.world.center_reg
    summary = train(cfg, tmp_path / "run", log=lambda *a: None)
    assert summary["finished"] and (tmp_path / "run" / "checkpoints" / "last.pt").is_file()
