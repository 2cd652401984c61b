"""`openjepa bench input`: how fast the streaming input pipeline (data/streaming/) decodes and augments images,
how much memory it holds, and how many CPU workers feed one GPU.

It generates its own JPEG tree (nothing downloaded): `images` files in `classes` class folders, sides drawn in
[256, 500] px, smooth colour fields plus texture and pixel noise saved at JPEG quality 90 (a few tens of kB each,
so decoding costs what a photo of that size costs), cached under the workdir and reused by later runs. Rows
(each has `measure` and a unique `name`):
- `pil_decode`: `Image.open(f).convert("RGB")` of the very files the next row decoded, in one process;
- `streaming`: StreamingSource batches (random-resized crop to 224 px, scale (0.3, 1.0), the I-JEPA presets'
  augmentation) through the real DataLoader path with `workers` = 0 (the per-worker cost, in the main process),
  1, 2, 4, ... up to os.cpu_count(): total samples/s, and per worker;
- `peak_rss`: peak resident memory of a fresh process iterating `rss_batches` batches with `rss_workers` workers
  over the full tree and over a `small_images` tree (getrusage maxrss of the process and of its largest worker;
  `peak_rss_total_mb` = main + workers x largest worker, an upper bound since forked workers share pages);
- `gpu_feed`: per GPU row of benchmarks/results/throughput_gpu.json, the training step's samples/s and the
  workers one such GPU needs at the measured per-worker rate at that row's image size and channels:
  ceil(gpu samples/s / per-worker samples/s).
`summary` holds the issue's targets: pipeline_overhead = plain decode rate / per-worker rate at 224 px (target
<= 1.3), rss_ratio = full-tree / small-tree peak_rss_total_mb (target <= 1.5), workers_per_gpu.
Timings are the best of `repeats` passes over files already in the page cache; run it on an idle machine.
"""

from __future__ import annotations

import json
import math
import os
import resource
import shutil
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from openjepa.data.streaming import ImageDecoder, StreamingSource, index_image_folder
from openjepa.train.run import provenance

TREE_VERSION = 1  # bump when the generated images change, so cached trees are rebuilt
SIZE, CROP_SCALE, SEED = 224, (0.3, 1.0), 0
DEFAULT_THROUGHPUT = Path(__file__).resolve().parents[3] / "benchmarks" / "results" / "throughput_gpu.json"
TARGETS = {"pipeline_overhead": 1.3, "rss_ratio": 1.5}


@dataclass(frozen=True)
class Budget:
    images: int                # the generated tree
    classes: int
    small_images: int          # the tree the RSS of the full one is compared with
    batch_size: int
    batches_per_worker: int    # each timed pass gives every worker this many batches
    rss_batches: int           # batches the RSS probes iterate
    rss_workers: int
    max_workers: int | None    # at most os.cpu_count() (None: all of them); 1 and 2 are always measured
    repeats: int               # timed passes per measurement; the best counts


FULL = Budget(images=20000, classes=100, small_images=1000, batch_size=64, batches_per_worker=16, rss_batches=100,
              rss_workers=4, max_workers=None, repeats=2)
QUICK = Budget(images=400, classes=10, small_images=100, batch_size=16, batches_per_worker=4, rss_batches=10,
               rss_workers=2, max_workers=4, repeats=1)


# --------------------------------------------------------------------------- #
# the generated JPEG tree
# --------------------------------------------------------------------------- #


def synthetic_jpeg(seed: int, i: int, path: Path) -> None:
    """Image i of the tree: a smooth colour field (5x5 bicubic), a texture (1/8 scale bilinear) and pixel noise,
    so the JPEG holds what a photo of that size holds instead of flat colour (cheap) or white noise (dear)."""
    rng = np.random.default_rng([seed, i])
    w, h = (int(v) for v in rng.integers(256, 501, 2))
    field = Image.fromarray(rng.integers(0, 256, (5, 5, 3), dtype=np.uint8)).resize((w, h), Image.BICUBIC)
    texture = Image.fromarray(rng.integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8)).resize((w, h),
                                                                                                Image.BILINEAR)
    a = 0.6 * np.asarray(field, dtype=np.float32) + 0.4 * np.asarray(texture, dtype=np.float32)
    a += rng.integers(-32, 33, (h, w, 3)).astype(np.float32)
    Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(path, format="JPEG", quality=90)


