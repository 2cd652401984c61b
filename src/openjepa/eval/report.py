"""Self-contained HTML report for a training run directory.

``write_report(run_dir)`` reads whatever a run left behind and writes a single
``report.html`` next to it: no JavaScript, no external URLs, every figure an
inline base64 PNG.  Inputs (all optional; missing parts get a short note):

* ``config.yaml``   -- shown verbatim (HTML-escaped) in a collapsible block;
  ``meta.git_sha`` and the method name go into the header.
* ``metrics.jsonl`` -- one JSON object per line, training and online-eval rows
  mixed; unparsable lines (e.g. a truncated last line) are skipped.
* ``eval.json``     -- final evaluation ``{"rows": [...], "warnings": [...]}``.
* ``embedding.npz`` -- ``z`` (N, D), ``y`` (N,), optional ``class_names``;
  drawn as a 2-D PCA scatter.

Figures use :class:`matplotlib.figure.Figure` with the Agg canvas directly, so
neither pyplot nor the global matplotlib backend is touched.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import json
import math
import os
import pathlib
import tempfile
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

__all__ = ["write_report"]

REPORT_NAME = "report.html"

# Keys with a dedicated figure; any other numeric key lands in "Other metrics".
_SCHEDULE_KEYS = ("lr", "wd", "ema", "samples_per_s")
_COLLAPSE_KEYS = ("rankme", "feat_std", "mean_cos")
_PROBE_KEYS = ("knn_top1", "linear_top1")
_KNOWN_KEYS = {"step", "epoch", "loss", "collapsed", *_SCHEDULE_KEYS, *_COLLAPSE_KEYS, *_PROBE_KEYS}
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


# --------------------------------------------------------------------------- #
# Loading
# --------------------------------------------------------------------------- #
def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def _read_metrics(path: pathlib.Path) -> list[dict]:
    rows: list[dict] = []
    if not path.is_file():
        return rows
    with open(path, "r", encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except (json.JSONDecodeError, ValueError):
                continue  # truncated / corrupt line
            if isinstance(obj, dict):
                rows.append(obj)
    return rows


def _read_config(path: pathlib.Path) -> tuple[str | None, dict]:
    if not path.is_file():
        return None, {}
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        import yaml  # type: ignore

        data = yaml.safe_load(text)
    except Exception:  # pyyaml missing or invalid YAML: still show the text
        data = None
    return text, data if isinstance(data, dict) else {}


def _read_eval(path: pathlib.Path) -> tuple[dict | None, str | None]:
    if not path.is_file():
        return None, None
    try:
        data = json.loads(path.read_text(encoding="utf-8", errors="replace"))
    except (json.JSONDecodeError, ValueError) as e:
        return None, f"eval.json could not be parsed ({e.__class__.__name__}: {e})."
    if not isinstance(data, dict):
        return None, "eval.json is not a JSON object."
    return data, None


def _read_embedding(path: pathlib.Path) -> tuple[dict | None, str | None]:
    if not path.is_file():
        return None, None
    try:
        with np.load(path, allow_pickle=False) as npz:
            if "z" not in npz.files:
                return None, "embedding.npz has no array 'z'."
            z = np.asarray(npz["z"], dtype=np.float64)
            y = np.asarray(npz["y"]) if "y" in npz.files else None
            names = None
            if "class_names" in npz.files:
                try:
                    names = [str(n) for n in np.asarray(npz["class_names"]).ravel().tolist()]
                except Exception:  # e.g. object array (needs pickle): ignore
                    names = None
    except Exception as e:
        return None, f"embedding.npz could not be read ({e.__class__.__name__}: {e})."
    if z.ndim != 2 or z.shape[0] < 2 or z.shape[1] < 1:
        return None, f"embedding.npz: 'z' has unusable shape {tuple(z.shape)}."
    if y is not None and (y.ndim != 1 or y.shape[0] != z.shape[0]):
        y = None
    return {"z": z, "y": y, "class_names": names}, None


# --------------------------------------------------------------------------- #
# Series helpers
# --------------------------------------------------------------------------- #
def _steps(rows: Sequence[Mapping]) -> list[float]:
    """Step of every row; a row without a numeric step inherits the previous
    row's step (the row index when no row has a step at all)."""
    if not any(_is_num(r.get("step")) for r in rows):
        return [float(i) for i in range(len(rows))]
    out: list[float] = []
    last = 0.0
    for r in rows:
        s = r.get("step")
        if _is_num(s) and math.isfinite(float(s)):
            last = float(s)
        out.append(last)
    return out


