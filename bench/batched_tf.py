"""The TensorFlow binding's batched draw (``draw.many``, tf.function) against its eager draw and
one bulk draw, for every entry, shape and dtype of adapters/tensorflow.toml.

    PYTHONPATH=$PWD .tox/tensorflow/bin/python bench/batched_tf.py [--values 262144] [--eager 8]
        [--min-rows N] [--json bench/batched_tf.json]

Per job (entry x shape x dtype): one batch of ``ceil(values / size)`` rows with the runner's own
seeds (``runner.draw_seed``), drawn twice through ``many``: the first call's excess over the second
is the compile (trace + graph instantiation) time (on the "eager stateless" path: the one-row
scratch-graph check), the second the steady draw time.  The eager
draw is timed on the first ``--eager`` seeds of the batch, whose rows are also compared bit for
bit.  ``--min-rows 1`` sends every batch through tf.function (by default batches under the
binding's ``_MIN_ROWS`` take the eager loop); each job's row names the path.  The bulk reference
is one ``tf.random.normal((10_000_000,))`` of the same dtype.  All figures come from one process;
the load average is printed with them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def _bulk(tf, dtype: str, n: int = 10_000_000) -> float:
    """ns a value of one bulk ``tf.random.normal`` draw (best of 3, after one warm-up)."""
    tf.random.normal((1000,), dtype=dtype, seed=1)
    best = math.inf
    for k in range(3):
        t = time.perf_counter()
        tf.random.normal((n,), dtype=dtype, seed=k + 2).numpy()
        best = min(best, time.perf_counter() - t)
    return best / n * 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--values", type=int, default=1 << 18, help="values per batch (default 2^18)")
    ap.add_argument("--eager", type=int, default=8, help="eager draws timed and compared per job")
    ap.add_argument("--only", default=None, help="substring of the entry ids to run")
    ap.add_argument("--min-rows", type=int, default=None, help="override the binding's _MIN_ROWS")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    import tensorflow as tf

    from initspec.engine.runner import draw_seed
    from initspec.frameworks import tensorflow as binding
    from initspec.frameworks.manifest import load_manifest
    from initspec.frameworks.target import parse_target

    if args.min_rows is not None:
        binding._MIN_ROWS = args.min_rows

    rows_out = []
    tot = {"many_s": 0.0, "compile_s": 0.0, "eager_s": 0.0, "many_values": 0, "eager_values": 0,
           "rows_compared": 0, "rows_equal": 0, "jobs": 0, "fallbacks": 0, "compiled_jobs": 0}
    for entry in load_manifest(ROOT / "adapters" / "tensorflow.toml").entries:
        if args.only and args.only not in entry.id:
            continue
        target = parse_target(entry.call)
        draw = binding.prepare(target.load(), target, "tf")
        for case in entry.cases:
            for dtype in entry.dtypes:
                size = math.prod(case.shape)
                n = max(2, math.ceil(args.values / size))
                seeds = [draw_seed(0, f"{case.label}-{dtype}", k) for k in range(n)]
                row = {"entry": entry.id, "shape": list(case.shape), "dtype": dtype, "rows": n}
                tot["jobs"] += 1
                try:
                    t0 = time.perf_counter()
                    draw.many(case, dtype, seeds)
                    t1 = time.perf_counter()
                    x = draw.many(case, dtype, seeds)
                    t2 = time.perf_counter()
                except Exception as e:  # noqa: BLE001 - a fallback is a result here
                    row["fallback"] = f"{type(e).__name__}: {str(e).splitlines()[0][:120]}"
                    tot["fallbacks"] += 1
                    rows_out.append(row)
                    print(f"{entry.id:58s} {case.shape!s:16s} {dtype:9s} falls back: {row['fallback']}")
                    continue
                k = min(args.eager, n)
                t3 = time.perf_counter()
                eager = [draw(case, dtype, s) for s in seeds[:k]]
                t4 = time.perf_counter()
                equal = sum(np.array_equal(x[i].view(np.uint8), e.view(np.uint8)) for i, e in enumerate(eager))
                row.update(path=draw.path, compile_s=(t1 - t0) - (t2 - t1), many_ns=(t2 - t1) / x.size * 1e9,
                           eager_ns=(t4 - t3) / (k * size) * 1e9, rows_equal=int(equal), rows_compared=k)
                tot["many_s"] += t2 - t1
                if draw.path == "tf.function":  # elsewhere the first call's excess is the one-row check
                    tot["compile_s"] += row["compile_s"]
                    tot["compiled_jobs"] += 1
                tot["eager_s"] += t4 - t3
                tot["many_values"] += x.size
                tot["eager_values"] += k * size
                tot["rows_compared"] += k
                tot["rows_equal"] += int(equal)
                rows_out.append(row)
                print(f"{entry.id:50s} {case.shape!s:15s} {dtype:8s} {draw.path:11s} compile {row['compile_s']:.3f} s  "
                      f"many {row['many_ns']:7.1f} ns/v  eager {row['eager_ns']:8.1f} ns/v  bits {equal}/{k}",
                      flush=True)
    bulk = {d: _bulk(tf, d) for d in ("float32", "bfloat16", "float16")}
    summary = {
        "jobs": tot["jobs"], "fallbacks": tot["fallbacks"], "compiled_jobs": tot["compiled_jobs"],
        "min_rows": binding._MIN_ROWS,
        "many_ns_per_value": tot["many_s"] / max(tot["many_values"], 1) * 1e9,
        "eager_ns_per_value": tot["eager_s"] / max(tot["eager_values"], 1) * 1e9,
        "bulk_normal_ns_per_value": bulk,
        "compile_s_total": tot["compile_s"],
        "compile_s_per_compiled_job": tot["compile_s"] / max(tot["compiled_jobs"], 1),
        "rows_bit_equal": f"{tot['rows_equal']}/{tot['rows_compared']}",
        "loadavg": os.getloadavg(), "tensorflow": tf.__version__,
    }
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "jobs": rows_out}, indent=1) + "\n")


if __name__ == "__main__":
    main()
