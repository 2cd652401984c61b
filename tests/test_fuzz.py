"""Property/fuzz tests (hypothesis): hostile configs and data give clear errors of the documented types, never
a crash of another kind, and valid inputs load."""

import dataclasses
import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from openjepa.config import SECTIONS, Config, ConfigError, build_config
from openjepa.data.image_files import load_image_folder, load_npy_images

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

KEYS = {name: [f.name for f in dataclasses.fields(cls)] for name, cls in SECTIONS.items()}
scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                    st.text(max_size=12), st.lists(st.floats(-2, 2), max_size=3))
known_key = st.sampled_from([(s, k) for s, ks in KEYS.items() for k in ks])
any_key = st.one_of(known_key, st.tuples(st.text(min_size=1, max_size=8), st.text(min_size=1, max_size=8)))


@FAST
@given(st.lists(st.tuples(any_key, scalars), max_size=6))
def test_config_loader_accepts_or_names_the_problem(entries):
    raw: dict = {}
    for (section, key), value in entries:
        raw.setdefault(section, {})[key] = value
    try:
        cfg = build_config(raw)
    except ConfigError as e:
        assert str(e)  # a message naming the key (tested precisely in test_config.py)
        return
    assert isinstance(cfg, Config)


@FAST
@given(st.lists(st.tuples(known_key, st.text(max_size=10)), max_size=4))
def test_cli_overrides_accept_or_name_the_key(pairs):
    overrides = [f"--{s}.{k}={v}" for (s, k), v in pairs]
    try:
        build_config({}, overrides)
    except ConfigError as e:
        assert any(f"{s}.{k}" in str(e) for (s, k), _ in pairs) or "override" in str(e) or "must" in str(e)


dtypes = st.sampled_from([np.uint8, np.int16, np.int64, np.float16, np.float32, np.float64, np.bool_])
shapes = st.lists(st.integers(0, 6), min_size=0, max_size=5).map(tuple)


@FAST
@given(dtypes, shapes, st.one_of(st.floats(-2, 300), st.just(float("nan"))))
def test_npy_loader_returns_images_or_raises_value_error(tmp_path_factory, dtype, shape, fill):
    path = tmp_path_factory.mktemp("npy") / "x.npy"
    arr = np.full(shape, fill if np.issubdtype(dtype, np.floating) else abs(int(fill if fill == fill else 0)) % 256)
    np.save(path, arr.astype(dtype))
    try:
        x = load_npy_images(path, size=8, channels=1)
    except ValueError as e:
        assert str(path) in str(e)
        return
    assert x.dtype.is_floating_point is False and x.shape[1:] == (1, 8, 8) and x.shape[0] == shape[0]


@FAST
@given(st.lists(st.binary(max_size=200), min_size=1, max_size=4), st.booleans())
def test_image_folder_with_random_bytes(tmp_path_factory, blobs, add_good):
    root = tmp_path_factory.mktemp("imgs")
    for i, blob in enumerate(blobs):
        (root / f"bad{i}.png").write_bytes(blob)
    if add_good:
        buf = io.BytesIO()
        Image.fromarray(np.full((10, 12), 128, np.uint8)).save(buf, format="PNG")
        (root / "good.png").write_bytes(buf.getvalue())
    with pytest.raises(ValueError, match=r"bad\d\.png"):
        load_image_folder(root, size=8, channels=1)
    if add_good:
        with pytest.warns(RuntimeWarning, match=f"{len(blobs)}"):
            x, y = load_image_folder(root, size=8, channels=1, skip_bad=True)
        assert x.shape == (1, 1, 8, 8) and y is None
    else:
        with pytest.raises(ValueError, match="unreadable"), pytest.warns(RuntimeWarning, match="skipped"):
            load_image_folder(root, size=8, channels=1, skip_bad=True)
