"""Batched vs eager draws of the Keras ``keras`` convention (issue 13), on the backend
KERAS_BACKEND names (jax or tensorflow: the backends with a ``many``).

For every entry of adapters/keras.toml whose drawer has ``many``, every case and the chosen
dtype, in one process: the eager draw time per value (``--eager`` draws), the first ``many`` call
(trace + compile + one batch) and the steady ``many`` time per value (``--repeat`` batches of B
rows, B = min(1000, 4M // values per draw): the runner's cap on one call), against one bulk draw
of 10M values of the same dtype (``keras.random.normal``: one backend op).

    KERAS_BACKEND=jax PYTHONPATH=$PWD /work/main/.tox/keras-jax/bin/python bench/batched_keras.py
    KERAS_BACKEND=tensorflow PYTHONPATH=$PWD /work/main/.tox/keras-tensorflow/bin/python bench/batched_keras.py

Prints one line per (entry, case) and the totals; ``--json`` writes them.

``--plan`` instead replays the draws ``initspec check keras`` makes (the runner's plan: every
keras-convention job of a continuous law, ceil(n / values per draw) draws capped at max_draws,
n from samples_for_power at the run's per-test alpha), once eagerly and once through ``many`` in
batches of at most 4M values padded to one length per job (``many`` compiles a batch or draws
it eagerly, whichever it expects to be cheaper), and prints the totals.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import numpy as np

from initspec.frameworks import keras as binding
from initspec.frameworks.manifest import load_manifest
from initspec.frameworks.target import parse_target

ROOT = Path(__file__).resolve().parent.parent
CAP = 1 << 22  # values per many() call: the runner's bound


def _bulk_ns(dtype: str, n: int = 10_000_000, repeat: int = 3) -> float:
    """Best of `repeat` single keras.random.normal calls of n values, ns per value."""
    import keras

    best = math.inf
    for k in range(repeat + 1):
        t0 = time.perf_counter()
        binding.to_numpy(keras.random.normal((n,), dtype=dtype, seed=k))
        if k:  # the first call pays the backend's one-off set-up
            best = min(best, time.perf_counter() - t0)
    return best * 1e9 / n


def _bits_equal(a: np.ndarray, b: np.ndarray) -> float:
    """Share of the values of two same-shape arrays that are bit-identical."""
    return float(np.mean(a.view(f"u{a.dtype.itemsize}") == b.view(f"u{b.dtype.itemsize}")))


def _max_ulps(a: np.ndarray, b: np.ndarray) -> int:
    """Largest distance of two same-shape float arrays in units in the last place."""
    ints = {2: np.int16, 4: np.int32, 8: np.int64}[a.dtype.itemsize]
    return int(np.abs(a.view(ints).astype(np.int64) - b.view(ints).astype(np.int64)).max())


def plan_run(eager_too: bool = True, many_too: bool = True, always: bool = False) -> dict:
    """The draws of a default ``initspec check keras`` run (keras convention, continuous laws)."""
    from initspec.engine import stats as st
    from initspec.engine.runner import DEFAULT_ALPHA, DEFAULT_MAX_DRAWS, DEFAULT_SEED, _fan_law_groups, plan
    from initspec.engine.runner import draw_seed as run_seed

    entries = load_manifest(ROOT / "adapters" / "keras.toml").entries
    all_jobs = plan(entries, DEFAULT_SEED, "keras")
    m = sum(j.planned_tests for j in all_jobs) + len(_fan_law_groups(all_jobs))
    alpha_each = DEFAULT_ALPHA / m
    drawers: dict = {}
    totals = {"jobs": 0, "values": 0, "eager_s": 0.0, "many_s": 0.0, "many_calls": 0, "no_many_jobs": 0}
    for job in all_jobs:
        if job.entry.convention != "keras" or job.reference is None or job.scheme.kind == "orthogonal":
            continue
        if job.entry.id not in drawers:
            target = parse_target(job.entry.call)
            drawers[job.entry.id] = binding.prepare(target.load(), target, "keras")
        draw = drawers[job.entry.id]
        size = math.prod(job.case.shape)
        n_req = st.samples_for_power(job.reference.kurtosis, alpha_each)
        draws = min(job.entry.max_draws or DEFAULT_MAX_DRAWS, -(-n_req // size))
        seeds = [run_seed(DEFAULT_SEED, f"{job.case.label}-{job.dtype}", k) for k in range(draws)]
        totals["jobs"] += 1
        totals["values"] += draws * size
        row = {"job": job.result.id, "size": size, "draws": draws, "eager_s": 0.0, "many_s": None}
        totals.setdefault("per_job", []).append(row)
        if eager_too:
            t0 = time.perf_counter()
            for s in seeds:
                draw(job.case, job.dtype, s)
            row["eager_s"] = time.perf_counter() - t0
            totals["eager_s"] += row["eager_s"]
        if not hasattr(draw, "many"):
            totals["no_many_jobs"] += 1
            continue
        if not many_too:
            continue
        b = max(1, min(draws, CAP // size))
        t0 = time.perf_counter()
        for i in range(0, draws, b):
            chunk = seeds[i:i + b]
            (draw.many.compiled if always else draw.many)(job.case, job.dtype,
                                                          chunk + [chunk[-1]] * (b - len(chunk)))  # padded
            totals["many_calls"] += 1
        row["many_s"] = time.perf_counter() - t0
        row["way"] = "compiled" if always else draw.many.way[(tuple(job.case.shape), job.dtype, b)]
        totals["many_s"] += row["many_s"]
        totals[f"{row['way']}_jobs"] = totals.get(f"{row['way']}_jobs", 0) + 1
    from initspec.frameworks import jax as jax_binding

    shared = getattr(jax_binding, "_SHARED", {}) if binding.backend() == "jax" else {}
    totals["jax_programs"] = len(shared)
    totals["jax_compiles"] = sum(fn._cache_size() for fn in shared.values())  # one per (program, batch length)
    totals["loadavg"] = os.getloadavg()
    return totals


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--eager", type=int, default=20, help="eager draws timed per case")
    ap.add_argument("--repeat", type=int, default=3, help="steady many() batches timed per case")
    ap.add_argument("--only", default="", help="comma-separated entry ids (default: every entry with many)")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--plan", action="store_true", help="replay a default check run's draws (eager and batched)")
    ap.add_argument("--no-eager", action="store_true", help="with --plan: the batched draws only")
    ap.add_argument("--eager-only", action="store_true", help="with --plan: the eager draws only")
    ap.add_argument("--always-compile", action="store_true", help="with --plan: many.compiled, never eager")
    args = ap.parse_args()
    if args.plan:
        t = plan_run(eager_too=not args.no_eager, many_too=not args.eager_only, always=args.always_compile)
        print(f"{binding.backend()}: {t['jobs']} jobs, {t['values'] / 1e6:.1f}M values; eager {t['eager_s']:.1f} s "
              f"({t['eager_s'] * 1e9 / t['values']:.0f} ns/v); many {t['many_s']:.1f} s "
              f"({t['many_s'] * 1e9 / t['values']:.1f} ns/v, {t['many_calls']} calls, compile included; "
              f"{t.get('compiled_jobs', 0)} jobs compiled, {t.get('eager_jobs', 0)} drawn eagerly); "
              f"jobs without many {t['no_many_jobs']}; jax programs {t['jax_programs']}, compiles {t['jax_compiles']}; "
              f"load average {' '.join(f'{x:.2f}' for x in t['loadavg'])}")
        if args.json:
            args.json.write_text(json.dumps(t, indent=1))
        return
    only = {s for s in args.only.split(",") if s}
    rows = []
    for entry in load_manifest(ROOT / "adapters" / "keras.toml").entries:
        if entry.convention != "keras" or (only and entry.id not in only) or args.dtype not in entry.dtypes:
            continue
        target = parse_target(entry.call)
        draw = binding.prepare(target.load(), target, "keras")
        if not hasattr(draw, "many"):
            continue
        for case in entry.cases:
            size = math.prod(case.shape)
            b = max(1, min(1000, CAP // size))
            seeds = list(range(1000, 1000 + b))
            t0 = time.perf_counter()
            for s in range(args.eager):
                draw(case, args.dtype, s)
            eager = (time.perf_counter() - t0) * 1e9 / (args.eager * size)
            t0 = time.perf_counter()
            try:
                draw.many.compiled(case, args.dtype, seeds)
            except Exception as exc:  # noqa: BLE001 - reported, as the runner falls back
                rows.append({"entry": entry.id, "shape": list(case.shape), "error": f"{type(exc).__name__}: {exc}"})
                continue
            first = time.perf_counter() - t0
            t0 = time.perf_counter()
            for k in range(args.repeat):
                draw.many.compiled(case, args.dtype, [s + k * b for s in seeds])
            steady = (time.perf_counter() - t0) * 1e9 / (args.repeat * b * size)
            compile_s = first - steady * b * size / 1e9
            batch = draw.many.compiled(case, args.dtype, seeds)[:4]
            same = np.stack([draw(case, args.dtype, s) for s in seeds[:4]])
            exact = _bits_equal(batch, same)
            row = {"entry": entry.id, "shape": list(case.shape), "batch": b, "eager_ns": eager, "many_ns": steady,
                   "compile_s": compile_s, "bits_equal": exact, "max_ulps": _max_ulps(batch, same)}
            rows.append(row)
            print(f"{entry.id:44s} {'x'.join(map(str, case.shape)):>12s} B={b:4d}  eager {eager:8.1f} ns/v  "
                  f"many {steady:6.2f} ns/v  compile {compile_s:5.2f} s  ({eager / steady:5.0f}x)  "
                  f"bits equal {exact:.4f} (max {row['max_ulps']} ulp)", flush=True)
    bulk = _bulk_ns(args.dtype)
    ok = [r for r in rows if "error" not in r]
    summary = {"backend": binding.backend(), "dtype": args.dtype, "bulk_normal_ns": bulk, "cases": len(ok),
               "bits_equal": float(np.mean([r["bits_equal"] for r in ok])),
               "median_eager_ns": float(np.median([r["eager_ns"] for r in ok])),
               "median_many_ns": float(np.median([r["many_ns"] for r in ok])),
               "median_compile_s": float(np.median([r["compile_s"] for r in ok])),
               "total_compile_s": float(sum(r["compile_s"] for r in ok)),
               "loadavg": os.getloadavg()}
    print(f"{binding.backend()} {args.dtype}: {len(ok)} cases; median eager {summary['median_eager_ns']:.1f} ns/v, "
          f"many {summary['median_many_ns']:.2f} ns/v, bulk keras.random.normal(10M) {bulk:.2f} ns/v; "
          f"compile median {summary['median_compile_s']:.2f} s, total {summary['total_compile_s']:.1f} s; "
          f"values bit-equal to eager {summary['bits_equal']:.4f}; "
          f"load average {' '.join(f'{x:.2f}' for x in summary['loadavg'])}")
    for r in rows:
        if "error" in r:
            print(f"{r['entry']} {r['shape']}: many raised {r['error'][:200]}")
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
