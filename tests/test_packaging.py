"""The package as a user installs it: a wheel built from the source carries every preset, and a wheel install
runs `openjepa train smoke` from outside the clone with the presets it ships."""

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PRESETS = sorted(p.name for p in (REPO / "src" / "openjepa" / "configs").glob("*.yaml"))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """`pip wheel .` on a copy of what the build reads (pyproject, README, src/): an in-tree build would leave
    build/ and *.egg-info in the shared clone. No build isolation: setuptools comes from the venv, offline."""
    root = tmp_path_factory.mktemp("wheel")
    tree = root / "tree"
    tree.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, tree / name)
    shutil.copytree(REPO / "src", tree / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    dist = root / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(tree), "--no-deps", "--no-build-isolation",
                    "--no-index", "-q", "-w", str(dist)], check=True, capture_output=True, text=True)
    (whl,) = dist.glob("openjepa-*.whl")
    return whl


def test_presets_are_real_files_in_the_package():
    # a link would not be followed into the wheel by every backend; the top-level configs/ is the link
    pkg_dir = REPO / "src" / "openjepa" / "configs"
    assert not pkg_dir.is_symlink() and "smoke.yaml" in PRESETS
    assert all(not (pkg_dir / name).is_symlink() for name in PRESETS)
    # the clone's configs/<name>.yaml, as users and docs write it, is the same file
    assert (REPO / "configs").resolve() == pkg_dir.resolve()


def test_wheel_contains_every_preset(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [p for p in PRESETS if f"openjepa/configs/{p}" not in names]
    assert not missing, f"presets missing from {wheel.name}: {missing}"
    assert "openjepa/py.typed" in names


def test_installed_wheel_trains_smoke_from_outside_the_clone(wheel, tmp_path):
    # the wheel installed into its own folder, which PYTHONPATH puts ahead of the venv's editable install
    # (dependencies such as torch still come from the venv: a fresh venv would only re-download them)
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target",
                    str(target), str(wheel)], check=True, capture_output=True, text=True)
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target), "PYTHONDONTWRITEBYTECODE": "1"}
    where = subprocess.run(
        [sys.executable, "-c", "import json, openjepa; from openjepa.train.run import find_preset; "
         "print(json.dumps([openjepa.__file__, str(find_preset('smoke').resolve())]))"],
        cwd=cwd, env=env, check=True, capture_output=True, text=True)
    module, preset = (Path(p) for p in json.loads(where.stdout))
    assert module.is_relative_to(target) and preset.is_relative_to(target), (module, preset)
    assert not preset.is_relative_to(REPO)

    # the console script the wheel declares, as a user would type it, from a folder with no configs/
    script = target / "bin" / "openjepa"
    assert script.is_file()
    run_dir = tmp_path / "run"
    res = subprocess.run([sys.executable, str(script), "train", "smoke", "--train.steps=2", "--out", str(run_dir)],
                         cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert "finished" in res.stdout
    steps = [json.loads(line).get("step") for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert max(s for s in steps if s is not None) == 2
    assert (run_dir / "config.yaml").is_file() and not (cwd / "runs").exists()
