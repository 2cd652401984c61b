"""`openjepa bench physics`: the intuitive-physics suite (violation of expectation, Garrido et al. 2025),
`run_physics`: train the models, score them on the test quadruplets, probe them, draw the figures, and assemble
the result.

Models (rows' `model`): `jepa` (vjepa_physics_cpu: V-JEPA, surprise in latent space), `pixel`
(vpixel_physics_cpu: the same backbone predicting future pixels, surprise in pixel space), `untrained`
(the jepa architecture at `N_UNTRAINED` random initialisations, figures averaged; each init in `per_init`) and
`copy_last` (no learning: every predicted frame is the last context frame; scored the same way).
`jepa` and `pixel` are each an ensemble of `members` independently trained models (train.seed, train.seed + 1,
...; eval.surprise.Ensemble: each window's error is the mean of the members' errors; the bench scores each member
once and averages their tables, physics_scoring.mean_table); `train_seconds` is the members' total,
`train_wall_seconds` the model's training time by the clock (about the total with `train_jobs` = 1; members
trained at once with --jobs, physics_members), `per_member` each member's relative accuracy alone and
`per_member_quad_scores` its quadruplet scores.
Both trained models see only physically possible training videos (seeds below physics.TEST_SEED, training
ball hues); the test set is `n_quads` matched quadruplets per property (physics.test_quadruplets: test seeds,
test hues), each two possible videos and their two splices.

Styles (data/physics_styles.py): the test set is drawn in the look the models trained on (`style`: plain, or the
`train` family when the presets' video.physics_style is random). `styles=True` trains the style-randomised presets
(vjepa_physics_styles_cpu, vpixel_physics_styles_cpu; runs under <workdir>/physics_styles[_quick]); `heldout=True`
(implied by styles) also scores the same members, untrained nets and copy_last on the same test seeds drawn in the
`heldout` family, a look no training video has: `heldout_rows` (same fields, `style` heldout) and
`jepa_vs_pixel_heldout`. Nothing is chosen on the held-out rows; figures and probes use the in-style videos.

Per video: surprise = eval.surprise.video_surprise (windows of video.frames frames, stride one tubelet, the
first video.context_frames given); the per-property figures (relative_accuracy, auroc, excess_peak_*, failures,
quad_scores) are described in physics_scoring. `jepa_vs_pixel`: per property, jepa's relative accuracy minus
pixel's with a 95% bootstrap interval over the quadruplets (physics_scoring.compare).
`copy_last_gain_per_member`: 1 - each member's training loss on future prediction / that of copying the last
context frame forward, on GAIN_VIDEOS possible clips (methods.vjepa copy_last_gain; near 0: a stalled member).
Also written: a figure of surprise vs time for one quadruplet per property (jepa; the first impossible frame
marked; below, the excess curve), and linear probes of the ball's position and velocity (physics_probes,
`probe_rows`) for jepa's and pixel's first member, an untrained encoder and raw pixels.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from openjepa.bench.physics_members import default_jobs, train_members
from openjepa.bench.physics_probes import probe_data, probe_rows
from openjepa.bench.physics_scoring import (CopyLast, compare, evaluate_model, evaluate_table, excess_curve,
                                            mean_table, surprise_table)
from openjepa.config import load_config
from openjepa.data.physics import PROPERTIES, test_quadruplets
from openjepa.data.transforms import normalize
from openjepa.eval.surprise import Ensemble, plot_surprise
from openjepa.methods import METHODS
from openjepa.train.checkpoint import load_method
from openjepa.train.run import find_preset, provenance
from openjepa.validate import resolve_config

N_UNTRAINED = 3
PRESETS = {False: ("vjepa_physics_cpu", "vpixel_physics_cpu"),  # styles=False / True: the presets of jepa, pixel
           True: ("vjepa_physics_styles_cpu", "vpixel_physics_styles_cpu")}
HELDOUT = "heldout"  # the style family of the held-out rows
FULL = {"n_quads": 40, "probe_videos": 600, "members": 2, "overrides": []}
QUICK = {"n_quads": 8, "probe_videos": 160, "members": 2,
         "overrides": ["--train.steps=160", "--data.batch_size=16", "--video.physics_videos=480",
                       "--model.dim=64", "--model.depth=2", "--model.heads=2", "--model.pred_dim=32",
                       "--model.pred_depth=2", "--model.pred_heads=2", "--train.monitor_every=0",
                       "--train.ckpt_every=160"]}
GAIN_VIDEOS = 128  # clips on which each member's copy_last_gain is measured


def surprise_figures(quads, table, out: Path, failures: dict[str, list[int]] | None = None,
                     tag: str = "") -> list[str]:
    """Surprise vs time of one quadruplet of each property under the jepa model's surprise_table (each video's
    per-frame surprise, the first impossible frame marked, the excess curve below), written beside `out` as
    <out stem>_<tag>surprise_<property>.png -> their paths. The quadruplet is the property's first, or with
    `failures` (property -> seeds of the quadruplets the model got wrong: evaluate_table's "failures") its first
    failure where it has one, so a reader sees what a miss looks like."""
    figures = []
    for prop in PROPERTIES:
        missed = set((failures or {}).get(prop, ()))
        ids = [j for j, q in enumerate(quads) if q.prop == prop]
        i = next((j for j in ids if quads[j].seed in missed), ids[0])
        q, tab = quads[i], table[i]
        what = ("a failed quadruplet" if q.seed in missed else "no failure; the first quadruplet") if failures \
            is not None else "the first quadruplet"
        named = [{"name": n, "per_frame": r["per_frame"]} for n, r in zip(("possible A", "possible B",
                                                                          "impossible C", "impossible D"), tab)]
        path = out.with_name(f"{out.stem}_{tag}surprise_{prop}.png")
        excess = [{"name": "impossible (C + D) - possible (A + B)", "per_frame": excess_curve(tab)}]
        plot_surprise(named, path, marks=[None, None, q.violation, q.violation], excess=excess,
                      title=f"{prop}{' (' + tag.rstrip('_') + ' style)' if tag else ''}: jepa surprise per frame, "
                            f"{what} (dashed: first impossible frame)")
        figures.append(str(path))
    return figures


def score_style(quads, members: dict[str, list], untrained: list, cfg) -> tuple[dict, dict, dict, list]:
    """Every model on one test set -> (results per model, per-member results of jepa and pixel, their ensemble
    tables, per-init results of the untrained nets). Each member is scored once; an ensemble's table is its members'
    mean (mean_table)."""
    results, per_member, tables = {}, {}, {}
    for name in members:
        member_tables = [surprise_table(one, quads, "cpu") for one in members[name]]
        per_member[name] = [evaluate_table(t, quads) for t in member_tables]
        tables[name] = mean_table(member_tables)
        results[name] = evaluate_table(tables[name], quads)
    per_init = [evaluate_model(m, quads, "cpu")[0] for m in untrained]
    results["copy_last"] = evaluate_model(CopyLast(cfg), quads, "cpu")[0]
    return results, per_member, tables, per_init


def style_rows(style: str, results: dict, per_member: dict, per_init: list, train_info: dict) -> list[dict]:
    """The rows of one test set's scores (score_style), each marked with its `style`; jepa and pixel rows carry
    train_info[model] (their training record)."""
    rows = []
    for prop in PROPERTIES:
        for name in ("jepa", "pixel"):
            rows.append({"model": name, "property": prop, "style": style, **results[name][prop],
                         "per_member": [r[prop]["relative_accuracy"] for r in per_member[name]],
                         "per_member_quad_scores": [r[prop]["quad_scores"] for r in per_member[name]],
                         **train_info[name]})
        rows.append({"model": "copy_last", "property": prop, "style": style, **results["copy_last"][prop]})
        avg = {k: float(np.mean([r[prop][k] for r in per_init])) for k, v in per_init[0][prop].items()
               if not isinstance(v, list)}
        rows.append({"model": "untrained", "property": prop, "style": style, **avg,
                     "per_init": [r[prop]["relative_accuracy"] for r in per_init]})
    return rows


def run_physics(quick: bool, workdir: Path, overrides: list[str], out: Path, reuse: bool = False,
                n_quads: int | None = None, jobs: int | None = None, styles: bool = False,
                heldout: bool = False) -> dict[str, Any]:
    """The suite. reuse=True keeps finished training runs found under workdir that match the requested configs
    (re-scoring without retraining; their train_seconds come from the bench_train.json the earlier bench run
    wrote beside them, null if absent), resumes unfinished ones from their checkpoints (a bench stopped by Ctrl-C or
    SIGTERM goes on where it stopped; `resumed_from_step` per member) and trains the rest. n_quads overrides the
    budget's quadruplets per property (test seeds TEST_SEED + [0, n_quads): a larger set contains the smaller ones).
    jobs > 1 trains up to that many members of a model at once (train_members), each with torch's threads / jobs
    threads (at least 1) unless the overrides set train.threads; `train_wall_seconds` is then the model's training
    time by the clock. jobs=None picks default_jobs. styles / heldout: see the module docstring."""
    budget = dict(QUICK if quick else FULL)
    if jobs is None:
        jobs = default_jobs(budget["members"], torch.get_num_threads(), quick)
    if n_quads is not None:
        budget["n_quads"] = int(n_quads)
    heldout = heldout or styles
    suite_dir = Path(workdir) / f"physics{'_styles' if styles else ''}{'_quick' if quick else ''}"
    if suite_dir.exists() and not reuse:
        shutil.rmtree(suite_dir)
    meta = provenance()
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    threads = [f"--train.threads={max(1, torch.get_num_threads() // jobs)}"] if jobs > 1 else []
    base = ["--train.progress=false", "--train.device=cpu"] + budget["overrides"]
    extra = base + threads + list(overrides)  # the caller's overrides win, train.threads included
    configs, models, members, train_seconds, ckpts, reused, walls, resumed = {}, {}, {}, {}, {}, {}, {}, {}
    for name, preset in zip(("jepa", "pixel"), PRESETS[styles]):
        seed0 = load_config(find_preset(preset), extra).train.seed
        specs = []
        for seed in range(seed0, seed0 + budget["members"]):
            cfg = resolve_config(load_config(find_preset(preset), extra + [f"--train.seed={seed}"]))
            configs.setdefault(name, cfg.to_dict())
            specs.append((cfg, suite_dir / name / f"seed{seed}", f"{name} seed {seed}"))
        t0 = time.time()
        got = train_members(specs, preset, reuse, jobs)
        train_seconds[name], reused[name] = [g[0] for g in got], [g[1] for g in got]
        resumed[name] = [g[2] for g in got]
        # the clock saw the whole training only when no member was kept or resumed
        walls[name] = None if any(reused[name]) or any(r is not None for r in resumed[name]) \
            else round(time.time() - t0, 1)
        ckpts[name] = [run_dir / "checkpoints" / "last.pt" for _, run_dir, _ in specs]
        members[name] = [load_method(c)[0] for c in ckpts[name]]
        models[name] = Ensemble(members[name])
    jcfg = models["jepa"].cfg
    style = "train" if jcfg.video.physics_style == "random" else "plain"  # the look the models trained on
    untrained = []
    for k in range(N_UNTRAINED):
        torch.manual_seed(1000 + k)
        untrained.append(METHODS["vjepa"](jcfg).eval())

    # possible videos with test hues (first video.frames frames): the first GAIN_VIDEOS measure copy_last_gain, the
    # first probe_videos the linear probes
    probe_x, probe_states = probe_data(max(budget["probe_videos"], GAIN_VIDEOS), jcfg, style)
    gain_x = normalize(probe_x[:GAIN_VIDEOS])
    gains = {name: [round(m.eval().copy_last_gain(gain_x, jcfg.video.context_frames), 4) for m in ms]
             for name, ms in members.items()}
    train_info = {name: {"train_seconds": None if None in secs else round(sum(secs), 1),
                         "train_seconds_per_member": secs, "train_wall_seconds": walls[name], "train_jobs": jobs,
                         "copy_last_gain_per_member": gains[name], "checkpoints": [str(c) for c in ckpts[name]],
                         "reused_checkpoint": reused[name], "resumed_from_step": resumed[name]}
                  for name, secs in train_seconds.items()}
    geometry = {"T": jcfg.video.physics_frames, "size": jcfg.data.img_size, "channels": jcfg.data.channels}
    quads = test_quadruplets(budget["n_quads"], style=style, **geometry)
    print(f"== bench physics: scoring {len(quads)} quadruplets ({budget['n_quads']} per property, {style} style"
          f"{' and again in the held-out style' if heldout else ''}): jepa and pixel (each {budget['members']} "
          f"members alone, the ensemble as their mean), {N_UNTRAINED} untrained, copy_last")
    t0 = time.time()
    results, per_member, tables, per_init = score_style(quads, members, untrained, jcfg)
    rows = style_rows(style, results, per_member, per_init, train_info)
    held_out: dict[str, Any] = {}
    if heldout:  # the same members on the same test seeds in a look no training video has
        held = test_quadruplets(budget["n_quads"], style=HELDOUT, **geometry)
        h_results, h_per_member, h_tables, h_per_init = score_style(held, members, untrained, jcfg)
        h_rows = style_rows(HELDOUT, h_results, h_per_member, h_per_init, train_info)
        held_out = {"heldout_style": HELDOUT, "heldout_rows": h_rows,
                 "jepa_vs_pixel_heldout": compare([{"rows": h_rows}])}
    score_seconds = round(time.time() - t0, 1)

    figures = surprise_figures(quads, tables["jepa"], Path(out))
    if heldout:  # where the look changed, show a miss of each property (if the ensemble has one)
        figures += surprise_figures(held, h_tables["jepa"], Path(out),
                                    {p: r["failures"] for p, r in h_results["jepa"].items()}, tag=f"{HELDOUT}_")

    print("== bench physics: linear probes of ball position / velocity")
    n = budget["probe_videos"]
    probes = probe_rows({"jepa": members["jepa"][0], "pixel": members["pixel"][0], "untrained": untrained[0]}, jcfg,
                        probe_x[:n], probe_states[:n])
    return {"suite": "physics", "quick": quick, "git_sha": meta["git_sha"], "machine": meta["machine"],
            "versions": meta["versions"], "created": meta["created"], "configs": configs,
            "n_quadruplets_per_property": budget["n_quads"], "members": budget["members"],
            "score": "surprise_mean (mean window error; jepa and pixel: the mean over their members)",
            "score_seconds": score_seconds, "style": style, "rows": rows, "jepa_vs_pixel": compare([{"rows": rows}]),
            **held_out, "probe_rows": probes, "figures": figures}
