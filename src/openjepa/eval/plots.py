"""The run report's figures, each a base64 PNG: training loss, schedules, collapse diagnostics with the flagged
steps shaded, online probe accuracy, any other logged metric, and a 2-D PCA of the embeddings; plus the helpers that
turn metrics.jsonl rows into per-key series.

Figures use :class:`matplotlib.figure.Figure` with the Agg canvas directly, so neither pyplot nor the global
matplotlib backend is touched.
"""

from __future__ import annotations

import base64
import io
import math
from typing import Mapping, Sequence

import numpy as np

from openjepa.eval.tables import is_num

# metrics.jsonl keys with a dedicated figure; any other numeric key lands in "Other metrics".
_SCHEDULE_KEYS = ("lr", "wd", "ema", "samples_per_s")
_COLLAPSE_KEYS = ("rankme", "feat_std", "mean_cos")
_PROBE_KEYS = ("knn_top1", "linear_top1")
_KNOWN_KEYS = {"step", "epoch", "elapsed_s", "loss", "collapsed", *_SCHEDULE_KEYS, *_COLLAPSE_KEYS, *_PROBE_KEYS}
_MAX_OTHER_PANELS = 12
_MAX_SCATTER_POINTS = 5000
_MAX_LEGEND_CLASSES = 20

_LABELS = {
    "loss": "loss",
    "lr": "learning rate",
    "wd": "weight decay",
    "ema": "EMA momentum",
    "samples_per_s": "samples / s",
    "rankme": "RankMe",
    "feat_std": "feature std",
    "mean_cos": "mean pairwise cosine",
    "knn_top1": "k-NN top-1",
    "linear_top1": "linear top-1",
}


def metric_steps(rows: Sequence[Mapping]) -> list[float]:
    """Step of every row; a row without a numeric step inherits the previous
    row's step (the row index when no row has a step at all)."""
    if not any(is_num(r.get("step")) for r in rows):
        return [float(i) for i in range(len(rows))]
    out: list[float] = []
    last = 0.0
    for r in rows:
        s = r.get("step")
        if is_num(s) and math.isfinite(float(s)):
            last = float(s)
        out.append(last)
    return out


def metric_series(rows: Sequence[Mapping], steps: Sequence[float], key: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of the rows holding a finite number under `key`, sorted by step."""
    xs, ys = [], []
    for s, r in zip(steps, rows):
        v = r.get(key)
        if is_num(v) and math.isfinite(float(v)):
            xs.append(s)
            ys.append(float(v))
    x, y = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    if x.size > 1 and np.any(np.diff(x) < 0):  # resumed runs: keep plots monotone
        order = np.argsort(x, kind="stable")
        x, y = x[order], y[order]
    return x, y


def present_series(rows: Sequence[Mapping], steps: Sequence[float], keys) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(key, steps, values) for each of `keys` with at least one finite value, in the order of `keys`."""
    series = [(k, *metric_series(rows, steps, k)) for k in keys]
    return [s for s in series if s[1].size > 0]


def collapse_flags(rows: Sequence[Mapping], steps: Sequence[float]) -> list[tuple[float, bool]]:
    """(step, collapsed?) of every row carrying the online monitor's `collapsed` flag, by step."""
    flags = [(s, bool(r["collapsed"])) for s, r in zip(steps, rows) if "collapsed" in r]
    flags.sort(key=lambda t: t[0])
    return flags


def _new_figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=90)
    FigureCanvasAgg(fig)
    return fig


