"""Scale of the traced audit: ``initspec audit --trace`` on the transformers configs of Llama-3.1-405B,
Llama-3-70B and GPT-2 124M, each in its own process: wall time and peak RSS (the child's own
``ru_maxrss``, read by a wrapper process that runs nothing else), beside the import a build needs
anyway (initspec's command line, torch, transformers and the model's module).

Targets (issue 19) on 2 cores: 405B <= 60 s and <= 2 GiB peak; GPT-2 <= import + 2 s.

    python bench/trace.py [--out bench/trace.json] [--repeat 3]
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

# transformers configs of the public checkpoints (config.json of meta-llama/Llama-3.1-405B,
# meta-llama/Meta-Llama-3-70B, openai-community/gpt2), the sizes that decide the parameters' shapes
TARGETS = {
    "Llama-3.1-405B": "hf:llama(num_hidden_layers=126, hidden_size=16384, num_attention_heads=128, "
                      "num_key_value_heads=8, intermediate_size=53248, vocab_size=128256)",
    "Llama-3-70B": "hf:llama(num_hidden_layers=80, hidden_size=8192, num_attention_heads=64, "
                   "num_key_value_heads=8, intermediate_size=28672, vocab_size=128256)",
    "GPT-2 124M": "hf:gpt2",
}
#: what any build of these models imports: the command line, torch, transformers and the model's module
IMPORTS = {
    "Llama-3.1-405B": "import initspec.cli, initspec.audit.run, torch, transformers; transformers.LlamaForCausalLM",
    "Llama-3-70B": "import initspec.cli, initspec.audit.run, torch, transformers; transformers.LlamaForCausalLM",
    "GPT-2 124M": "import initspec.cli, initspec.audit.run, torch, transformers; transformers.GPT2LMHeadModel",
}

_CHILD = """
import resource, subprocess, sys, time
t0 = time.perf_counter()
code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
wall = time.perf_counter() - t0
print(wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, code)
"""


def measure(cmd: list[str]) -> dict[str, float]:
    """Wall time and peak RSS of ``cmd`` run alone in a fresh wrapper process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", _CHILD, *cmd], capture_output=True, text=True, env=env, check=True)
    wall, rss_kb, code = out.stdout.split()
    return {"wall_s": round(float(wall), 3), "peak_rss_mib": round(int(rss_kb) / 1024, 1), "exit": int(code)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "bench" / "trace.json"))
    ap.add_argument("--repeat", type=int, default=3, help="runs per model; the median is reported")
    args = ap.parse_args()
    load0 = os.getloadavg()  # other work on the machine: wall times and the import baseline move with it
    rows = []
    for name, target in TARGETS.items():
        runs, imports, traces = [], [], []
        json_path = Path("/tmp") / f"initspec-bench-trace-{os.getpid()}.json"
        for _ in range(args.repeat):
            imports.append(measure([sys.executable, "-c", IMPORTS[name]]))
            runs.append(measure([sys.executable, "-m", "initspec", "audit", "--trace", target,
                                 "--json", str(json_path)]))
            doc = json.loads(json_path.read_text())
            traces.append(doc["timing"])
        json_path.unlink()
        trace_s = sorted(t["trace"] for t in traces)[len(traces) // 2]
        after_s = sorted(t["trace"] + t["analyse"] for t in traces)[len(traces) // 2]
        med = sorted(runs, key=lambda r: r["wall_s"])[len(runs) // 2]
        imp = sorted(imports, key=lambda r: r["wall_s"])[len(imports) // 2]
        n_params = sum(len(r["members"]) for r in doc["results"])
        elements = sum(len(r["members"]) * _prod(r["shape"]) for r in doc["results"])
        rows.append({"model": name, "target": target, "wall_s": med["wall_s"], "peak_rss_mib": med["peak_rss_mib"],
                     "import_s": imp["wall_s"], "import_rss_mib": imp["peak_rss_mib"],
                     "beyond_import_s": round(med["wall_s"] - imp["wall_s"], 3),
                     # in the audit's own process: the traced build and reduction, then the groups and verdicts
                     "trace_s": round(trace_s, 3), "trace_and_analyse_s": round(after_s, 3), "exit": med["exit"],
                     "groups": len(doc["results"]), "parameters": n_params, "elements": elements,
                     "float32_bytes_gib": round(elements * 4 / 2**30, 1),
                     "runs": runs, "imports": imports, "audit_timings": traces})
        print(f"{name:16s} {med['wall_s']:7.2f} s  {med['peak_rss_mib']:7.1f} MiB  (import {imp['wall_s']:.2f} s; "
              f"trace {trace_s:.2f} s, + groups {after_s - trace_s:.2f} s; {n_params} parameters, "
              f"{elements / 1e9:.1f}e9 values)", flush=True)
    import torch
    import transformers

    out = {"what": "initspec audit --trace TARGET, one process per run, median of --repeat",
           "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                       "load_average_at_start": load0, "load_average_at_end": os.getloadavg()},
           "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
           "targets": {"Llama-3.1-405B": "<= 60 s and <= 2 GiB peak", "GPT-2 124M": "<= import + 2 s"},
           "date": time.strftime("%Y-%m-%d"), "results": rows}
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


def _prod(shape: list[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


if __name__ == "__main__":
    main()