def _series(rows: Sequence[Mapping], steps: Sequence[float], key: str) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for s, r in zip(steps, rows):
        v = r.get(key)
        if _is_num(v) and math.isfinite(float(v)):
            xs.append(s)
            ys.append(float(v))
    x, y = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    if x.size > 1 and np.any(np.diff(x) < 0):  # resumed runs: keep plots monotone
        order = np.argsort(x, kind="stable")
        x, y = x[order], y[order]
    return x, y


def _collapse_flags(rows: Sequence[Mapping], steps: Sequence[float]) -> list[tuple[float, bool]]:
    flags = [(s, bool(r["collapsed"])) for s, r in zip(steps, rows) if "collapsed" in r]
    flags.sort(key=lambda t: t[0])
    return flags


def _fmt_step(s: float) -> str:
    return str(int(s)) if float(s).is_integer() else f"{s:g}"


def _lookup(d: Any, *path: str) -> Any:
    for p in path:
        if not isinstance(d, Mapping) or p not in d:
            return None
        d = d[p]
    return d


def _feature_dim(eval_data: dict | None, config: dict, emb: dict | None) -> int | None:
    candidates = [
        _lookup(eval_data, "dim"),
        _lookup(config, "dim"),
        _lookup(eval_data, "embed_dim"),
        _lookup(config, "embed_dim"),
        _lookup(config, "model", "dim"),
        _lookup(config, "model", "embed_dim"),
        _lookup(config, "encoder", "dim"),
        _lookup(config, "encoder", "embed_dim"),
    ]
    for c in candidates:
        if _is_num(c) and c >= 1:
            return int(c)
    if emb is not None:
        return int(emb["z"].shape[1])
    return None


# --------------------------------------------------------------------------- #
# Figures
# --------------------------------------------------------------------------- #
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


def _fig_loss(rows, steps) -> str | None:
    x, y = _series(rows, steps, "loss")
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


def _fig_schedules(rows, steps) -> str | None:
    series = [(k, *_series(rows, steps, k)) for k in _SCHEDULE_KEYS]
    series = [s for s in series if s[1].size > 0]
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


def _fig_collapse(rows, steps, dim: int | None) -> str | None:
    series = [(k, *_series(rows, steps, k)) for k in _COLLAPSE_KEYS]
    series = [s for s in series if s[1].size > 0]
    if not series:
        return None
    flags = _collapse_flags(rows, steps)
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


def _fig_probe(rows, steps) -> str | None:
    series = [(k, *_series(rows, steps, k)) for k in _PROBE_KEYS]
    series = [s for s in series if s[1].size > 0]
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


def _other_keys(rows) -> list[str]:
    keys: list[str] = []
    seen = set(_KNOWN_KEYS)
    for r in rows:
        for k, v in r.items():
            if k not in seen and _is_num(v) and math.isfinite(float(v)):
                seen.add(k)
                keys.append(k)
    return keys


def _fig_other(rows, steps) -> tuple[str | None, list[str]]:
    keys = _other_keys(rows)
    series = [(k, *_series(rows, steps, k)) for k in keys]
    series = [s for s in series if s[1].size > 0]
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