def _png_b64(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _style(ax) -> None:
    ax.grid(True, alpha=0.3)
    ax.tick_params(labelsize=8)


def _panels(n: int, height: float = 2.8, max_cols: int = 3):
    cols = min(n, max_cols)
    rows_ = math.ceil(n / cols)
    fig = _new_figure(3.6 * cols, height * rows_)
    axes = fig.subplots(rows_, cols, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, list(axes[:n])


def loss_figure(rows, steps) -> str | None:
    x, y = metric_series(rows, steps, "loss")
    if x.size == 0:
        return None
    fig = _new_figure(7.5, 3.6)
    ax = fig.add_subplot(1, 1, 1)
    smooth = x.size >= 50
    ax.plot(x, y, marker="o" if x.size < 3 else None, lw=1.0, alpha=0.5 if smooth else 1.0,
            color="C0", label="loss")
    if smooth:  # centred moving average on top of the raw curve
        w = max(3, (x.size // 25) | 1)
        ax.plot(x[w // 2: x.size - w // 2], np.convolve(y, np.ones(w) / w, mode="valid"),
                lw=1.8, color="C1", label=f"moving average ({w})")
        ax.legend(fontsize=8)
    if np.all(y > 0):
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title("Training loss", fontsize=10)
    _style(ax)
    fig.tight_layout()
    return _png_b64(fig)


def schedules_figure(rows, steps) -> str | None:
    series = present_series(rows, steps, _SCHEDULE_KEYS)
    if not series:
        return None
    fig, axes = _panels(len(series), max_cols=4)
    for ax, (k, x, y) in zip(axes, series):
        ax.plot(x, y, marker="o" if x.size < 3 else None, lw=1.3, color="C2")
        ax.set_title(_LABELS.get(k, k), fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        _style(ax)
    fig.tight_layout()
    return _png_b64(fig)


def _shade_collapse(ax, flags: list[tuple[float, bool]], last_step: float) -> None:
    """Shade around each flagged step, halfway to the neighbouring eval steps."""
    for i, (s, c) in enumerate(flags):
        if not c:
            continue
        lo = (flags[i - 1][0] + s) / 2 if i > 0 else s
        hi = (flags[i + 1][0] + s) / 2 if i + 1 < len(flags) else max(s, last_step)
        if hi > lo:
            ax.axvspan(lo, hi, color="red", alpha=0.15, lw=0)
        ax.axvline(s, color="red", alpha=0.6, lw=1.0)


def collapse_figure(rows, steps, dim: int | None) -> str | None:
    series = present_series(rows, steps, _COLLAPSE_KEYS)
    if not series:
        return None
    flags = collapse_flags(rows, steps)
    last_step = max(steps) if steps else 0.0
    fig, axes = _panels(len(series))
    for ax, (k, x, y) in zip(axes, series):
        _shade_collapse(ax, flags, last_step)
        ax.plot(x, y, marker="o", ms=3, lw=1.3, color="C0")
        if k == "feat_std" and dim:
            ref = 1.0 / math.sqrt(dim)
            ax.axhline(ref, color="green", ls="--", lw=1.0, label=f"healthy 1/sqrt({dim}) = {ref:.3g}")
            ax.legend(fontsize=7, loc="best")
        if k == "mean_cos":
            ax.axhline(0.0, color="grey", lw=0.6)
        ax.set_title(_LABELS.get(k, k), fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        _style(ax)
    fig.tight_layout()
    return _png_b64(fig)


def probe_figure(rows, steps) -> str | None:
    series = present_series(rows, steps, _PROBE_KEYS)
    if not series:
        return None
    as_pct = all(np.all((y >= 0) & (y <= 1)) for _, _, y in series)
    fig = _new_figure(7.5, 3.4)
    ax = fig.add_subplot(1, 1, 1)
    for i, (k, x, y) in enumerate(series):
        ax.plot(x, 100 * y if as_pct else y, marker="o", ms=4, lw=1.3, color=f"C{i + 3}", label=_LABELS.get(k, k))
    ax.set_xlabel("step")
    ax.set_ylabel("top-1 accuracy (%)" if as_pct else "top-1 accuracy")
    ax.set_title("Online probe accuracy", fontsize=10)
    ax.legend(fontsize=8)
    _style(ax)
    fig.tight_layout()
    return _png_b64(fig)


def other_keys(rows) -> list[str]:
    keys: list[str] = []
    seen = set(_KNOWN_KEYS)
    for r in rows:
        for k, v in r.items():
            if k not in seen and is_num(v) and math.isfinite(float(v)):
                seen.add(k)
                keys.append(k)
    return keys


def other_figure(rows, steps) -> tuple[str | None, list[str]]:
    keys = other_keys(rows)
    series = present_series(rows, steps, keys)
    if not series:
        return None, []
    shown = series[:_MAX_OTHER_PANELS]
    fig, axes = _panels(len(shown), height=2.5, max_cols=4)
    for ax, (k, x, y) in zip(axes, shown):
        ax.plot(x, y, marker="o" if x.size < 3 else None, ms=3, lw=1.2, color="C7")
        ax.set_title(k, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        _style(ax)
    fig.tight_layout()
    return _png_b64(fig), [k for k, _, _ in series[_MAX_OTHER_PANELS:]]


def pca_figure(emb: dict) -> tuple[str | None, str | None]:
    z, y, names = emb["z"], emb["y"], emb["class_names"]
    keep = np.all(np.isfinite(z), axis=1)
    z = z[keep]
    if y is not None:
        y = y[keep]
    if z.shape[0] < 2:
        return None, "embedding.npz: fewer than two finite rows."
    if z.shape[0] > _MAX_SCATTER_POINTS:
        idx = np.sort(np.random.default_rng(0).choice(z.shape[0], _MAX_SCATTER_POINTS, replace=False))
        z = z[idx]
        y = y[idx] if y is not None else None
    zc = z - z.mean(axis=0, keepdims=True)
    try:
        _, s, vt = np.linalg.svd(zc, full_matrices=False)
    except np.linalg.LinAlgError:
        return None, "embedding.npz: SVD did not converge."
    k = min(2, vt.shape[0])
    proj = zc @ vt[:k].T
    if k < 2:
        proj = np.concatenate([proj, np.zeros((proj.shape[0], 2 - k))], axis=1)
    var = s**2
    ratio = var / var.sum() if var.sum() > 0 else np.zeros_like(var)
    r = [float(ratio[i]) if i < ratio.size else 0.0 for i in range(2)]

    fig = _new_figure(6.4, 5.2)
    ax = fig.add_subplot(1, 1, 1)
    if y is None:
        ax.scatter(proj[:, 0], proj[:, 1], s=8, alpha=0.7, color="C0", lw=0)
    else:
        classes = np.unique(y)
        cmap_name = "tab10" if classes.size <= 10 else "tab20"
        from matplotlib import colormaps

        cmap = colormaps[cmap_name]
        for i, c in enumerate(classes):
            m = y == c
            label = str(c)
            if names is not None and is_num(c) and float(c).is_integer() and 0 <= int(c) < len(names):
                label = names[int(c)]
            color = cmap(i % cmap.N)
            ax.scatter(proj[m, 0], proj[m, 1], s=8, alpha=0.75, color=color, lw=0, label=label)
        if classes.size <= _MAX_LEGEND_CLASSES:
            ax.legend(fontsize=7, markerscale=2, loc="best", title="class", title_fontsize=8)
    ax.set_xlabel(f"PC1 ({100 * r[0]:.1f}% var)")
    ax.set_ylabel(f"PC2 ({100 * r[1]:.1f}% var)")
    n_all = emb["z"].shape[0]
    shown = f"{z.shape[0]} of {n_all} shown" if z.shape[0] < n_all else f"N={n_all}"
    ax.set_title(f"Embedding PCA ({shown}, D={emb['z'].shape[1]})", fontsize=10)
    _style(ax)
    fig.tight_layout()
    return _png_b64(fig), None


def _best_linear(row: Mapping) -> float:
    """A bench row's best linear top-1 (%) over its probe protocols."""
    return max(100 * v["linear_top1"] for v in row["protocols"].values())


def _save_png(fig, path) -> str:
    """A figure written to `path` (PNG, no software stamp) -> str(path)."""
    fig.tight_layout()
    fig.savefig(path, format="png", metadata={"Software": None})
    return str(path)


def protocol_bars(rows: Sequence[Mapping], path, title: str) -> str | None:
    """A bench's image rows as grouped bars, one group per row and one bar per probe protocol (linear top-1 of
    row["protocols"][p]), with raw_pixels' best protocol as a dashed line; written to `path` (PNG). Returns the
    path, or None when no row carries protocols."""
    rows = [r for r in rows if r.get("protocols")]
    protocols = list(dict.fromkeys(p for r in rows for p in r["protocols"]))
    if not rows:
        return None
    fig = _new_figure(max(6.0, 0.9 * len(rows) + 2.0), 3.8)
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / len(protocols)
    for j, p in enumerate(protocols):
        xs = [i + (j - (len(protocols) - 1) / 2) * width for i, r in enumerate(rows) if p in r["protocols"]]
        ys = [100 * r["protocols"][p]["linear_top1"] for r in rows if p in r["protocols"]]
        ax.bar(xs, ys, width, color=f"C{j}", label=p)
    pixels = [r for r in rows if r.get("name") == "raw_pixels"]
    if pixels:
        best = _best_linear(pixels[0])
        ax.axhline(best, color="k", ls="--", lw=1, label=f"raw pixels, best ({best:.1f}%)")
    lo = min(100 * v["linear_top1"] for r in rows for v in r["protocols"].values())
    ax.set_ylim(max(0.0, 5 * math.floor((lo - 5) / 5)), 100)
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([str(r.get("name", i)) for i, r in enumerate(rows)], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("linear top-1 (%)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, ncol=min(len(protocols) + 1, 5), loc="upper left")
    _style(ax)
    return _save_png(fig, path)


def curve_figure(rows: Sequence[Mapping], path, title: str) -> str | None:
    """Probe accuracy along one training run: rows named raw_pixels / random_init are references (horizontal lines,
    their best protocol), every other row is a checkpoint with `train_seconds` (or only `step`) and `protocols`;
    one line per protocol of linear top-1 against training minutes (steps where a time is missing). Written to
    `path` (PNG); returns it, or None without checkpoint rows."""
    refs = {r["name"]: r for r in rows if r.get("name") in ("raw_pixels", "random_init")}
    points = [r for r in rows if r.get("name") not in refs and r.get("protocols")]
    if not points:
        return None
    timed = all(r.get("train_seconds") is not None for r in points)
    xs = [r["train_seconds"] / 60 if timed else r["step"] for r in points]
    fig = _new_figure(7.5, 3.8)
    ax = fig.add_subplot(1, 1, 1)
    protocols = list(dict.fromkeys(p for r in points for p in r["protocols"]))
    for j, p in enumerate(protocols):
        pts = [(x, 100 * r["protocols"][p]["linear_top1"]) for x, r in zip(xs, points) if p in r["protocols"]]
        ax.plot(*zip(*pts), marker="o", ms=4, lw=1.3, color=f"C{j}", label=p)
    for name, style in (("raw_pixels", "--"), ("random_init", ":")):
        if name in refs and refs[name].get("protocols"):
            best = _best_linear(refs[name])
            ax.axhline(best, color="k", ls=style, lw=1, label=f"{name.replace('_', ' ')}, best ({best:.1f}%)")
    ax.set_xlabel("training minutes" if timed else "step")
    ax.set_ylabel("linear top-1 (%)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    _style(ax)
    return _save_png(fig, path)
