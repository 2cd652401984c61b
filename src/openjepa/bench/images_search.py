"""`openjepa bench images_search`: the recorded recipe search of issue 23, scored on a validation split only.

Every candidate recipe of CANDIDATES (name -> (preset, overrides)) is trained at the same step budget (STEPS,
`--train.steps=N` overrides it as any other key) and probed on a **validation split carved from the Fashion-MNIST
train set**: a seeded carve of VAL_IMAGES (10,000) of the 60,000 train images (data/fashion_mnist.py
holdout_split, a fixed seed) is what the probes are scored on; the other 50,000 are what they are fitted on. The
test split is never loaded, so picking the best recipe here leaves the test set for the one final evaluation.
Pretraining leaves the carved images out too (`data.val_holdout=10000`, set for every candidate): the encoders
never saw the images they are scored on.

Rows: the references `raw_pixels` (no learning) and `random_init` (the ijepa_vit_cpu ViT, untrained, seeded as
`openjepa eval --baselines` seeds it) on the same split and probes, then one row per candidate: name, preset,
overrides, steps, train_seconds, linear_top1 and knn_top1 (the `mean` protocol), protocols (PROTOCOLS: mean,
lastk, layernorm; the attentive probe is left out by default, as its token features of 50,000 images do not fit a
CPU's memory at patch 2, but `--eval.protocols=...` picks any), rankme, feat_std, mean_cos, collapsed,
checkpoint, reused. Every number is on the validation carve. `ranking` orders the candidates by validation
linear top-1 (mean protocol).

Equal steps is not equal compute: patch 2 has 4x the tokens of patch 4, and a larger batch costs in proportion;
compare train_seconds too. `only` trains some candidates; `reuse` keeps a finished run under the workdir trained
with the same settings (eval.* aside: they score a run, not train it) and scores it again, resumes an unfinished
one with the same settings from its checkpoint, and trains the others afresh. `quick` trains a few steps and
probes a few thousand images: a smoke run whose numbers say nothing about the recipes.

The result file is rewritten before each candidate trains, with `complete` false and `pending` naming the
candidates not scored yet: a search stopped after hours leaves the rows it scored (the finished search overwrites
it with `complete` true).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from openjepa.bench.images import save_random_init
from openjepa.bench.reuse import train_or_keep, write_result
from openjepa.config import Config, load_config
from openjepa.data.fashion_mnist import HOLDOUT_SEED
from openjepa.eval.evaluate import eval_split, evaluate_encoder
from openjepa.eval.plots import protocol_bars
from openjepa.methods import METHODS
from openjepa.train.checkpoint import load_method
from openjepa.train.run import find_preset, provenance, select_device
from openjepa.validate import check_config, resolve_config

VAL_IMAGES = 10_000  # the validation carve of the 60,000 train images; the probes fit on the rest
STEPS = 1500  # the default training budget of every candidate
PROTOCOLS = "mean,lastk,layernorm"  # the cheap probes (eval/protocols.py); --eval.protocols=... overrides
REFERENCE = "ijepa_vit_cpu"  # the preset whose untrained encoder is the random_init row
NO_EVAL = ("eval",)  # config sections that score a run but do not train it: --reuse ignores them

_PLAIN = ["--reg.kind=none"]  # the paper's I-JEPA recipe (EMA target only); the preset adds VICReg
_RESNET = ["--model.encoder=resnet"]
CANDIDATES = {  # row name -> (preset, overrides on top of it); each must pass check_config (tests)
    # in the order they train: the CNN options first (LeJEPA and EB-JEPA report their best small-data results with
    # CNNs), with MAE on the same encoder for a fair row, so that a search stopped part-way has scored those;
    # ijepa_resnet last: its online panel showed it collapsing by step 500 (RankMe 3.3, mean cosine 0.89)
    "lejepa_resnet": ("lejepa_vit_cpu", _RESNET),
    "mae_resnet": ("ijepa_vit_cpu", ["--train.method=mae", "--reg.kind=none"] + _RESNET),
    "mae": ("ijepa_vit_cpu", ["--train.method=mae", "--reg.kind=none"]),
    "lejepa": ("lejepa_vit_cpu", []),
    "lejepa_lr2x_b128": ("lejepa_vit_cpu", ["--optim.lr=2e-3", "--data.batch_size=128"]),
    "ijepa": ("ijepa_vit_cpu", _PLAIN),
    "ijepa_vicreg": ("ijepa_vit_cpu", []),  # the shipped preset as is
    "ijepa_bigpred": ("ijepa_vit_cpu", _PLAIN + ["--model.pred_dim=192", "--model.pred_depth=6"]),
    "ijepa_p2": ("ijepa_vit_cpu", _PLAIN + ["--model.patch_size=2"]),  # 14x14 tokens instead of 7x7
    "ijepa_resnet": ("ijepa_vit_cpu", _PLAIN + _RESNET),
}


def budget(quick: bool, steps: int = STEPS) -> list[str]:
    """The overrides every candidate (and random_init) gets before the user's: the step budget, the probe sizes,
    the protocols, and the validation carve left out of pretraining."""
    common = [f"--data.val_holdout={VAL_IMAGES}", f"--eval.protocols={PROTOCOLS}"]
    if quick:
        return common + ["--train.steps=20", "--train.monitor_every=10", "--train.monitor_samples=64",
                         "--eval.train_samples=2000", "--eval.test_samples=1000", "--eval.probe_iters=50"]
    return common + [f"--train.steps={steps}", "--train.monitor_every=250",
                     f"--eval.train_samples={60_000 - VAL_IMAGES}", f"--eval.test_samples={VAL_IMAGES}"]


def candidate_config(name: str, quick: bool, overrides: list[str], steps: int = STEPS) -> Config:
    """The config of one candidate: its preset, the suite's budget, its own overrides, then the user's. The
    candidate itself must pass check_config (no key it sets is ignored); the user's overrides go to every candidate,
    so, as in `bench images`, one that some method does not read (e.g. model.proj_dim for ijepa) is not refused."""
    preset, own = CANDIDATES[name]
    check_config(load_config(find_preset(preset), budget(quick, steps) + own))
    return resolve_config(load_config(find_preset(preset), budget(quick, steps) + own + list(overrides)))


def score_split(name: str, encoder, cfg: Config, splits: dict) -> dict:
    """evaluate_encoder on the validation split of cfg's input size (made once per size, kept in `splits`)."""
    key = (cfg.data.path, cfg.data.img_size, cfg.data.channels, cfg.eval.train_samples, cfg.eval.test_samples)
    if key not in splits:
        splits[key] = eval_split(cfg.eval, *key[:3], holdout=VAL_IMAGES)
    row, _, _ = evaluate_encoder(name, encoder, splits[key], cfg.eval, select_device(cfg.train.device),
                                 cfg.train.precision, progress=False, patch=cfg.model.patch_size)
    return row


