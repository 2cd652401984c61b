"""Paired comparison of two models of `openjepa bench physics` over one or more result files (issue 4).

    python scripts/physics_compare.py RESULT.json [RESULT.json ...] [--a jepa] [--b pixel] [--merge]

Per property: each model's relative accuracy averaged over the files, the difference and its 95% bootstrap
interval over the test quadruplets (openjepa.bench.physics_scoring.compare). Files scored on different numbers of
quadruplets are compared on the quadruplets they share (the first n test seeds).
--merge: treat the files' ensembles as one larger ensemble per model (its surprise is the mean of all their
members'; openjepa.bench.physics_scoring.merge_results) and compare those. Its training cost is the sum of the files',
over the benchmark's budget: it answers "would more members help", not the benchmark's question.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from openjepa.bench.physics_scoring import compare, merge_results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", nargs="+", type=Path)
    ap.add_argument("--a", default="jepa")
    ap.add_argument("--b", default="pixel")
    ap.add_argument("--merge", action="store_true", help="compare the ensembles of all the files' members")
    args = ap.parse_args()
    try:
        results = [json.loads(p.read_text()) for p in args.results]
        if args.merge:
            results = [merge_results(results, (args.a, args.b))]
            print(f"merged: each model an ensemble of {results[0]['members']} members")
        table = compare(results, args.a, args.b)
    except ValueError as e:
        raise SystemExit(f"physics_compare: {e}")
    print(f"{'property':<12}{args.a:>8}{args.b:>8}{'diff':>8}   95% interval   quadruplets x results")
    for prop, r in table.items():
        lo, hi = r["ci95"]
        print(f"{prop:<12}{r[args.a]:>8.3f}{r[args.b]:>8.3f}{r['difference']:>+8.3f}   [{lo:+.3f}, {hi:+.3f}]   "
              f"{r['n_quads']} x {r['n_results']}")


if __name__ == "__main__":
    main()
