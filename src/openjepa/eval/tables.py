"""Number and table formatting for the run report: numeric checks, step labels, HTML escaping and eval.json's
rows as an HTML table."""

from __future__ import annotations

import html
import json
import math
from typing import Any

import numpy as np


def is_num(v: Any) -> bool:
    """A real number (Python or NumPy), booleans excluded."""
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def fmt_step(s: float) -> str:
    return str(int(s)) if float(s).is_integer() else f"{s:g}"


def esc(v: Any) -> str:
    """HTML-escaped text of any value (quotes too, so it is safe in attributes)."""
    return html.escape(str(v), quote=True)


def _fmt_cell(key: str, v: Any) -> tuple[str, str]:
    """Return (text, css class) for one eval-table cell."""
    if v is None:
        return "&mdash;", ""
    if isinstance(v, (bool, np.bool_)):
        if key == "collapsed":
            return ("YES", "bad") if v else ("no", "")
        return ("yes" if v else "no"), ""
    if is_num(v):
        f = float(v)
        if not math.isfinite(f):
            return esc(f), ""
        if ("top1" in key or "top5" in key or key.endswith("_acc")) and 0.0 <= f <= 1.0:
            return f"{100 * f:.1f}%", ""
        if isinstance(v, (int, np.integer)):
            return str(int(v)), ""
        return f"{f:.4g}", ""
    if isinstance(v, (dict, list)):
        return esc(json.dumps(v, default=str)), ""
    return esc(v), ""


def eval_table(rows: list) -> str:
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
    out += [f"<th>{esc(c)}</th>" for c in cols]
    out.append("</tr></thead><tbody>")
    for r in rows:
        out.append("<tr>")
        for c in cols:
            text, cls = _fmt_cell(c, r.get(c))
            out.append(f'<td class="{cls}">{text}</td>' if cls else f"<td>{text}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)
