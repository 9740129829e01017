"""What running the audit's model in a child process costs: ``initspec audit`` with and without ``--no-isolate``.

    python bench/isolation.py [--reps 3] [--out bench/isolation.json]

Each run is a fresh ``python -m initspec audit TARGET --seeds 2`` (runs alternate between the two
modes, so a machine's load drifts over both alike).  Measured per run: wall seconds, CPU seconds of
the whole process tree (user + sys of every descendant, from ``getrusage(RUSAGE_CHILDREN)``), and
the peak of the summed resident memory of the process tree (``/proc/PID/status`` VmRSS of the
command and its descendants, polled every 20 ms).  The JSON holds every run and the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGETS = [
    ("a Linear pair (4 parameters)", "hostile_models:two_linears"),
    ("a 4-layer GPT, d=64 (tests/audit/torch_models)", "torch_models:tiny_gpt()"),
    ("transformers GPT2LMHeadModel, 2 layers, d=64", "hf:gpt2(n_layer=2, n_embd=64, n_head=2)"),
]


def _tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return out


def _rss_mib(pids: list[int]) -> float:
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/status") as f:
                total += next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
        except (OSError, StopIteration):
            pass
    return total / 1024


def run(args: list[str]) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests" / "audit")]),
           "OPENBLAS_NUM_THREADS": "1"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "initspec", "audit", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, cwd=ROOT)
    peak = 0.0
    while proc.poll() is None:
        peak = max(peak, _rss_mib(_tree(proc.pid)))
        time.sleep(0.02)
    wall = time.perf_counter() - t0
    _, err = proc.communicate()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"audit {' '.join(args)} failed ({proc.returncode}): {err.decode()[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": round(wall, 3), "cpu_s": round(cpu, 3), "peak_rss_mib": round(peak, 1), "rc": proc.returncode}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "bench" / "isolation.json"))
    a = ap.parse_args()
    rows = []
    for label, target in TARGETS:
        if target.startswith("hf:"):
            try:
                import transformers  # noqa: F401
            except ImportError:
                continue
        runs: dict[str, list[dict]] = {"isolated": [], "in_process": []}
        run([target, "--seeds", "2"])  # warm the file cache once
        for _ in range(a.reps):
            runs["isolated"].append(run([target, "--seeds", "2"]))
            runs["in_process"].append(run([target, "--seeds", "2", "--no-isolate"]))
        med = {mode: {k: statistics.median(r[k] for r in rs) for k in ("wall_s", "cpu_s", "peak_rss_mib")}
               for mode, rs in runs.items()}
        cost = {k: round(med["isolated"][k] - med["in_process"][k], 3) for k in ("wall_s", "cpu_s", "peak_rss_mib")}
        rows.append({"model": label, "target": target, "runs": runs, "median": med, "isolation_cost": cost})
        print(f"{label}: isolated {med['isolated']}, in-process {med['in_process']}, cost {cost}", flush=True)
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    doc = {"command": "python bench/isolation.py " + " ".join(sys.argv[1:]), "python": platform.python_version(),
           "machine": f"{platform.machine()}, {os.cpu_count()} cores, load average at the end {' '.join(load)}",
           "reps": a.reps, "rows": rows}
    Path(a.out).write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