def score_references(quick: bool, overrides: list[str], steps: int, suite_dir: Path, splits: dict) -> list[dict]:
    """The rows raw_pixels and random_init (REFERENCE's encoder untrained, seeded as `openjepa eval --baselines`
    seeds it; saved under suite_dir/random_init) on the validation split, with the suite's probes."""
    ref = resolve_config(load_config(find_preset(REFERENCE), budget(quick, steps) + list(overrides)))
    torch.manual_seed(ref.train.seed)  # as evaluate_run seeds its random_init row
    rand = METHODS[ref.train.method](ref).eval_encoder()
    return [_row(score_split("raw_pixels", None, ref, splits), preset=None, overrides=[], steps=0, train_seconds=0.0,
                 checkpoint=None, reused=False),
            _row(score_split("random_init", rand, ref, splits), preset=REFERENCE, overrides=[], steps=0,
                 train_seconds=0.0, checkpoint=str(save_random_init(ref, suite_dir / "random_init")), reused=False)]


def _row(r: dict, **extra) -> dict:
    keep = ("name", "linear_top1", "knn_top1", "protocols", "rankme", "feat_std", "mean_cos", "collapsed")
    return {**extra, **{k: r[k] for k in keep if k in r}}


def run_images_search(quick: bool, workdir: Path, overrides: list[str], out: Path, only: list[str] | None = None,
                      reuse: bool = False, steps: int = STEPS) -> dict[str, Any]:
    """Train and score every candidate of CANDIDATES (or the `only` ones) on the validation carve; see the module
    docstring. Runs live under workdir/images_search[_quick]/<name>; only the selected ones are replaced."""
    unknown = sorted(set(only or ()) - set(CANDIDATES))
    if unknown:
        raise ValueError(f"bench images_search --only: unknown candidate(s) {unknown}; choose from {list(CANDIDATES)}")
    names = [n for n in CANDIDATES if not only or n in only]
    configs = {n: candidate_config(n, quick, overrides, steps) for n in names}  # every config checked before training
    suite_dir = Path(workdir) / ("images_search_quick" if quick else "images_search")
    meta = provenance()  # taken before training: the code that ran
    splits: dict = {}
    rows = score_references(quick, overrides, steps, suite_dir, splits)
    ref = resolve_config(load_config(find_preset(REFERENCE), budget(quick, steps) + list(overrides)))
    split = {"scored_on": "validation carve of the Fashion-MNIST train split; the test split is never read",
             "val_images": VAL_IMAGES, "holdout_seed": HOLDOUT_SEED, "probe_fit_samples": ref.eval.train_samples,
             "probe_val_samples": ref.eval.test_samples, "pretraining_excludes_val": True}

    figure = Path(out).with_name(f"{Path(out).stem}_protocols.png")  # bars per row and protocol, kept current

    def result(pending: list[str]) -> dict[str, Any]:
        ranking = [r["name"] for r in sorted(rows[2:], key=lambda r: -r["linear_top1"])]
        return {"suite": "images_search", "quick": quick, "git_sha": meta["git_sha"], "machine": meta["machine"],
                "versions": meta["versions"], "created": meta["created"], "split": split,
                "configs": {n: c.to_dict() for n, c in configs.items()}, "only": only, "complete": not pending,
                "pending": pending, "rows": rows, "ranking": ranking, "figure": str(figure)}

    def save(res: dict[str, Any]) -> dict[str, Any]:
        write_result(out, res)
        protocol_bars(rows, figure, f"images_search: validation linear top-1 per protocol ({steps} steps"
                      + (", quick)" if quick else ")"))
        return res

    for i, name in enumerate(names):
        save(result(names[i:]))  # a stopped search leaves the rows scored so far (complete: false)
        cfg, run_dir = configs[name], suite_dir / name
        train_seconds, reused, _ = train_or_keep(cfg, run_dir, name, reuse, "images_search", ignore=NO_EVAL,
                                                 hint=" (--reuse resumes it)")
        ckpt = run_dir / "checkpoints" / "last.pt"  # the final model at the fixed budget (best.pt is the online pick)
        method, _, state = load_method(ckpt)
        row = score_split(name, method.eval_encoder(), cfg, splits)
        preset, own = CANDIDATES[name]
        rows.append(_row(row, preset=preset, overrides=own, steps=int(state["step"]), train_seconds=train_seconds,
                         checkpoint=str(ckpt), reused=reused))
    return save(result([]))