def _fig_pca(emb: dict) -> tuple[str | None, str | None]:
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
            if names is not None and _is_num(c) and float(c).is_integer() and 0 <= int(c) < len(names):
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


# --------------------------------------------------------------------------- #
# HTML
# --------------------------------------------------------------------------- #
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,Helvetica,Arial,sans-serif;
 margin:1.5em auto;max-width:1100px;padding:0 1em;color:#222;line-height:1.4}
h1{margin-bottom:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
.meta td{padding:.1em 1em .1em 0}.meta td:first-child{color:#666}
.banner{background:#c62828;color:#fff;padding:1em 1.3em;border-radius:6px;margin:1em 0;
 font-size:1.05em}.banner strong{font-size:1.3em;display:block;margin-bottom:.3em}
.banner ul{margin:.3em 0 0 1.2em;padding:0}
table.eval{border-collapse:collapse;font-size:.92em}
table.eval th,table.eval td{border:1px solid #ccc;padding:.3em .7em;text-align:right}
table.eval th{background:#f3f3f3}table.eval td:first-child,table.eval th:first-child{text-align:left}
td.bad{color:#c62828;font-weight:bold}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #eee}
figcaption{color:#555;font-size:.9em}
.note{color:#777;font-style:italic}
pre{background:#f7f7f7;padding:.8em;overflow-x:auto;font-size:.85em}
"""


def _e(v: Any) -> str:
    return html.escape(str(v), quote=True)


def _fmt_cell(key: str, v: Any) -> tuple[str, str]:
    """Return (text, css class) for one eval-table cell."""
    if v is None:
        return "&mdash;", ""
    if isinstance(v, (bool, np.bool_)):
        if key == "collapsed":
            return ("YES", "bad") if v else ("no", "")
        return ("yes" if v else "no"), ""
    if _is_num(v):
        f = float(v)
        if not math.isfinite(f):
            return _e(f), ""
        if ("top1" in key or "top5" in key or key.endswith("_acc")) and 0.0 <= f <= 1.0:
            return f"{100 * f:.1f}%", ""
        if isinstance(v, (int, np.integer)):
            return str(int(v)), ""
        return f"{f:.4g}", ""
    if isinstance(v, (dict, list)):
        return _e(json.dumps(v, default=str)), ""
    return _e(v), ""


def _eval_table(rows: list) -> str:
    rows = [r for r in rows if isinstance(r, dict)]
    if not rows:
        return '<p class="note">eval.json has no rows.</p>'
    preferred = ["name", "linear_top1", "knn_top1", "rankme", "feat_std", "mean_cos", "collapsed"]
    present = {k for r in rows for k in r}
    cols = [k for k in preferred if k in present]
    for r in rows:
        for k in r:
            if k not in cols:
                cols.append(k)
    out = ['<table class="eval"><thead><tr>']
    out += [f"<th>{_e(c)}</th>" for c in cols]
    out.append("</tr></thead><tbody>")
    for r in rows:
        out.append("<tr>")
        for c in cols:
            text, cls = _fmt_cell(c, r.get(c))
            out.append(f'<td class="{cls}">{text}</td>' if cls else f"<td>{text}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _figure_html(b64: str, title: str, caption: str = "") -> str:
    cap = f"<figcaption>{_e(caption)}</figcaption>" if caption else ""
    return f'<figure><img alt="{_e(title)}" src="data:image/png;base64,{b64}">{cap}</figure>'


def _method_name(config: dict) -> str | None:
    for path in (("method",), ("meta", "method"), ("method", "name"), ("model", "method")):
        v = _lookup(config, *path)
        if isinstance(v, (str, int, float)) and not isinstance(v, bool):
            return str(v)
    return None


def _banner(rows, steps, eval_data: dict | None) -> str:
    collapsed_steps = [s for s, c in _collapse_flags(rows, steps) if c]
    warnings = []
    if eval_data is not None:
        w = eval_data.get("warnings")
        if isinstance(w, str):
            w = [w]
        if isinstance(w, list):
            warnings = [str(x) for x in w if str(x).strip()]
        eval_collapsed = [
            str(r.get("name", f"row {i}"))
            for i, r in enumerate(eval_data.get("rows") or [])
            if isinstance(r, dict) and r.get("collapsed") is True
        ]
    else:
        eval_collapsed = []
    if not (collapsed_steps or warnings or eval_collapsed):
        return ""
    items: list[str] = []
    if collapsed_steps:
        head = f"WARNING: representation collapse detected at step {_fmt_step(collapsed_steps[0])}"
        shown = ", ".join(_fmt_step(s) for s in collapsed_steps[:20])
        more = f" (+{len(collapsed_steps) - 20} more)" if len(collapsed_steps) > 20 else ""
        items.append(f"Online evaluation flagged collapse at step(s): {shown}{more}.")
    elif eval_collapsed:
        head = "WARNING: representation collapse detected in the final evaluation"
    else:
        head = f"WARNING: the final evaluation reported {len(warnings)} warning(s)"
    if eval_collapsed:
        items.append("Final evaluation rows marked collapsed: " + ", ".join(eval_collapsed) + ".")
    items += warnings
    lis = "".join(f"<li>{_e(x)}</li>" for x in items)
    return f'<div class="banner" id="collapse-warning" role="alert"><strong>{_e(head)}</strong><ul>{lis}</ul></div>'


def _section(title: str, body: Iterable[str]) -> str:
    return f"<h2>{_e(title)}</h2>\n" + "\n".join(body)


def _note(text: str) -> str:
    return f'<p class="note">{_e(text)}</p>'


def _build_html(run_dir: pathlib.Path) -> str:
    metrics_path = run_dir / "metrics.jsonl"
    rows = _read_metrics(metrics_path)
    steps = _steps(rows)
    config_text, config = _read_config(run_dir / "config.yaml")
    eval_data, eval_err = _read_eval(run_dir / "eval.json")
    emb, emb_err = _read_embedding(run_dir / "embedding.npz")
    dim = _feature_dim(eval_data, config, emb)

    # ---- header -------------------------------------------------------------
    run_name = run_dir.resolve().name or str(run_dir)
    meta: list[tuple[str, str]] = []
    method = _method_name(config)
    if method:
        meta.append(("method", method))
    sha = _lookup(config, "meta", "git_sha") or _lookup(config, "git_sha")
    if sha:
        meta.append(("git sha", str(sha)))
    versions = _lookup(config, "meta", "versions")
    if isinstance(versions, Mapping) and versions:
        meta.append(("versions", ", ".join(f"{k} {v}" for k, v in versions.items())))
    if rows:
        meta.append(("final step", _fmt_step(max(steps))))
        lx, ly = _series(rows, steps, "loss")
        if ly.size:
            meta.append(("final loss", f"{ly[-1]:.5g} (step {_fmt_step(lx[-1])})"))
    meta.append(("metrics rows", str(len(rows))))
    if dim:
        meta.append(("feature dim", str(dim)))
    meta.append(("report written", _dt.datetime.now().astimezone().isoformat(timespec="seconds")))
    meta_html = '<table class="meta">' + "".join(
        f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in meta
    ) + "</table>"

    parts: list[str] = [f"<h1>Run report: {_e(run_name)}</h1>", meta_html, _banner(rows, steps, eval_data)]

    # ---- final evaluation ---------------------------------------------------
    ev: list[str] = []
    if eval_data is None:
        ev.append(_note(eval_err or "No eval.json found: final evaluation omitted."))
    else:
        ev.append(_eval_table(list(eval_data.get("rows") or [])))
        extra = {k: v for k, v in eval_data.items() if k not in ("rows", "warnings")}
        if extra:
            ev.append("<details><summary>other eval.json fields</summary><pre>"
                      + _e(json.dumps(extra, indent=2, default=str)) + "</pre></details>")
    parts.append(_section("Final evaluation", ev))

    # ---- training curves ----------------------------------------------------
    tr: list[str] = []
    if not metrics_path.is_file():
        tr.append(_note("No metrics.jsonl found: training curves omitted."))
    elif not rows:
        tr.append(_note("metrics.jsonl is empty (or has no parsable rows): training curves omitted."))
    else:
        loss = _fig_loss(rows, steps)
        tr.append(_figure_html(loss, "loss vs step", "Training loss vs step "
                               "(log scale when all values are positive).") if loss else _note("No loss values logged."))
        sched = _fig_schedules(rows, steps)
        if sched:
            tr.append(_figure_html(sched, "schedules", "Learning rate, weight decay, EMA momentum and throughput."))
        else:
            tr.append(_note("No lr / wd / ema values logged."))
    parts.append(_section("Training", tr))

    # ---- collapse diagnostics -----------------------------------------------
    co: list[str] = []
    col = _fig_collapse(rows, steps, dim) if rows else None
    if col:
        cap = "RankMe, feature std and mean pairwise cosine from online evaluation; red = flagged collapsed."
        if dim:
            cap += f" Dashed green line: healthy feature std 1/sqrt({dim})."
        co.append(_figure_html(col, "collapse diagnostics", cap))
    else:
        co.append(_note("No online collapse diagnostics (rankme / feat_std / mean_cos) logged."))
    probe = _fig_probe(rows, steps) if rows else None
    if probe:
        co.append(_figure_html(probe, "online probe accuracy", "Online k-NN / linear probe top-1 accuracy vs step."))
    else:
        co.append(_note("No online probe accuracy (knn_top1) logged."))
    parts.append(_section("Representation health", co))

    # ---- other numeric metrics ----------------------------------------------
    if rows:
        other, dropped = _fig_other(rows, steps)
        if other:
            plotted = [k for k in _other_keys(rows) if k not in dropped]
            body = [_figure_html(other, "other metrics", "Other numeric keys in metrics.jsonl: "
                                 + ", ".join(plotted) + ".")]
            if dropped:
                body.append(_note("Not plotted: " + ", ".join(dropped)))
            parts.append(_section("Other metrics", body))

    # ---- embedding ----------------------------------------------------------
    em: list[str] = []
    if emb is None:
        em.append(_note(emb_err or "No embedding.npz found: PCA picture omitted."))
    else:
        pca, err = _fig_pca(emb)
        em.append(_figure_html(pca, "embedding PCA", "First two principal components of the "
                               "(centred) embeddings, coloured by class.") if pca else _note(err or ""))
    parts.append(_section("Embedding", em))

    # ---- config -------------------------------------------------------------
    if config_text is None:
        cfg = [_note("No config.yaml found.")]
    else:
        cfg = [f"<details><summary>config.yaml</summary><pre>{_e(config_text)}</pre></details>"]
    parts.append(_section("Configuration", cfg))

    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{_e(run_name)} - openjepa report</title><style>{_CSS}</style></head>\n<body>\n"
        + "\n".join(p for p in parts if p)
        + "\n</body></html>\n"
    )


def write_report(run_dir: str | pathlib.Path) -> pathlib.Path:
    """Write ``run_dir/report.html`` (atomically) and return its path.

    Every input file is optional; absent or unreadable parts are replaced by a
    short note.  Raises ``NotADirectoryError`` if ``run_dir`` is not a directory.
    """
    run_dir = pathlib.Path(run_dir)
    if not run_dir.is_dir():
        raise NotADirectoryError(f"not a run directory: {run_dir}")
    text = _build_html(run_dir)
    out = run_dir / REPORT_NAME
    fd, tmp = tempfile.mkstemp(prefix=".report.", suffix=".html.tmp", dir=run_dir)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return out
