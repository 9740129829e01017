"""Benchmark of ``initspec audit`` on the default GPT-2 (124M parameters), against building it once.

    python bench/audit.py [--target hf:gpt2] [--out bench/audit_results.json]

Each measurement is its own subprocess, peak memory from ``getrusage(RUSAGE_CHILDREN)`` of that
child alone (maxrss): (1) import torch + transformers and build the model once; (2) the full audit
at default settings (as many seeds as the smallest group needs, each instance released before the
next).  Targets (issue 10): audit time <= 3x (import + one build) per instance, peak memory
<= 1.5x one instance.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

BUILD = """
import time, json
t0 = time.perf_counter()
from initspec.audit.targets import parse_audit_target
t = parse_audit_target({target!r})
import torch
t1 = time.perf_counter()
torch.manual_seed(0)
model = t.factory()
t2 = time.perf_counter()
print(json.dumps({{"import_s": t1 - t0, "build_s": t2 - t1,
                  "params": sum(p.numel() for p in model.parameters())}}))
"""


def child(args: list[str]) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MiB) and stdout of one child process (run alone: the children's
    maxrss is that of the largest child so far, so each figure comes from a fresh interpreter
    launched through this wrapper)."""
    wrapper = ("import resource, subprocess, sys, time, json\n"
               "t = time.perf_counter(); p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
               "w = time.perf_counter() - t\n"
               "r = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024\n"
               "print(json.dumps({'wall': w, 'rss': r, 'rc': p.returncode, 'out': p.stdout, 'err': p.stderr}))\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1"}
    res = json.loads(subprocess.run([sys.executable, "-c", wrapper, *args], capture_output=True, text=True,
                                    env=env, check=True).stdout)
    if res["rc"] not in (0, 1):
        raise SystemExit(f"{' '.join(args)} failed ({res['rc']}): {res['err'][-2000:]}")
    return res["wall"], res["rss"], res["out"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="hf:gpt2")
    ap.add_argument("--out", default=str(ROOT / "bench" / "audit_results.json"))
    a = ap.parse_args()
    wall_b, rss_b, out_b = child([sys.executable, "-c", BUILD.format(target=a.target)])
    build = json.loads(out_b.strip().splitlines()[-1])
    json_path = Path("/tmp") / f"initspec_audit_bench_{os.getpid()}.json"
    wall_a, rss_a, out_a = child([sys.executable, "-m", "initspec", "audit", a.target, "--json", str(json_path)])
    doc = json.loads(json_path.read_text())
    json_path.unlink()
    seeds = len(doc["seeds"])
    import torch  # noqa: F401 - for the version only, after the measurements
    import transformers

    result = {
        "target": a.target, "params": build["params"], "seeds": seeds,
        "one_build": {"wall_s": wall_b, "import_s": build["import_s"], "build_s": build["build_s"],
                      "peak_rss_mib": rss_b},
        "audit": {"wall_s": wall_a, "peak_rss_mib": rss_a, "timing": doc["timing"], "groups": len(doc["results"])},
        "ratios": {"time_per_instance_vs_import_plus_build": wall_a / seeds / wall_b,
                   "peak_rss_vs_one_instance": rss_a / rss_b},
        "targets": {"time_per_instance_vs_import_plus_build": 3.0, "peak_rss_vs_one_instance": 1.5},
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "torch": sys.modules["torch"].__version__, "transformers": transformers.__version__},
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    Path(a.out).write_text(json.dumps(result, indent=2) + "\n")
    r = result["ratios"]
    print(f"{a.target}: {build['params'] / 1e6:.1f}M parameters; import + one build {wall_b:.1f} s, "
          f"peak {rss_b:.0f} MiB")
    print(f"audit ({seeds} instances): {wall_a:.1f} s = {r['time_per_instance_vs_import_plus_build']:.2f}x "
          f"(import + build) per instance (target <= 3); peak {rss_a:.0f} MiB = "
          f"{r['peak_rss_vs_one_instance']:.2f}x one instance (target <= 1.5)")
    print(out_a.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