def _tree_file(root: Path, i: int, classes: int) -> Path:
    return root / f"c{i % classes:03d}" / f"img_{i:06d}.jpg"


def _write_chunk(root: Path, lo: int, hi: int, classes: int, seed: int) -> None:
    for i in range(lo, hi):
        synthetic_jpeg(seed, i, _tree_file(root, i, classes))


def _cached(root: Path, spec: dict[str, Any]) -> bool:
    marker = root.with_name(root.name + ".json")
    try:
        return json.loads(marker.read_text()) == spec
    except (OSError, ValueError):
        return False


def _mark(root: Path, spec: dict[str, Any]) -> None:
    root.with_name(root.name + ".json").write_text(json.dumps(spec) + "\n")


def make_tree(workdir: Path, images: int, classes: int, seed: int = SEED) -> Path:
    """The tree of `images` generated JPEGs under workdir (reused when an identical one is there)."""
    spec = {"images": images, "classes": classes, "seed": seed, "version": TREE_VERSION}
    root = Path(workdir) / f"input_tree_{images}x{classes}_s{seed}"
    if _cached(root, spec):
        return root
    if root.exists():  # half written, or from another generator version
        shutil.rmtree(root)
    for c in range(min(classes, images)):
        (root / f"c{c:03d}").mkdir(parents=True)
    print(f"== bench input: generating {images} JPEGs under {root} (once; later runs reuse them)", flush=True)
    chunk = 250
    jobs = [(lo, min(lo + chunk, images)) for lo in range(0, images, chunk)]
    procs = min(os.cpu_count() or 1, len(jobs), 16)
    if procs > 1:
        with ProcessPoolExecutor(procs) as pool:
            for f in [pool.submit(_write_chunk, root, lo, hi, classes, seed) for lo, hi in jobs]:
                f.result()
    else:
        for lo, hi in jobs:
            _write_chunk(root, lo, hi, classes, seed)
    _mark(root, spec)
    return root


def subset_tree(workdir: Path, big: Path, images: int, classes: int, seed: int = SEED) -> Path:
    """A tree of the first `images` files of `big` (hard links where the file system allows, else copies)."""
    spec = {"images": images, "classes": classes, "seed": seed, "version": TREE_VERSION, "of": big.name}
    root = Path(workdir) / f"input_tree_{images}x{classes}_s{seed}_subset"
    if _cached(root, spec):
        return root
    if root.exists():
        shutil.rmtree(root)
    for i in range(images):
        src, dst = _tree_file(big, i, classes), _tree_file(root, i, classes)
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(src, dst)
        except OSError:
            shutil.copyfile(src, dst)
    _mark(root, spec)
    return root


# --------------------------------------------------------------------------- #
# measurements
# --------------------------------------------------------------------------- #


def plain_decode_seconds(paths: list[Path]) -> float:
    """Seconds to open and fully decode `paths` to RGB with PIL, one after the other."""
    t0 = time.perf_counter()
    for p in paths:
        with Image.open(p) as im:
            im.convert("RGB")
    return time.perf_counter() - t0


def streaming_pass(records, decoder: ImageDecoder, batch_size: int, workers: int, batches: int
                   ) -> tuple[float, int, list[int]]:
    """(seconds, samples, sample indices) of `batches` batches through StreamingSource's DataLoader path, worker
    start-up included (a training run pays it too; a pass is long enough for it to matter little). workers=0
    decodes in this process: the cost of one worker."""
    source = StreamingSource(records, decoder, batch_size, SEED, workers=workers)
    threads = torch.get_num_threads()
    if workers == 0:  # run as a DataLoader worker does, on one torch thread: with several, the collate's
        torch.set_num_threads(1)  # torch.stack can wait ~0.2 s a batch for busy cores (seen on a loaded 2-core box)
    try:
        t0 = time.perf_counter()
        seen: list[int] = []
        for b in source.batches(0, batches):
            seen += b["index"].tolist()
        return time.perf_counter() - t0, len(seen), seen
    finally:
        torch.set_num_threads(threads)


def worker_counts(max_workers: int) -> list[int]:
    """1, 2, 4, 8, ... up to max_workers, plus max_workers itself; always 1 and 2."""
    counts = {1, 2, max(max_workers, 2)}
    k = 4
    while k <= max_workers:
        counts.add(k)
        k *= 2
    return sorted(counts)


