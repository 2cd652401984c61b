"""Benchmark suites run by `openjepa bench SUITE`. Each returns {"suite", "git_sha", "machine", "config", "rows"}."""

from openjepa.bench.images import run_images

SUITES = {
    "images": run_images,
}
