"""False alarms and power of the whole engine, measured (a script, not a timed test).

    python bench/calibration.py --runs 40 --power-seeds 20 --jobs 2 --json calibration.json

1. False alarms: ``--runs`` clean ``initspec check numpy`` runs (in-process API, seeds
   ``--seed + k * 1_000_003``; every draw's seed is hashed from it) at the default alpha; a run with
   any failed result is a false alarm (expected count: at most runs x alpha = runs x 1e-4).
   Finer than that count: each run's smallest p-value times its number of p-valued tests
   (Bonferroni), which under the null is <= t with probability <= t; how many runs came
   within 0.1 or 0.01 of a false alarm is reported.  (Pooling the p-values of a run and
   testing them for uniformity would be wrong: many numpy entries are the same law drawn by
   the same sampler from the same seeds, so the p-values of one run are far from independent.)
2. Power: every mutant of tests/mutants (and the near misses: a std off by 1% or 0.5%,
   the resolution the default sample size is sized for) at default settings on
   ``--power-seeds`` seeds: the rate at which it is rejected, the rate at which every
   failed result's top diagnosis is its mistake id, and the false-alarm count of its
   correct twin on the same seeds.
"""

from __future__ import annotations

import os

# One BLAS thread per process: --jobs fills the cores, and on a loaded machine a threaded
# OpenBLAS dot of 10^4 values was measured at ~15 ms instead of ~3 us.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import json
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

SEED_STEP = 1_000_003


def clean_run(seed: int) -> dict[str, Any]:
    """One full numpy self-test run: failures and every p-value by check name."""
    from initspec.api import check_framework

    t0 = time.process_time()
    report = check_framework("numpy", seed=seed, xfails=False)
    tests = {id(t): (t, r.id) for r in report.results for t in r.tests if t.p_value is not None}
    smallest, where = min(((t.p_value, f"{t.name} of {rid}") for t, rid in tests.values()), default=(1.0, ""))
    failed = [f"{r.id}: {r.diagnosis[0]['id'] if r.diagnosis else r.error}" for r in report.results
              if r.verdict in ("fail", "error")]
    return {"seed": seed, "failed": failed, "results": len(report.results), "tests": len(tests),
            "adjusted_min_p": min(1.0, smallest * len(tests)), "min_p_test": where,
            "cpu": time.process_time() - t0}


def mutant_run(name: str, seed: int) -> dict[str, Any]:
    """One mutant and its twin at default settings on one seed."""
    from mutants import MUTANTS, NEAR_MISSES

    import initspec

    warnings.simplefilter("ignore")
    m = next(m for m in MUTANTS + NEAR_MISSES if m.name == name)
    t0 = time.process_time()
    report = initspec.check(m.broken(), seed=seed, **m.check_kwargs())
    failed = [r for r in report.results if r.verdict == "fail"]
    tops = sorted({r.diagnosis[0]["id"] for r in failed if r.diagnosis})
    twin = initspec.check(m.twin(), seed=seed, **m.check_kwargs())
    return {"name": name, "mistake": m.mistake, "seed": seed, "detected": bool(failed),
            "named": bool(failed) and tops == [m.mistake], "tops": tops, "twin_failed": not twin.ok,
            "cpu": time.process_time() - t0}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=20, help="clean full numpy runs")
    ap.add_argument("--power-seeds", type=int, default=10, help="seeds per mutant")
    ap.add_argument("--seed", type=int, default=0, help="base seed")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes")
    ap.add_argument("--json", type=Path, default=None, help="write every measurement here")
    args = ap.parse_args(argv)

    from mutants import MUTANTS, NEAR_MISSES

    table = MUTANTS + NEAR_MISSES
    start = time.time()
    with ProcessPoolExecutor(args.jobs) as pool:
        clean = list(pool.map(clean_run, [args.seed + k * SEED_STEP for k in range(args.runs)]))
        jobs = [(m.name, args.seed + (k + 1) * SEED_STEP) for m in table for k in range(args.power_seeds)]
        power = list(pool.map(mutant_run, *zip(*jobs, strict=True)))
    wall = time.time() - start
    cpu = sum(c["cpu"] for c in clean) + sum(p["cpu"] for p in power)

    alarms = [c for c in clean if c["failed"]]
    print(f"false alarms: {len(alarms)} of {args.runs} clean `initspec check numpy` runs "
          f"({clean[0]['results'] if clean else 0} results each, alpha 1e-4: expected {args.runs * 1e-4:.3f})")
    for c in alarms:
        print(f"  seed {c['seed']}: {'; '.join(c['failed'])}")
    adj = sorted(c["adjusted_min_p"] for c in clean)
    if adj:
        low = min(clean, key=lambda c: c["adjusted_min_p"])
        print(f"smallest p x tests per run ({clean[0]['tests']} p-valued tests): median {adj[len(adj) // 2]:.3g}, "
              f"smallest {adj[0]:.3g} ({low['min_p_test']}, seed {low['seed']}); runs below 0.1: "
              f"{sum(a < 0.1 for a in adj)}, below 0.01: {sum(a < 0.01 for a in adj)} (at most "
              f"{0.1 * len(adj):.1f} and {0.01 * len(adj):.2f} expected)")

    print(f"\npower at default settings, {args.power_seeds} seeds per mutant:")
    print("| mistake | mutant | rejected | named first | twin false alarms |")
    print("|---|---|---|---|---|")
    rows = []
    for m in table:
        rs = [p for p in power if p["name"] == m.name]
        det, named = sum(p["detected"] for p in rs), sum(p["named"] for p in rs)
        twin = sum(p["twin_failed"] for p in rs)
        other = sorted({t for p in rs if not p["named"] for t in p["tops"]})
        note = f" (else: {', '.join(other)})" if other else ""
        print(f"| {m.mistake} | {m.name} | {det}/{len(rs)} | {named}/{len(rs)}{note} | {twin}/{len(rs)} |")
        rows.append({"mistake": m.mistake, "mutant": m.name, "runs": len(rs), "rejected": det, "named": named,
                     "twin_false_alarms": twin, "other_tops": other})
    print(f"\n{args.runs} clean runs + {len(power)} mutant/twin pairs: {cpu / 60:.1f} min CPU, "
          f"{wall / 60:.1f} min wall on {args.jobs} processes")
    if args.json:
        args.json.write_text(json.dumps({"runs": args.runs, "seed": args.seed, "power_seeds": args.power_seeds,
                                         "false_alarms": [{"seed": c["seed"], "failed": c["failed"]} for c in alarms],
                                         "adjusted_min_p": {c["seed"]: c["adjusted_min_p"] for c in clean},
                                         "power": rows, "cpu_seconds": cpu, "wall_seconds": wall}, indent=2) + "\n")


if __name__ == "__main__":
    main()