def rss_probe(root: str, index_dir: str, batch_size: int, batches: int, workers: int) -> dict[str, float]:
    """Run in a fresh process (the high-water mark covers its whole life): index `root`, iterate `batches`
    batches with `workers` workers, and return the peak RSS of the process and of its largest (finished) worker,
    in MB."""
    records = index_image_folder(root, index_dir=index_dir)
    source = StreamingSource(records, ImageDecoder(SIZE, 3, crop_scale=CROP_SCALE), batch_size, SEED,
                             workers=workers)
    for _ in source.batches(0, batches):
        pass  # the iterator ends, so the workers are joined and their usage counts as the children's
    unit = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    main = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * unit / 2**20
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * unit / 2**20
    return {"peak_rss_mb": round(main, 1), "peak_rss_worker_mb": round(child, 1),
            "peak_rss_total_mb": round(main + workers * child, 1)}


def _run_rss_probe(root: Path, index_dir: Path, batch_size: int, batches: int, workers: int) -> dict[str, float]:
    code = ("import json, sys; from openjepa.bench.input import rss_probe; "
            "print(json.dumps(rss_probe(*sys.argv[1:3], *map(int, sys.argv[3:]))))")
    pkg_parent = str(Path(__file__).resolve().parents[2])  # so the child imports this very openjepa
    path = [pkg_parent] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    out = subprocess.run([sys.executable, "-c", code, str(root), str(index_dir), str(batch_size), str(batches),
                          str(workers)], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"bench input: the RSS probe over {root} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def gpu_rows(path: Path | None) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The GPU rows of a `bench throughput` result: [{config, gpu, gpu_samples_per_s, img_size, channels}] and
    the file's provenance; ([], None) when there is no such file."""
    if path is None or not Path(path).is_file():
        return [], None
    result = json.loads(Path(path).read_text())
    gpu = result.get("machine", "")
    gpu = gpu.split("GPU ", 1)[1] if "GPU " in gpu else gpu
    out = []
    for r in result["rows"]:
        if r.get("device") != "cuda":
            continue
        cfg = result.get("configs", {}).get(f"{r['config']}/{r.get('dtype', '')}") or next(
            (c for k, c in result.get("configs", {}).items() if k.split("/")[0] == r["config"]), {})
        data = cfg.get("data", {})
        out.append({"config": r["config"], "gpu": gpu, "gpu_samples_per_s": float(r["samples_per_s"]),
                    "img_size": int(data.get("img_size", SIZE)), "channels": int(data.get("channels", 3))})
    return out, {"file": str(path), "git_sha": result.get("git_sha"), "machine": result.get("machine")}


def run_input(quick: bool, workdir: Path, overrides: list[str], out: Path, budget: Budget | None = None,
              throughput_file: Path | None = DEFAULT_THROUGHPUT) -> dict[str, Any]:
    """The suite (see the module docstring); `budget` replaces FULL/QUICK (tests), `throughput_file` the GPU
    result the workers-per-GPU estimate reads (None: no estimate)."""
    if overrides:
        raise ValueError(f"bench input takes no config overrides, got {' '.join(overrides)}")
    b = budget or (QUICK if quick else FULL)
    cpus = os.cpu_count() or 1
    max_workers = min(b.max_workers or cpus, cpus)  # more workers than cores measures the scheduler
    meta = provenance()
    workdir = Path(workdir)
    index_dir = workdir / "input_index"
    big = make_tree(workdir, b.images, b.classes)
    small = subset_tree(workdir, big, b.small_images, b.classes)
    records = index_image_folder(big, index_dir=index_dir)
    index_image_folder(small, index_dir=index_dir)  # built here, so the RSS probe only loads it
    sizes = [records.source(i).stat().st_size for i in range(len(records))]
    for i in range(len(records)):  # into the page cache: every pass then reads from memory, as the first would not
        records.source(i).read_bytes()

    rows: list[dict[str, Any]] = []
    B = b.batch_size

    def per_worker(img_size: int, channels: int) -> dict[str, Any]:
        """The workers=0 streaming row at this size, then (at 224 px RGB) the plain decode row of its files."""
        dec = ImageDecoder(img_size, channels, crop_scale=CROP_SCALE)
        streaming_pass(records, dec, B, 0, 1)  # untimed: first-call costs (lazy imports, allocator) stay out
        best_s = best_p = math.inf
        for _ in range(b.repeats):
            secs, n, seen = streaming_pass(records, dec, B, 0, b.batches_per_worker)
            best_s = min(best_s, secs)
            if (img_size, channels) == (SIZE, 3):
                best_p = min(best_p, plain_decode_seconds([records.source(i) for i in seen]))
        row = {"measure": "streaming", "name": f"streaming_{img_size}px_c{channels}_0w", "workers": 0,
               "img_size": img_size, "channels": channels, "batch_size": B, "samples": n,
               "seconds": round(best_s, 4), "samples_per_s": round(n / best_s, 1),
               "per_worker_samples_per_s": round(n / best_s, 1)}
        rows.append(row)
        if best_p < math.inf:
            rows.append({"measure": "pil_decode", "name": "pil_decode", "images": n, "seconds": round(best_p, 4),
                         "samples_per_s": round(n / best_p, 1)})
        return row

    print(f"== bench input: {len(records)} images, batch {B}, {SIZE} px; per-worker rate (workers=0)", flush=True)
    base = per_worker(SIZE, 3)
    for k in worker_counts(max_workers):
        print(f"== bench input: {k} worker(s)", flush=True)
        dec = ImageDecoder(SIZE, 3, crop_scale=CROP_SCALE)
        best = math.inf
        for _ in range(b.repeats):
            secs, n, _ = streaming_pass(records, dec, B, k, b.batches_per_worker * k)
            best = min(best, secs)
        rows.append({"measure": "streaming", "name": f"streaming_{SIZE}px_c3_{k}w", "workers": k, "img_size": SIZE,
                     "channels": 3, "batch_size": B, "samples": n, "seconds": round(best, 4),
                     "samples_per_s": round(n / best, 1), "per_worker_samples_per_s": round(n / best / k, 1)})

    rss = {}
    for label, root, n_images in (("full", big, b.images), ("small", small, b.small_images)):
        print(f"== bench input: peak RSS over {n_images} images ({b.rss_batches} batches, {b.rss_workers} workers)",
              flush=True)
        rss[label] = _run_rss_probe(root, index_dir, B, b.rss_batches, b.rss_workers)
        rows.append({"measure": "peak_rss", "name": f"peak_rss_{n_images}", "images": n_images,
                     "workers": b.rss_workers, "batch_size": B, "batches": b.rss_batches, **rss[label]})

    gpus, gpu_source = gpu_rows(throughput_file)
    rates = {(SIZE, 3): base["per_worker_samples_per_s"]}
    workers_per_gpu = {}
    for g in gpus:
        key = (g["img_size"], g["channels"])
        if key not in rates:
            print(f"== bench input: per-worker rate at {key[0]} px, {key[1]} channel(s) (for {g['config']})",
                  flush=True)
            rates[key] = per_worker(*key)["per_worker_samples_per_s"]
        need = math.ceil(g["gpu_samples_per_s"] / rates[key])
        workers_per_gpu[g["config"]] = need
        rows.append({"measure": "gpu_feed", "name": f"gpu_feed_{g['config']}", **g,
                     "per_worker_samples_per_s": rates[key], "workers_needed": need})

    plain = next(r for r in rows if r["measure"] == "pil_decode")["samples_per_s"]
    overhead = round(plain / base["per_worker_samples_per_s"], 3)
    rss_ratio = round(rss["full"]["peak_rss_total_mb"] / rss["small"]["peak_rss_total_mb"], 3)
    summary = {"cpu_count": cpus, "pipeline_overhead": overhead,
               "pipeline_overhead_ok": overhead <= TARGETS["pipeline_overhead"],
               "rss_ratio": rss_ratio, "rss_ratio_ok": rss_ratio <= TARGETS["rss_ratio"],
               "workers_per_gpu": workers_per_gpu, "targets": TARGETS,
               "tree": {"path": str(big), "images": b.images, "classes": b.classes,
                        "mean_kb": round(float(np.mean(sizes)) / 1e3, 1)}}
    return {"suite": "input", "quick": quick, "git_sha": meta["git_sha"], "machine": meta["machine"],
            "versions": meta["versions"], "created": meta["created"],
            "configs": {"budget": asdict(b), "img_size": SIZE, "crop_scale": list(CROP_SCALE), "seed": SEED,
                        "gpu_throughput": gpu_source},
            "summary": summary, "rows": rows}
