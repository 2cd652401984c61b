"""`openjepa` command line: train, eval, embed, demo, bench, data collect, data driving, data violations, plan.

Run `openjepa COMMAND --help` for each command's options.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: each command imports the heavy modules it runs
    import torch


EPILOG = """examples:
  openjepa demo                                   # train briefly on Fashion-MNIST, compare to baselines, write report.html
  openjepa train configs/smoke.yaml --out runs/smoke
  openjepa train configs/ijepa_vit_cpu.yaml --train.steps=2000 --optim.lr=5e-4
  openjepa train --resume runs/smoke              # continue a run from its last checkpoint
  openjepa eval runs/smoke --baselines            # linear probe + kNN + collapse panel on Fashion-MNIST test
  openjepa eval runs/smoke --train-dir imgs/train --val-dir imgs/val   # ... on your labelled folders
  openjepa embed runs/smoke my_images/ --out features.npy
  openjepa embed runs/smoke shards/ --out feats.safetensors --pool lastk --workers 8
  openjepa bench images --quick --out bench.json
  openjepa bench images_search --reuse           # recipe search, scored on a validation carve of the train set
  openjepa bench images_curve --only mae --reuse  # one recipe trained long: validation accuracy vs minutes
  openjepa train vjepa_physics_cpu --out runs/vjepa  # video world model on procedural physics videos
  openjepa surprise runs/vjepa clip.mp4 --json      # violation-of-expectation surprise per frame
  openjepa bench physics --quick                   # intuitive-physics benchmark (jepa vs pixel vs untrained)
  openjepa data collect two_rooms --episodes 3000 --steps 80 --out data/two_rooms
  openjepa train world_model_two_rooms --data.path=data/two_rooms --out runs/wm
  openjepa data driving --sequences 4 --frames 400 --out data/kitti_sim   # KITTI-layout drives with ground truth
  openjepa data violations --n 4 --out data/violations   # driving clips: teleport, vanish, pass-through (+ possible)
  openjepa plan runs/wm --env two_rooms --planner mppi --episodes 50 --json
