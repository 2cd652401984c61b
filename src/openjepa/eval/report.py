"""The run report: ``write_report(run_dir)`` reads what a run left behind and assembles one self-contained
``report.html`` (no JavaScript, no external URLs, every figure an inline base64 PNG from eval.plots, the
evaluation table from eval.tables). Inputs (all optional; missing parts get a short note):

* ``config.yaml``   -- shown verbatim (HTML-escaped) in a collapsible block;
  ``train.method``, ``meta.git_sha`` and ``meta.versions`` go into the header.
* ``metrics.jsonl`` -- one JSON object per line, training and online-eval rows
  mixed; unparsable lines (e.g. a truncated last line) are skipped.
* ``eval.json``     -- final evaluation ``{"rows": [...], "warnings": [...]}``.
* ``embedding.npz`` -- ``z`` (N, D), ``y`` (N,), optional ``class_names``;
  drawn as a 2-D PCA scatter.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import pathlib
import tempfile
from typing import Any, Iterable, Mapping

import numpy as np

from openjepa.eval.plots import (
    collapse_figure,
    collapse_flags,
    loss_figure,
    metric_series,
    metric_steps,
    other_figure,
    other_keys,
    pca_figure,
    probe_figure,
    schedules_figure,
)
from openjepa.eval.tables import esc, eval_table, fmt_step, is_num
from openjepa.train.logging import read_metrics

__all__ = ["write_report"]

REPORT_NAME = "report.html"


# --------------------------------------------------------------------------- #
# Loading
# --------------------------------------------------------------------------- #
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



def _lookup(d: Any, *path: str) -> Any:
    for p in path:
        if not isinstance(d, Mapping) or p not in d:
            return None
        d = d[p]
    return d


def _feature_dim(eval_data: dict | None, config: dict, emb: dict | None) -> int | None:
    """Width of the evaluated features: eval.json's first row's `dim`, else the embedding's, else `model.dim`."""
    rows = _lookup(eval_data, "rows")
    first = rows[0] if isinstance(rows, list) and rows and isinstance(rows[0], Mapping) else {}
    if is_num(first.get("dim")) and first["dim"] >= 1:
        return int(first["dim"])
    if emb is not None:
        return int(emb["z"].shape[1])
    d = _lookup(config, "model", "dim")
    return int(d) if is_num(d) and d >= 1 else None


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


def _figure_html(b64: str, title: str, caption: str = "") -> str:
    cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return f'<figure><img alt="{esc(title)}" src="data:image/png;base64,{b64}">{cap}</figure>'


def _method_name(config: dict) -> str | None:
    """The run's method: `train.method` of the config.yaml training wrote."""
    v = _lookup(config, "train", "method")
    return v if isinstance(v, str) and v else None


def _banner(rows, steps, eval_data: dict | None) -> str:
    collapsed_steps = [s for s, c in collapse_flags(rows, steps) if c]
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
        head = f"WARNING: representation collapse detected at step {fmt_step(collapsed_steps[0])}"
        shown = ", ".join(fmt_step(s) for s in collapsed_steps[:20])
        more = f" (+{len(collapsed_steps) - 20} more)" if len(collapsed_steps) > 20 else ""
        items.append(f"Online evaluation flagged collapse at step(s): {shown}{more}.")
    elif eval_collapsed:
        head = "WARNING: representation collapse detected in the final evaluation"
    else:
        head = f"WARNING: the final evaluation reported {len(warnings)} warning(s)"
    if eval_collapsed:
        items.append("Final evaluation rows marked collapsed: " + ", ".join(eval_collapsed) + ".")
    items += warnings
    lis = "".join(f"<li>{esc(x)}</li>" for x in items)
    return f'<div class="banner" id="collapse-warning" role="alert"><strong>{esc(head)}</strong><ul>{lis}</ul></div>'


def _section(title: str, body: Iterable[str]) -> str:
    return f"<h2>{esc(title)}</h2>\n" + "\n".join(body)


def _note(text: str) -> str:
    return f'<p class="note">{esc(text)}</p>'


