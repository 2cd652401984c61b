"""Benchmark suites run by `openjepa bench SUITE`: each is run(quick, workdir, overrides, out) and returns
{"suite", "git_sha", "machine", "configs", "rows", ...}; `out` is the result file (figures go beside it)."""

from openjepa.bench.collapse import run_collapse
from openjepa.bench.driving import run_driving
from openjepa.bench.images import run_images
from openjepa.bench.images_curve import run_images_curve
from openjepa.bench.images_search import run_images_search
from openjepa.bench.input import run_input
from openjepa.bench.physics import run_physics
from openjepa.bench.planning import run_planning
from openjepa.bench.throughput import run_throughput

SUITES = {
    "images": run_images,
    "images_search": run_images_search,
    "images_curve": run_images_curve,
    "collapse": run_collapse,
    "throughput": run_throughput,
    "physics": run_physics,
    "planning": run_planning,
    "input": run_input,
    "driving": run_driving,
}