"""


def cmd_train(args: argparse.Namespace) -> int:
    from openjepa.config import load_config
    from openjepa.eval.report import write_report
    from openjepa.train.loop import train
    from openjepa.train.run import default_run_dir, find_preset
    from openjepa.validate import check_config

    if args.resume:
        run_dir = Path(args.resume)
        if not (run_dir / "config.yaml").is_file():
            raise FileNotFoundError(f"{run_dir} is not a run directory (no config.yaml)")
        if args.config:
            raise ValueError("give either CONFIG or --resume RUN_DIR, not both (a resumed run keeps its own config)")
        cfg = load_config(run_dir / "config.yaml", args.overrides)
        summary = train(cfg, run_dir, resume=True, force=args.force)
    else:
        if not args.config:
            raise ValueError("CONFIG is required (a YAML file or a preset name such as 'smoke'), or use --resume RUN_DIR")
        path = find_preset(args.config)
        cfg = check_config(load_config(path, args.overrides))  # a new run: keys it would ignore are refused
        run_dir = Path(args.out) if args.out else default_run_dir(str(path))
        summary = train(cfg, run_dir)
    # pre-empted: exit as the signal would have, after the checkpoint
    code = 128 + int(getattr(signal, summary["stopped_by"])) if summary["stopped_by"] else 0
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun, rank 0 alone reports
        return code
    report = write_report(run_dir)
    state = "finished" if summary["finished"] else f"stopped at step {summary['steps']}"
    print(f"{state}: final loss {summary['final_loss']:.4f}; checkpoints in {run_dir / 'checkpoints'}; report {report}")
    if summary["collapse_warned"]:
        print("WARNING: the collapse panel flagged this run; see the report.")
    if summary.get("stall_warned"):
        print("WARNING: the video predictor stalled at copying the last frame forward (copy_last_gain in the log).")
    return code


def _print_rows(rows: list[dict]) -> None:
    print(f"{'model':<14} {'linear':>8} {'kNN-20':>8} {'RankMe':>8} {'feat_std':>9} {'collapsed':>9}")
    for r in rows:
        print(f"{r['name']:<14} {100 * r['linear_top1']:>7.1f}% {100 * r['knn_top1']:>7.1f}% {r['rankme']:>8.1f} "
              f"{r['feat_std']:>9.4f} {str(r['collapsed']):>9}")
    if any("protocols" in r for r in rows):  # only with eval.protocols beyond "mean"
        print(f"\n{'model':<14} {'protocol':<10} {'top-1':>8} {'kNN-20':>8}")
        for r in rows:
            for p, v in r.get("protocols", {}).items():
                knn = f"{100 * v['knn_top1']:>7.1f}%" if "knn_top1" in v else f"{'-':>8}"
                print(f"{r['name']:<14} {p:<10} {100 * v['linear_top1']:>7.1f}% {knn}")


def cmd_eval(args: argparse.Namespace) -> int:
    overrides = list(args.overrides)
    if args.train_samples:
        overrides.append(f"--eval.train_samples={args.train_samples}")
    if args.test_samples:
        overrides.append(f"--eval.test_samples={args.test_samples}")
    if args.protocols:
        overrides.append(f"--eval.protocols={args.protocols}")
    from openjepa.eval.evaluate import evaluate_run

    result = evaluate_run(args.target, args.baselines, overrides, progress=not args.json, train_dir=args.train_dir,
                          val_dir=args.val_dir)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _print_rows(result["rows"])
        for w in result["warnings"]:
            print("WARNING:", w)
        if "report" in result:
            print(f"report: {result['report']}")
    return 0


def _embed_source(path: str):
    """(eval encoder, Config) of a checkpoint, run directory or `openjepa export` folder."""
    from openjepa.export import is_export, load_encoder_and_config
    from openjepa.train.checkpoint import load_method

    if is_export(path):
        return load_encoder_and_config(path)
    method, cfg, _ = load_method(path)
    return method.eval_encoder(), cfg


def _write_features(out: Path, z: torch.Tensor, labels: torch.Tensor | None, names: list[str] | None,
                    classes: list[str] | None) -> list[Path]:
    """FILE.npy (+ FILE.labels.npy) or FILE.safetensors (tensors features, labels; class names in its metadata),
    and FILE.files.txt with one input name per row when the input had names. Returns the files written."""
    import numpy as np

    out.parent.mkdir(parents=True, exist_ok=True)
    written = [out]
    if out.suffix.lower() == ".safetensors":
        from safetensors.torch import save_file

        tensors = {"features": z.contiguous()} | ({"labels": labels.contiguous()} if labels is not None else {})
        save_file(tensors, str(out), metadata={"classes": json.dumps(classes or [])})
    else:
        np.save(out, z.numpy())
        if labels is not None:
            written.append(out.with_name(out.stem + ".labels.npy"))
            np.save(written[-1], labels.numpy())
    if names is not None:
        written.append(out.with_name(out.name + ".files.txt"))
        written[-1].write_text("".join(n + "\n" for n in names))
    return written


def cmd_embed(args: argparse.Namespace) -> int:
    from openjepa.data.image_files import load_images
    from openjepa.eval.features import extract_features, featurize_records, index_input
    from openjepa.train.run import select_device

    out = Path(args.out)
    if out.suffix.lower() not in (".npy", ".safetensors"):
        raise ValueError(f"--out must end in .npy or .safetensors, got {out.name}")
    if args.workers < 0 or args.k < 1:
        raise ValueError("--workers must be >= 0 and --k >= 1")
    encoder, cfg = _embed_source(args.checkpoint)
    device = select_device(cfg.train.device)
    encoder = encoder.to(device)
    batch = args.batch_size or cfg.eval.batch_size
    size, channels = cfg.data.img_size, cfg.data.channels
    if Path(args.input).suffix.lower() == ".npy":  # an in-memory array, as before
        x, _ = load_images(args.input, size, channels, skip_bad=args.skip_bad)
        z = extract_features(encoder, x, device, cfg.train.precision, batch, progress=True, desc="embed",
                             pool=args.pool, k=args.k)
        labels = names = classes = None
    else:
        records = index_input(args.input, cfg.data.index_dir)
        r = featurize_records(encoder, records, size, channels, device, cfg.train.precision, batch, args.workers,
                              args.pool, args.k, skip_bad=args.skip_bad, progress=True)
        z, labels, names, classes = r["features"], r["labels"], r["names"], records.classes
        if r["bad"]:
            print(f"skipped {len(r['bad'])} unreadable image(s), e.g. {r['bad'][0][0]} ({r['bad'][0][1]})")
    written = _write_features(out, z, labels, names, classes)
    what = {"mean": "mean-pooled features", "tokens": "token features",
            "lastk": f"mean-pooled features of the last {args.k} blocks, concatenated"}[args.pool]
    print(f"wrote {out}: shape {tuple(z.shape)} (N images, {what})"
          + (f"; also {', '.join(str(w) for w in written[1:])}" if written[1:] else ""))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from openjepa.config import load_config
    from openjepa.eval.evaluate import evaluate_run
    from openjepa.train.loop import train
    from openjepa.train.run import find_preset
    from openjepa.validate import check_config

    run_dir = Path(args.out)
    if run_dir.exists() and any(run_dir.iterdir()):
        stamp = time.strftime("%Y%m%d-%H%M%S")
        run_dir = run_dir.with_name(f"{run_dir.name}-{stamp}")
    overrides = [f"--train.steps={args.steps}", f"--train.monitor_every={max(args.steps // 6, 1)}",
                 f"--eval.train_samples={args.eval_samples}", "--eval.test_samples=10000"]
    cfg = check_config(load_config(find_preset("ijepa_vit_cpu"), overrides + list(args.overrides)))
    print(f"OpenJEPA demo: I-JEPA on Fashion-MNIST, {cfg.train.steps} steps of the CPU preset, then a linear probe "
          f"and kNN against the raw-pixel and untrained-encoder baselines.")
    t0 = time.time()
    summary = train(cfg, run_dir)
    train_s = time.time() - t0
    result = evaluate_run(run_dir, baselines=True, overrides=[])
    print()
    print(f"trained for {train_s / 60:.1f} min ({summary['steps']} steps); results on the Fashion-MNIST test set:")
    _print_rows(result["rows"])
    rows = {r["name"]: r for r in result["rows"]}
    j, rnd, pix = rows[cfg.train.method], rows["random_init"], rows["raw_pixels"]
    print(f"\nkNN top-1: I-JEPA {100 * j['knn_top1']:.1f}% vs untrained {100 * rnd['knn_top1']:.1f}% "
          f"({100 * (j['knn_top1'] - rnd['knn_top1']):+.1f} points) vs raw pixels {100 * pix['knn_top1']:.1f}%.")
    for w in result["warnings"]:
        print("WARNING:", w)
    print(f"run directory: {run_dir}\nreport: {result['report']}")
    print("Figures at the full CPU budget: benchmarks/results/images_cpu.json (re-run: openjepa bench images).")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from openjepa.export import export_encoder

    out = export_encoder(args.checkpoint, args.out)
    print(f"wrote {out / 'model.safetensors'} and {out / 'config.json'}; load with openjepa.load_encoder({str(out)!r})")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from openjepa.bench import SUITES
    from openjepa.bench.reuse import write_result

    name = f"{args.suite}{'_styles' if args.styles else ''}{'_quick' if args.quick else ''}"  # --styles: its own file
    out = Path(args.out) if args.out else Path(args.workdir) / f"{name}.json"
    extra = {}
    # suite-specific options: (flag, value given, the suites it belongs to, least value or None)
    physics = ("physics",)
    search = ("images_search", "images_curve")
    for flag, value, suites, least in (("--only", args.only or None, ("throughput", "planning") + search, None),
                                       ("--reuse", args.reuse or None, ("physics", "planning") + search, None),
                                       ("--jobs", args.jobs, physics, 1), ("--n-quads", args.n_quads, physics, 1),
                                       ("--styles", args.styles or None, physics, None),
                                       ("--heldout", args.heldout or None, physics, None)):
        if value is None:
            continue
        if args.suite not in suites:
            names = ", ".join(suites[:-1]) + (" and " if len(suites) > 1 else "") + suites[-1]
            raise ValueError(f"{flag} applies to the {names} suite{'s' if len(suites) > 1 else ''}")
        if least is not None and value < least:
            raise ValueError(f"{flag} must be at least {least}, got {value}")
        extra[flag.lstrip("-").replace("-", "_")] = value.split(",") if flag == "--only" else value
    result = SUITES[args.suite](quick=args.quick, workdir=Path(args.workdir), overrides=list(args.overrides), out=out,
                                **extra)
    write_result(out, result)
    for r in result["rows"] + result.get("heldout_rows", []):
        print(json.dumps(r))
    print(f"wrote {out}")
    return 0


def cmd_surprise(args: argparse.Namespace) -> int:
    from openjepa.eval.surprise import plot_surprise, score_videos

    results = score_videos([args.checkpoint, *(args.ensemble or [])], args.videos, context=args.context, fps=args.fps,
                           fit=args.fit, normalize=args.normalize)
    if args.json:
        print(json.dumps(results if len(results) > 1 else results[0], indent=2))
    else:
        print(f"{'surprise_mean':>13} {'surprise_max':>12}  path")
        for r in results:
            print(f"{r['surprise_mean']:>13.4f} {r['surprise_max']:>12.4f}  {r['path']}")
    if args.plot:
        print(f"wrote {plot_surprise(results, args.plot)}", file=sys.stderr if args.json else sys.stdout)
    return 0


def cmd_data_collect(args: argparse.Namespace) -> int:
    from openjepa.data.envs import env_kwargs
    from openjepa.data.trajectories import collect

    kwargs = env_kwargs(args.env, args.overrides)
    out = collect(args.env, args.episodes, args.steps, args.out, policy=args.policy, seed=args.seed,
                  env_kwargs=kwargs, progress=True)
    print(f"wrote {args.episodes} episodes of {args.steps} steps to {out} (meta.json + shard_*.npz)")
    return 0


def cmd_data_driving(args: argparse.Namespace) -> int:
    from openjepa.data.driving import DrivingConfig
    from openjepa.data.envs import override_kwargs
    from openjepa.data.kitti import write_drives

    cfg = DrivingConfig(**override_kwargs(DrivingConfig, args.overrides))
    out = write_drives(args.out, args.sequences, args.frames, cfg, seed=args.seed, progress=True)
    print(f"wrote {args.sequences} sequences of {args.frames} frames to {out} (KITTI odometry layout: "
          f"sequences/SS/image_2, label_2, depth_2, calib.txt, times.txt; poses/SS.txt)")
    return 0


def cmd_data_violations(args: argparse.Namespace) -> int:
    from openjepa.bench.driving import FOCAL
    from openjepa.data.driving import DrivingConfig
    from openjepa.data.driving.violations import KINDS, write_quadruplets
    from openjepa.data.envs import override_kwargs

    kinds = tuple(args.kinds.split(","))
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ValueError(f"--kinds: unknown {', '.join(unknown)}; choose from {', '.join(KINDS)}")
    square = {"height": 64, "width": 64, "focal": FOCAL}  # bench driving's camera, what the driving presets see
    cfg = DrivingConfig(**(square | override_kwargs(DrivingConfig, args.overrides)))
    out = write_quadruplets(args.out, args.n, cfg, args.frames, seed=args.seed, kinds=kinds, progress=True)
    print(f"wrote {args.n} quadruplets per kind ({', '.join(kinds)}) to {out}: KIND_SEED/possible_A.npy, "
          f"possible_B.npy, impossible_C.npy, impossible_D.npy, info.json; score one with openjepa surprise CKPT "
          f"{out}/{kinds[0]}_{args.seed}/*.npy")
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    from openjepa.planning.run import plan_episodes

    result = plan_episodes(args.checkpoint, args.env, args.overrides, planner=args.planner, episodes=args.episodes,
                           horizon=args.horizon, samples=args.samples, iters=args.iters,
                           replan_every=args.replan_every, cost=args.cost, seed=args.seed, parallel=args.parallel,
                           picture=args.picture, gif=args.gif, threads=args.threads)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['env']} / {result['planner']}: success {100 * result['success_rate']:.1f}% over "
              f"{result['episodes']} episodes, mean final distance {result['mean_final_distance']:.2f}, "
              f"{result['seconds_per_step']:.3f} s planning per executed step")
        for key in ("picture", "gif"):
            if key in result:
                print(f"{key}: {result[key]}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from openjepa.bench import SUITES
    from openjepa.config import SECTIONS
    from openjepa.train.run import CONFIG_DIR

    presets = ", ".join(sorted(f.stem for f in CONFIG_DIR.glob("*.yaml")))

    p = argparse.ArgumentParser(prog="openjepa", description="Joint-Embedding Predictive Architectures: train, "
                                "evaluate and benchmark self-supervised encoders.", epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser("train", help="train a model from a YAML config", formatter_class=argparse.RawDescriptionHelpFormatter,
                       description=f"Train from a YAML config (a path or a preset name: {presets}). Override "
                       f"any key with --section.key=value (sections: {', '.join(SECTIONS)}). The run directory gets config.yaml, metrics.jsonl, checkpoints/ and "
                       "report.html.", epilog="example: openjepa train smoke --out runs/smoke --train.steps=50")
    t.add_argument("config", nargs="?", help="YAML config file or preset name")
    t.add_argument("--out", help="run directory (default: runs/<config>-<time>)")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue RUN_DIR from its newest valid checkpoint (exactly)")
    t.add_argument("--force", action="store_true", help="with --resume: accept overrides that change the run's config")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("eval", help="linear probe, kNN and collapse panel of a frozen encoder",
                       description="Evaluate the encoder of a run directory or checkpoint on Fashion-MNIST, or on "
                       "your labelled images with --train-dir/--val-dir: linear probe top-1, weighted kNN-20 top-1, "
                       "RankMe, feature std, mean cosine. With a run directory, writes eval.json, embedding.npz and "
                       "an updated report.html there.")
    e.add_argument("target", metavar="RUN_DIR_OR_CHECKPOINT")
    e.add_argument("--json", action="store_true", help="print the result as JSON")
    e.add_argument("--baselines", action="store_true", help="also evaluate raw pixels and an untrained encoder")
    e.add_argument("--train-samples", type=int, help="labelled train images for the probes (default 60000)")
    e.add_argument("--test-samples", type=int, help="test images scored (default 10000)")
    e.add_argument("--protocols", metavar="LIST", help="probe protocols per row, comma-separated from mean, lastk, "
                   "layernorm, attentive (eval.protocols; default mean: today's output); each row gets a "
                   "'protocols' dict and the table one line per protocol")
    e.add_argument("--train-dir", metavar="DIR", help="labelled training images for the probes instead of "
                   "Fashion-MNIST: DIR/<class>/*.jpg|png (ImageNet layout, recursive) or .tar shards with .cls "
                   "labels; a seeded --train-samples of them, centre view at the model's size")
    e.add_argument("--val-dir", metavar="DIR", help="labelled images scored (same classes as --train-dir); "
                   "a seeded --test-samples of them")
    e.set_defaults(func=cmd_eval)

    m = sub.add_parser("embed", help="embed images with a trained encoder",
                       description="Write encoder features of every image of INPUT: a folder of PNG/JPEG images "
                       "(searched recursively, sorted by path; ImageNet layout root/<class>/... gives labels), a .tar "
                       "shard or a folder of them (WebDataset style, labels from .cls members), or an .npy uint8 "
                       "array (N, H, W) / (N, H, W, C). Folders and shards are decoded in --workers processes "
                       "with the evaluation view (the centred square of the short side at the model's size, no "
                       "augmentation). The encoder is the one `openjepa export` writes (I-JEPA/V-JEPA: the EMA "
                       "target encoder). Writes FEATURES.npy (+ FEATURES.labels.npy for labelled input) or "
                       "FEATURES.safetensors (tensors 'features' and 'labels', class names in its metadata), and "
                       "FEATURES.<suffix>.files.txt naming the input file of each row (folders and shards).")
    m.add_argument("checkpoint", metavar="CHECKPOINT", help="checkpoint file, run directory or `openjepa export` folder")
    m.add_argument("input", metavar="INPUT", help="image folder, .tar shard(s) or .npy file")
    m.add_argument("--out", required=True, metavar="FEATURES.npy|FEATURES.safetensors")
    m.add_argument("--pool", choices=["mean", "tokens", "lastk"], default="mean",
                   help="mean: (N, D) mean over tokens of the last layer (default); tokens: (N, T, D); lastk: the "
                   "mean-pooled outputs of the last --k blocks concatenated, (N, k*D) (the linear-probe protocol)")
    m.add_argument("--k", type=int, default=4, help="blocks for --pool lastk (default 4)")
    m.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1),
                   help="decoding processes for folders and shards (default min(4, CPUs); 0: in this process)")
    m.add_argument("--batch-size", type=int, help="images per forward pass (default: the run's eval.batch_size)")
    m.add_argument("--skip-bad", action="store_true", help="skip unreadable images (counted) instead of failing")
    m.set_defaults(func=cmd_embed)

    x = sub.add_parser("export", help="write an encoder as model.safetensors + config.json",
                       description="Export the encoder a run evaluates (I-JEPA: the EMA target encoder) as "
                       "model.safetensors (tensors only; loading runs no code) plus config.json. Load it back in "
                       "Python with openjepa.load_encoder(DIR).")
    x.add_argument("checkpoint", metavar="CHECKPOINT", help="checkpoint file or run directory")
    x.add_argument("--out", required=True, metavar="DIR")
    x.set_defaults(func=cmd_export)

    d = sub.add_parser("demo", help="the quick tour: train, evaluate against baselines, write a report",
                       description="Train the CPU preset briefly on Fashion-MNIST (about 5-8 minutes on 2 cores), "
                       "evaluate it against raw pixels and an untrained encoder, write report.html.")
    d.add_argument("--out", default="runs/demo", help="run directory (default runs/demo; a timestamp is added if taken)")
    d.add_argument("--steps", type=int, default=600, help="training steps (default 600)")
    d.add_argument("--eval-samples", type=int, default=10000, help="labelled train images for the probes")
    d.set_defaults(func=cmd_demo)

    s = sub.add_parser("surprise", help="violation-of-expectation surprise of videos under a video world model",
                       description="Score videos with a trained vjepa (or vpixel) checkpoint: sliding windows of the "
                       "model's clip length, the first --context frames given, the rest predicted; prints per video "
                       "surprise_mean, surprise_max (over windows) and per_frame (each frame's error averaged over the "
                       "windows predicting it; null for the first context frames). Videos: .npy (T, H, W[, C]), folders of frames, .mp4/.avi/... "
                       "of any size, length, frame rate and channel count (brought to the model's size by --fit, "
                       "RGB<->grey; see openjepa.data.video). "
                       "What your videos must match, or the model sees something it never trained on: "
                       "(1) object size in pixels AT THE MODEL'S INPUT SIZE (data.img_size), after --fit: the shipped "
                       "physics preset sees 32x32 frames with balls 3-5 px across, so a ball filling a tenth of a "
                       "640 px frame is about 3 px there, one filling half of it is far too big; crop or letterbox to "
                       "get there. "
                       "(2) motion per frame: the preset's balls move about 0.3-3 px per frame at 32 px; a video "
                       "at 60 fps of slow motion moves too little per frame: lower the rate with --fps (video files "
                       "only). "
                       "(3) clip length: the model scores sliding windows of its clip length (video.frames, 16 for the "
                       "preset), the first --context frames (8) given; an event must happen after the first context "
                       "frames and within a window's prediction horizon of what it contradicts.")
    s.add_argument("checkpoint", metavar="CHECKPOINT", help="checkpoint file or run directory")
    s.add_argument("videos", metavar="VIDEO", nargs="+")
    s.add_argument("--context", type=int, help="context frames per window (default: the model's video.context_frames)")
    s.add_argument("--fps", type=float, help="resample video files to this frame rate first (default: as stored); "
                   "refused for .npy and folders of frames, which have no timestamps")
    s.add_argument("--fit", choices=["crop", "letterbox"], default="crop",
                   help="how a non-square frame becomes the model's square input: crop (default) resizes the short "
                   "side to the model's size and cuts the centre square (the edges of a wide video are lost); "
                   "letterbox resizes the long side and pads the rest with the clip's border colour (nothing is "
                   "lost, objects get smaller)")
    s.add_argument("--normalize", choices=["none", "zscore"], default="none",
                   help="none (default): raw prediction errors. zscore: each video's per_frame, surprise_mean and "
                   "surprise_max minus the mean, over the std, of that video's own per-frame curve, so videos of "
                   "different looks (texture, noise, contrast move the whole curve) compare by how far their peaks "
                   "stand out; surprise_mean is then about 0, surprise_max is the peak in stds; --json keeps the raw "
                   "numbers under 'raw'")
    s.add_argument("--ensemble", metavar="CHECKPOINT", action="append",
                   help="also score with this checkpoint (repeatable): each window's error is the mean over all the "
                   "models, as bench physics scores its jepa and pixel models; the models must share clip length, "
                   "tubelet, context, frame size and channels")
    s.add_argument("--json", action="store_true", help="print JSON (one object, or a list for several videos)")
    s.add_argument("--plot", metavar="PATH.png", help="save a surprise-vs-time plot")
    s.set_defaults(func=cmd_surprise)

    b = sub.add_parser("bench", help="run a benchmark suite and write its JSON result",
                       description="Run a benchmark suite; writes {suite, git_sha, machine, config, rows}. "
                       "Each trained model's row names its checkpoint(s) under --workdir.")
    b.add_argument("suite", choices=sorted(SUITES))
    b.add_argument("--quick", action="store_true", help="a small version that finishes in minutes (all rows)")
    b.add_argument("--out", help="result file (default WORKDIR/SUITE[_styles][_quick].json)")
    b.add_argument("--workdir", default="bench_work", help="where runs and checkpoints go (default bench_work)")
    b.add_argument("--only", metavar="ROW[,ROW]", help="throughput: run only these configs (e.g. ijepa_vits_gpu); "
                   "planning: only these models (e.g. two_rooms_any); images_search: only these candidate recipes "
                   "(e.g. ijepa,mae); images_curve: the one candidate recipe to train long and score along the way")
    b.add_argument("--reuse", action="store_true", help="physics: keep finished training runs under --workdir that "
                   "match the configs (score again without retraining), resume unfinished ones from their "
                   "checkpoints, train the others. Ctrl-C or SIGTERM stops the whole bench (each member in training "
                   "saves a checkpoint); --reuse then goes on from there. planning: keep each finished world model "
                   "under --workdir trained with the same settings and plan again (no collection, no training). "
                   "images_search: keep each finished candidate run under --workdir trained with the same settings "
                   "(eval.* aside) and score it again, resume unfinished ones, train the others; images_curve: the same for "
                   "its one run")
    b.add_argument("--jobs", type=int, metavar="N", help="physics: train up to N ensemble members at once, each in "
                   "its own process with 1/N of torch's threads (default: the full bench trains its 2 members at once "
                   "when torch has 2 or more threads, which is faster on a 2-core CPU, README; --quick one after "
                   "the other)")
    b.add_argument("--n-quads", type=int, metavar="N", help="physics: test quadruplets per property (default 40, "
                   "--quick 8); the first 40 of any N are the default test set")
    b.add_argument("--styles", action="store_true", help="physics: train the style-randomised presets "
                   "(vjepa_physics_styles_cpu and its pixel twin: textured backgrounds, several ball shapes, camera "
                   "noise; same physics) and score them in their training styles and in the held-out style "
                   "(implies --heldout); runs under WORKDIR/physics_styles[_quick]")
    b.add_argument("--heldout", action="store_true", help="physics: also score every model on the same test seeds "
                   "drawn in the held-out style family (a look no training video has): the result's heldout_rows")
    b.set_defaults(func=cmd_bench)
    dc = sub.add_parser("data", help="offline datasets: env trajectories (data collect), driving drives (data "
                        "driving), driving surprise clips (data violations)")
    dsub = dc.add_subparsers(dest="data_command", required=True, metavar="SUBCOMMAND")
    c = dsub.add_parser("collect", help="roll out an exploration policy in an env and store the trajectories",
                        description="Write DIR/meta.json + DIR/shard_*.npz: obs uint8 (n, T+1, C, H, W), actions "
                        "float32 (n, T, A), pos (n, T+1, 2) (format: src/openjepa/data/trajectories.py). Env "
                        "settings: --env.KEY=VALUE (e.g. --env.door_y=20).",
                        epilog="example: openjepa data collect two_rooms --episodes 3000 --steps 80 --out data/two_rooms")
    c.add_argument("env", metavar="ENV")
    c.add_argument("--episodes", type=int, required=True)
    c.add_argument("--out", required=True, metavar="DIR")
    c.add_argument("--steps", type=int, default=16, help="actions per episode (T; default 16, PLDM's 17 frames; "
                   "a preset needs >= (world.frames - 1) * world.frameskip: 80 for world_model_two_rooms)")
    c.add_argument("--policy", default="random_walk", help="random_walk (default; PLDM-style) | uniform | push "
                   "(pusht: go behind the block and push it)")
    c.add_argument("--seed", type=int, default=0)
    c.set_defaults(func=cmd_data_collect)
    dd = dsub.add_parser("driving", help="render driving drives with ground truth as a KITTI odometry tree",
                         description="Render procedural drives (data/driving/) and write them in KITTI's odometry "
                         "layout (data/kitti.py): sequences/SS/image_2/NNNNNN.png, calib.txt (P0..P3, Tr), "
                         "times.txt, label_2/NNNNNN.txt (KITTI object labels), depth_2/NNNNNN.png (uint16, metres * "
                         "256, 0 = none) and poses/SS.txt. Train on it with --data.dataset=kitti --data.path=DIR. "
                         "World settings: --env.KEY=VALUE (e.g. --env.width=384 --env.vehicles=12).",
                         epilog="example: openjepa data driving --sequences 4 --frames 400 --out data/kitti_sim")
    dd.add_argument("--sequences", type=int, required=True, help="drives to write (sequences 00, 01, ...)")
    dd.add_argument("--frames", type=int, required=True, help="frames per drive (10 per simulated second)")
    dd.add_argument("--out", required=True, metavar="DIR")
    dd.add_argument("--seed", type=int, default=0, help="sequence i is drawn from seed SEED + i")
    dd.set_defaults(func=cmd_data_driving)
    dv = dsub.add_parser("violations", help="render matched possible / impossible driving clips (teleport, vanish, "
                         "pass_through) to score with openjepa surprise",
                         description="Write N matched quadruplets per violation (data/driving/violations.py; "
                         "docs/driving.md) as OUT/KIND_SEED/possible_A.npy, possible_B.npy, impossible_C.npy, "
                         "impossible_D.npy (uint8 (T, H, W, 3)) and info.json. The camera is bench driving's square "
                         "one (64 x 64 px, focal 1.3 x width), what the driving presets train on; change it with "
                         "--env.KEY=VALUE (e.g. --env.height=32 --env.width=32).",
                         epilog="example: openjepa data violations --n 4 --out data/violations")
    dv.add_argument("--n", type=int, required=True, help="quadruplets per violation kind (seeds SEED .. SEED + N - 1)")
    dv.add_argument("--out", required=True, metavar="DIR")
    dv.add_argument("--kinds", default="teleport,vanish,pass_through", help="comma-separated violation kinds "
                    "(default: all three)")
    dv.add_argument("--frames", type=int, default=24, help="frames per clip (>= 16; default 24, bench driving's)")
    dv.add_argument("--seed", type=int, default=4_000_000, help="first seed (default 4000000: bench driving's "
                    "surprise test set)")
    dv.set_defaults(func=cmd_data_violations)

    pl = sub.add_parser("plan", help="plan to goal images with a trained world model (MPC) and report success",
                        description="Run MPC episodes with a world_model checkpoint: encode the goal image, plan "
                        "action sequences in latent space (CEM or MPPI), execute --replan-every actions, replan. "
                        "Env settings: --env.KEY=VALUE (e.g. --env.door_y=20 for an unseen layout). Prints "
                        '{"env", "planner", "episodes", "success_rate", "mean_final_distance", "seconds_per_step"}.',
                        epilog="example: openjepa plan runs/wm --env two_rooms --planner mppi --episodes 50 --json")
    pl.add_argument("checkpoint", metavar="CHECKPOINT", help="checkpoint file or run directory")
    pl.add_argument("--env", default="two_rooms")
    pl.add_argument("--planner", choices=["cem", "mppi", "search"], default="mppi",
                    help="cem | mppi (sampling, --samples/--iters) | search (graph search over imagined states, "
                         "reaches goals behind walls; planning/search.py)")
    pl.add_argument("--episodes", type=int, default=20)
    pl.add_argument("--horizon", type=int, default=None, help="imagined model steps per plan (default: the "
                    "checkpoint's training window); a model trained with world.frameskip=k holds each planned "
                    "action k env steps, so a plan spans horizon * k env steps")
    pl.add_argument("--samples", type=int, default=200, help="candidate action sequences per iteration")
    pl.add_argument("--iters", type=int, default=10, help="planner iterations per replan")
    pl.add_argument("--replan-every", type=int, default=1, help="planned actions executed between plans "
                    "(each held world.frameskip env steps)")
    pl.add_argument("--cost", choices=["sum", "last"], default="sum", help="latent distance summed over imagined "
                    "steps or at the last one")
    pl.add_argument("--parallel", type=int, default=0, help="episodes planned side by side (default: all)")
    pl.add_argument("--seed", type=int, default=1000, help="episode i uses env seed SEED + i")
    pl.add_argument("--picture", metavar="PNG", help="save planned vs executed trajectories of a few episodes")
    pl.add_argument("--gif", metavar="GIF", help="save an animation of the first episode")
    pl.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's; 1 is fastest on a "
                    "busy machine)")
    pl.add_argument("--json", action="store_true", help="print the result as one JSON line")
    pl.set_defaults(func=cmd_plan)
    return p


def main(argv: list[str] | None = None) -> int:
    from openjepa.config import ConfigError

    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    bad = [r for r in rest if not (r.startswith("--") and "=" in r and "." in r.split("=", 1)[0])]
    if bad:
        parser.error(f"unrecognized arguments: {' '.join(bad)} (config overrides look like --section.key=value)")
    if args.command in ("data", "plan") and any(not r.startswith("--env.") for r in rest):
        parser.error(f"{args.command} takes only --env.KEY=VALUE overrides")
    if rest and args.command in ("embed", "export", "surprise"):
        parser.error(f"{args.command} takes no config overrides")
    args.overrides = rest
    try:
        return args.func(args)
    except (ConfigError, FileNotFoundError, FileExistsError, ValueError, RuntimeError, FloatingPointError, OSError) as e:
        print(f"openjepa {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