def _build_html(run_dir: pathlib.Path) -> str:
    metrics_path = run_dir / "metrics.jsonl"
    rows = read_metrics(run_dir)
    steps = metric_steps(rows)
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
    sha = _lookup(config, "meta", "git_sha")
    if sha:
        meta.append(("git sha", str(sha)))
    versions = _lookup(config, "meta", "versions")
    if isinstance(versions, Mapping) and versions:
        meta.append(("versions", ", ".join(f"{k} {v}" for k, v in versions.items())))
    if rows:
        meta.append(("final step", fmt_step(max(steps))))
        lx, ly = metric_series(rows, steps, "loss")
        if ly.size:
            meta.append(("final loss", f"{ly[-1]:.5g} (step {fmt_step(lx[-1])})"))
    meta.append(("metrics rows", str(len(rows))))
    if dim:
        meta.append(("feature dim", str(dim)))
    meta.append(("report written", _dt.datetime.now().astimezone().isoformat(timespec="seconds")))
    meta_html = '<table class="meta">' + "".join(
        f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in meta
    ) + "</table>"

    parts: list[str] = [f"<h1>Run report: {esc(run_name)}</h1>", meta_html, _banner(rows, steps, eval_data)]

    # ---- final evaluation ---------------------------------------------------
    ev: list[str] = []
    if eval_data is None:
        ev.append(_note(eval_err or "No eval.json found: final evaluation omitted."))
    else:
        ev.append(eval_table(list(eval_data.get("rows") or [])))
        extra = {k: v for k, v in eval_data.items() if k not in ("rows", "warnings")}
        if extra:
            ev.append("<details><summary>other eval.json fields</summary><pre>"
                      + esc(json.dumps(extra, indent=2, default=str)) + "</pre></details>")
    parts.append(_section("Final evaluation", ev))

    # ---- training curves ----------------------------------------------------
    tr: list[str] = []
    if not metrics_path.is_file():
        tr.append(_note("No metrics.jsonl found: training curves omitted."))
    elif not rows:
        tr.append(_note("metrics.jsonl is empty (or has no parsable rows): training curves omitted."))
    else:
        loss = loss_figure(rows, steps)
        tr.append(_figure_html(loss, "loss vs step", "Training loss vs step "
                               "(log scale when all values are positive).") if loss else _note("No loss values logged."))
        sched = schedules_figure(rows, steps)
        if sched:
            tr.append(_figure_html(sched, "schedules", "Learning rate, weight decay, EMA momentum and throughput."))
        else:
            tr.append(_note("No lr / wd / ema values logged."))
    parts.append(_section("Training", tr))

    # ---- collapse diagnostics -----------------------------------------------
    co: list[str] = []
    col = collapse_figure(rows, steps, dim) if rows else None
    if col:
        cap = "RankMe, feature std and mean pairwise cosine from online evaluation; red = flagged collapsed."
        if dim:
            cap += f" Dashed green line: healthy feature std 1/sqrt({dim})."
        co.append(_figure_html(col, "collapse diagnostics", cap))
    else:
        co.append(_note("No online collapse diagnostics (rankme / feat_std / mean_cos) logged."))
    probe = probe_figure(rows, steps) if rows else None
    if probe:
        co.append(_figure_html(probe, "online probe accuracy", "Online k-NN / linear probe top-1 accuracy vs step."))
    else:
        co.append(_note("No online probe accuracy (knn_top1) logged."))
    parts.append(_section("Representation health", co))

    # ---- other numeric metrics ----------------------------------------------
    if rows:
        other, dropped = other_figure(rows, steps)
        if other:
            plotted = [k for k in other_keys(rows) if k not in dropped]
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
        pca, err = pca_figure(emb)
        em.append(_figure_html(pca, "embedding PCA", "First two principal components of the "
                               "(centred) embeddings, coloured by class.") if pca else _note(err or ""))
    parts.append(_section("Embedding", em))

    # ---- config -------------------------------------------------------------
    if config_text is None:
        cfg = [_note("No config.yaml found.")]
    else:
        cfg = [f"<details><summary>config.yaml</summary><pre>{esc(config_text)}</pre></details>"]
    parts.append(_section("Configuration", cfg))

    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{esc(run_name)} - openjepa report</title><style>{_CSS}</style></head>\n<body>\n"
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
