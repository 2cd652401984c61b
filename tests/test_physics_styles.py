"""Style randomisation of the procedural physics videos (data/physics_styles.py): the look changes, the physics
does not; quadruplets stay exact IntPhys constructions in every style; the held-out family never reaches training;
the plain look is the look from before styles existed."""

import hashlib

import numpy as np
import pytest

from openjepa.data import physics, physics_styles
from openjepa.data.physics import PROPERTIES, TEST_SEED, make_quadruplet, occlusion_video, train_video, train_videos
from openjepa.data.physics_styles import FAMILIES, draw_style


def _digest(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()[:16]


def test_plain_style_is_the_look_from_before_styles():
    """Digests of videos rendered by the generator before physics_styles existed (commit 61deaf5): the default
    (plain) look, hence every existing preset's data and the bench's test set, are byte-identical."""
    got = {
        "train": _digest(np.stack([train_video(s, T=16)[0] for s in (0, 1, 5)])),
        "occ": _digest(np.stack([occlusion_video(s, T=16)[0] for s in (0, 1, 5)])),
        "tv": _digest(train_videos(6, T=16, size=32, channels=3, seed=3, occlusion=0.7,
                                   kinds=(0.3, 0.2, 0.2, 0.25, 0.05), style="plain")),
        "grey64": _digest(train_videos(3, T=8, size=64, channels=1, seed=40, occlusion=0.5)),
        "quads": _digest(np.stack([np.stack([*q.possible, *q.impossible])
                                   for q in physics.test_quadruplets(1, T=32, style="plain")])),
    }
    assert got == {"train": "e52e0f26653b8315", "occ": "dcacfb6bdf5d3137", "tv": "b1d975a320e8b50f",
                   "grey64": "4b9f2c01519e8482", "quads": "d68147126647c197"}


@pytest.mark.parametrize("style", ["train", "heldout"])
def test_same_seed_same_trajectories_in_every_style(style):
    changed = 0
    for seed in range(12):
        for make in (train_video, occlusion_video):
            f0, pos0, vel0 = make(seed, T=16)
            f1, pos1, vel1 = make(seed, T=16, style=style)
            assert np.array_equal(pos0, pos1) and np.array_equal(vel0, vel1)  # bit-for-bit: the same physics
            changed += not np.array_equal(f0, f1)
            assert np.array_equal(f1, make(seed, T=16, style=style)[0])  # and a style is a function of the seed
    assert changed == 24  # while every video looks different


@pytest.mark.parametrize("style", ["train", "heldout"])
@pytest.mark.parametrize("prop", PROPERTIES)
def test_styled_quadruplet_frames_all_occur_in_possible_videos(prop, style):
    noisy = 0
    for seed in (TEST_SEED, TEST_SEED + 1):
        q = make_quadruplet(prop, seed, T=32, size=32, channels=3, style=style)
        A, B = q.possible
        assert not np.array_equal(A, make_quadruplet(prop, seed).possible[0])  # the style shows
        for imp in q.impossible:
            assert not np.array_equal(imp, A) and not np.array_equal(imp, B)
            for t in range(imp.shape[0]):  # every frame is a frame of A or of B at the same time index
                assert np.array_equal(imp[t], A[t]) or np.array_equal(imp[t], B[t])
        assert q.splice <= q.violation < A.shape[0]
        look = draw_style(style, (seed, PROPERTIES.index(prop)), "test")
        noisy += look.noise != "none"
    if style == "heldout":
        assert noisy == 2  # every held-out scene has camera noise, and the splices are still exact


def test_the_two_families_share_no_choice():
    for element, train_ids in FAMILIES["train"].items():
        assert not set(train_ids) & set(FAMILIES["heldout"][element]), element
    (lo, hi), (hlo, hhi) = physics_styles.CONTRAST["train"], physics_styles.CONTRAST["heldout"]
    assert hhi < lo or hlo > hi


def test_heldout_styles_never_appear_in_training_draws(monkeypatch):
    drawn = []

    def recording(family, key, split="train"):
        look = draw_style(family, key, split)
        drawn.append((family, look))
        return look

    monkeypatch.setattr(physics_styles, "draw_style", recording)
    train_videos(80, T=10, size=16, channels=1, seed=100, occlusion=0.5, style="train")
    assert len(drawn) == 80 and {f for f, _ in drawn} == {"train"}
    heldout = {e: set(ids) for e, ids in FAMILIES["heldout"].items()}
    seen = {e: set() for e in FAMILIES["train"]}
    for _, look in drawn:
        for element, ids in look.ids().items():
            assert not set(ids) & heldout[element], (element, ids)
            seen[element] |= set(ids)
        assert look.contrast >= physics_styles.CONTRAST["train"][0]
    # the training family's variety is drawn (80 scenes cover every choice of every element)
    assert seen == {e: set(ids) for e, ids in FAMILIES["train"].items()}
    with pytest.raises(ValueError, match="heldout"):
        train_videos(2, T=4, style="heldout")


def test_config_switch_plain_or_random():
    from openjepa.config import ConfigError, build_config
    from openjepa.train.run import physics_videos

    base = ["--train.method=vjepa", "--data.dataset=physics", "--data.img_size=16", "--model.patch_size=4",
            "--video.physics_videos=3", "--video.frames=8", "--video.context_frames=4", "--video.physics_frames=8"]
    plain, rnd = (physics_videos(build_config({}, base + [f"--video.physics_style={s}"]))[0] for s in ("plain",
                                                                                                     "random"))
    assert np.array_equal(plain.numpy(), physics_videos(build_config({}, base))[0].numpy())  # plain: the default
    assert np.array_equal(rnd.numpy(), train_videos(3, T=8, size=16, channels=1, style="train"))
    with pytest.raises(ConfigError, match="video.physics_style"):
        build_config({}, base + ["--video.physics_style=heldout"])


@pytest.mark.parametrize("style", ["train", "heldout"])
def test_styles_render_at_any_size_and_in_grey(style):
    f32 = train_video(3, T=4, size=32, style=style)[0]
    f64 = train_video(3, T=4, size=64, channels=1, style=style)[0]
    assert f32.shape == (4, 32, 32, 3) and f64.shape == (4, 64, 64, 1) and f64.dtype == np.uint8


def test_every_shape_rests_where_the_disc_does():
    """A shape's lowest inside point is at -e (it touches the floor as the disc of radius e does) and it fits the
    collision circle's height."""
    y = np.linspace(-2, 2, 4001)
    for shape in ("disc", "square", "triangle", "ring", "diamond", "plus"):
        inside = physics_styles.shape_sdf(shape, np.zeros_like(y), y, 1.0) <= 0
        assert y[inside].min() == pytest.approx(-1.0, abs=2e-3) and y[inside].max() <= 1.0 + 2e-3, shape
