"""initspec benchmarks: run with `tox -e bench` (or `python bench/run.py`), never as timed tests.

Every figure is a ratio measured in one run, so machine noise largely cancels:

1. statistics overhead per sample, relative to the framework's own generation time, over a
   full `initspec check` at default settings (target <= 0.5x);
2. minimum detectable std error per CPU-second (power 0.99, alpha 1e-4), initspec's variance
   test vs the method PyTorch's own tests use (scipy `kstest` per tensor, pass if p > 1e-4)
   (target: initspec's detectable error >= 10x smaller);
3. wall time of `initspec check torch` against the time to import torch (target <= import + 10 s);
4. peak memory auditing a 2^31-element float32 tensor, beyond the tensor (target <= 512 MiB);
5. the scaling law: time and memory against sample count, number of entries, tensor size.

The framework is torch when installed, else numpy (said in the output).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from scipy import optimize, stats

HERE = Path(__file__).resolve().parent
ALPHA, POWER = 1e-4, 0.99


def _framework() -> str:
    try:
        import torch  # noqa: F401
    except ImportError:
        return "numpy"
    return "torch"


def _python(code: str, env: dict | None = None) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, **(env or {})})
    return out.stdout.strip().splitlines()[-1]


# 1 -------------------------------------------------------------------------------------
def overhead(framework: str) -> dict:
    """initspec's time per sample beyond the framework's draws, over a full default check."""
    import initspec

    t0 = time.perf_counter()
    report = initspec.check_framework(framework)
    wall = time.perf_counter() - t0
    draw = sum(r.timing.get("draw", 0.0) for r in report.results)
    total = sum(r.timing.get("total", 0.0) for r in report.results)
    n = sum(int(r.observed.get("n", 0) or 0) for r in report.results)
    return {"framework": framework, "results": len(report.results), "samples": n, "draw_s": draw,
            "stats_s": total - draw, "ratio": (total - draw) / draw, "wall_s": wall,
            "ns_per_sample_draw": draw / n * 1e9, "ns_per_sample_stats": (total - draw) / n * 1e9}


# 2 -------------------------------------------------------------------------------------
def _target(framework: str):
    """normal(std=0.05) as the framework draws it, on one thread (CPU time is what is compared)."""
    if framework == "torch":
        import torch

        torch.set_num_threads(1)
        return "torch.nn.init:normal_(0.0, 0.05)", "torch"

    def draw(rng, shape, dtype):
        return rng.standard_normal(shape, dtype=np.float32) * np.float32(0.05)

    return draw, "numpy"


def power_per_second(framework: str) -> dict:
    """CPU time per sample of each method, and the std error each detects in one CPU-second."""
    import initspec
    from initspec.engine import stats as st
    from initspec.frameworks.manifest import Case
    from initspec.frameworks.target import entry_for as _entry_for

    target, convention = _target(framework)
    n = 10**7
    t0 = time.process_time()
    report = initspec.check(target, convention=convention, scheme="normal(std=0.05)", shapes=["1000,1000"],
                            samples=n)
    t_initspec = (time.process_time() - t0) / report.results[0].observed["n"]
    assert report.ok, report.results[0].tests

    _, draw = _entry_for(target, "normal(std=0.05)", convention, "torch", ["1000,1000"], ["float32"])
    law = stats.norm(0, 0.05)
    case = Case((1000, 1000))
    t0 = time.process_time()
    for seed in range(5):  # torch's test_nn: kstest on each tensor
        stats.kstest(draw(case, "float32", seed).reshape(-1), law.cdf)
    t_pytorch = (time.process_time() - t0) / 5e6

    def e_variance(seconds: float, per_sample: float) -> float:
        n = int(seconds / per_sample)
        return optimize.brentq(lambda e: st.variance_power(n, 3.0, ALPHA, e) - POWER, 1e-6, 0.9)

    def ks_distance(e: float) -> float:
        x = np.linspace(-6, 6, 120_001)
        return float(np.abs(stats.norm.cdf(x) - stats.norm.cdf(x / (1 - e))).max())

    c = stats.kstwobign.isf(ALPHA) + stats.norm.isf(1 - POWER) / 2  # the bound that sizes initspec's KS

    def e_ks(seconds: float, per_sample: float) -> float:
        need = c / math.sqrt(seconds / per_sample)
        return optimize.brentq(lambda e: ks_distance(e) - need, 1e-6, 0.9)

    e1, e2 = e_variance(1.0, t_initspec), e_ks(1.0, t_pytorch)
    t1 = st.samples_for_power(3.0, ALPHA) * t_initspec
    t2 = (c / ks_distance(0.01)) ** 2 * t_pytorch
    return {"ns_per_sample_initspec": t_initspec * 1e9, "ns_per_sample_pytorch_method": t_pytorch * 1e9,
            "detectable_std_error_1cpu_s_initspec": e1, "detectable_std_error_1cpu_s_pytorch_method": e2,
            "ratio": e2 / e1, "cpu_s_for_1pct_initspec": t1, "cpu_s_for_1pct_pytorch_method": t2,
            "time_ratio": t2 / t1}


# 3 -------------------------------------------------------------------------------------
def check_wall(framework: str) -> dict:
    mod = "torch" if framework == "torch" else "numpy"
    imports = []
    for _ in range(3):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", f"import {mod}"], check=True)
        imports.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "initspec", "check", framework, "-q"], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    return {"framework": framework, "import_s": min(imports), "check_s": wall, "exit": proc.returncode,
            "summary": proc.stdout.strip().splitlines()[-1] if proc.stdout else proc.stderr[-200:]}


# 6 -------------------------------------------------------------------------------------
#: framework run -> (tox env whose interpreter has it, the module whose import is timed, KERAS_BACKEND)
RUNS = {"numpy": ("core", "numpy", None), "torch": ("torch", "torch", None),
        "tensorflow": ("tensorflow", "tensorflow", None), "jax": ("jax", "jax", None), "flax": ("flax", "flax", None),
        "keras-jax": ("keras-jax", "keras", "jax"), "keras-tensorflow": ("keras-tensorflow", "keras", "tensorflow"),
        "keras-torch": ("keras-torch", "keras", "torch")}

#: one large float32 draw through the framework's own sampler, timed after a warm-up draw
_BULK = {
    "numpy": "import numpy as np; r = np.random.default_rng(0)\n"
             "def go(i): r.standard_normal(N, dtype=np.float32)",
    "torch": "import torch; x = torch.empty(N)\ndef go(i): x.normal_()",
    "tensorflow": "import tensorflow as tf\ndef go(i): tf.random.normal((N,)).numpy()",
    "jax": "import jax; f = jax.jit(lambda k: jax.random.normal(k, (N,)))\n"
           "def go(i): f(jax.random.key(i)).block_until_ready()",
    "keras": "import keras\ndef go(i): keras.ops.convert_to_numpy(keras.random.normal((N,), seed=i))",
}
_BULK["flax"] = _BULK["jax"]
_BULK_RUN = """
import time
N = 10_000_000
{setup}
go(0)
best = min(((time.perf_counter(), go(i), time.perf_counter()) for i in (1, 2, 3)), key=lambda t: t[2] - t[0])
print((best[2] - best[0]) / N * 1e9)
"""


def _interpreter(run: str, given: dict[str, str]) -> str | None:
    if run in given:
        return given[run]
    path = HERE.parent / ".tox" / RUNS[run][0] / "bin" / "python"
    return str(path) if path.exists() else None


def framework_speed(run: str, python: str) -> dict:
    """One full `initspec check F` in F's interpreter: wall, import, draw time per value, bulk per value."""
    _, module, backend = RUNS[run]
    framework = run.split("-")[0]
    env = {**os.environ, "PYTHONPATH": str(HERE.parent), **({"KERAS_BACKEND": backend} if backend else {})}
    imports = []
    for _ in range(3):
        t0 = time.perf_counter()
        subprocess.run([python, "-c", f"import {module}"], check=True, env=env, capture_output=True)
        imports.append(time.perf_counter() - t0)
    bulk = float(subprocess.run([python, "-c", _BULK_RUN.format(setup=_BULK[framework])], check=True, env=env,
                                capture_output=True, text=True).stdout.split()[-1])
    import tempfile

    row = {"run": run, "python": python, "import_s": min(imports), "bulk_ns_per_value": bulk}
    with tempfile.TemporaryDirectory(prefix="initspec-bench-") as tmp:
        env["INITSPEC_JAX_CACHE"] = str(Path(tmp) / "jax-cache")  # cold, then warm (JAX's compilations kept)
        for when in ("cold", "warm"):
            out = Path(tmp) / f"{when}.json"
            t0 = time.perf_counter()
            proc = subprocess.run([python, "-m", "initspec", "check", framework, "-q", "--json", str(out)], env=env,
                                  capture_output=True, text=True)
            wall = time.perf_counter() - t0
            doc = json.loads(out.read_text())
            res = doc["results"]
            draw = sum(r["timing"].get("draw", 0.0) for r in res)
            total = sum(r["timing"].get("total", 0.0) for r in res)
            n = sum(r["observed"].get("n", 0) for r in res if isinstance(r["observed"].get("n"), int))
            row[when] = {"exit": proc.returncode, "summary": proc.stdout.strip().splitlines()[-1:], "check_s": wall,
                         "draw_s": draw, "stats_s": total - draw, "values": n, "draw_ns_per_value": draw / n * 1e9,
                         "ratio": draw / n * 1e9 / bulk, "paths": doc.get("paths", {})}
    return row


def speed_table(rows: list[dict]) -> str:
    """The README's table: per run, the paths, draw time per value against bulk, statistics against
    draws, wall against import + 30 s."""
    lines = ["| run | paths | bulk ns/value | draw ns/value cold / warm | ratio cold / warm (target) | "
             "statistics / draws cold / warm | wall cold / warm (import) | <= import + 30 s |",
             "|---|---|---|---|---|---|---|---|"]
    for d in rows:
        c, w = d["cold"], d["warm"]
        target = "<= 5x" if d["run"] in ("jax", "flax", "keras-jax", "tensorflow") else "info"
        paths = ", ".join(f"{p} {k}" for p, k in c["paths"].items())
        met = "/".join("yes" if x["check_s"] <= d["import_s"] + 30 else "NO" for x in (c, w))
        lines.append(f"| {d['run']} | {paths} | {d['bulk_ns_per_value']:.1f} | {c['draw_ns_per_value']:.0f} / "
                     f"{w['draw_ns_per_value']:.0f} | {c['ratio']:.0f}x / {w['ratio']:.0f}x ({target}) | "
                     f"{c['stats_s'] / c['draw_s']:.2f}x / {w['stats_s'] / w['draw_s']:.2f}x | "
                     f"{c['check_s']:.0f} s / {w['check_s']:.0f} s ({d['import_s']:.1f} s) | {met} |")
    return "\n".join(lines)


def table_from(path: str) -> None:
    """Print the speed table of a saved ``--frameworks`` run."""
    print(speed_table(json.loads(Path(path).read_text())["frameworks"]))


# 4, 5 ----------------------------------------------------------------------------------
_AUDIT = """
import json, time, numpy as np, initspec

def status(key):  # kB, from the kernel's own accounting
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])

def big(rng, shape, dtype):
    x = rng.standard_normal(shape, dtype=np.float32)
    x *= np.float32(0.01)
    return x

initspec.check(big, scheme="normal(std=0.01)", shapes=[[64, 64]], samples=1000)  # warm every import
base = status("VmRSS")
open("/proc/self/clear_refs", "w").write("5")  # reset the peak (VmHWM) to the current RSS
t0 = time.perf_counter()
rep = initspec.check(big, scheme="normal(std=0.01)", shapes=[SHAPE], samples=SAMPLES)
wall = time.perf_counter() - t0
r = rep.results[0]
print(json.dumps({"verdict": r.verdict, "n": r.observed.get("n"), "wall_s": wall, "base_kib": base,
                  "peak_kib": status("VmHWM")}))
"""


def audit(shape: tuple[int, ...], samples: int | None = None) -> dict:
    out = _python(_AUDIT.replace("SHAPE", repr(list(shape))).replace("SAMPLES", repr(samples)))
    d = json.loads(out)
    tensor_mib = math.prod(shape) * 4 / 2**20
    d["tensor_mib"] = tensor_mib
    d["beyond_tensor_mib"] = (d["peak_kib"] - d["base_kib"]) / 1024 - tensor_mib
    return d


def entries_scaling(framework: str) -> list[dict]:
    """One run over the first k entries of the manifest, k = 1, 4, 16."""
    from initspec.engine.runner import run
    from initspec.frameworks.manifest import load_manifest, manifest_path

    entries = load_manifest(manifest_path(framework)).entries
    rows = []
    for k in (1, 4, 16):
        t0 = time.perf_counter()
        results = run(entries[:k], framework=framework)
        rows.append({"entries": k, "results": len(results), "wall_s": time.perf_counter() - t0})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip-memory", action="store_true", help="skip the 2^31-element audit (8 GiB)")
    ap.add_argument("--json", default=str(HERE / "results.json"))
    ap.add_argument("--frameworks", default="",
                    help=f"comma-separated runs ({', '.join(RUNS)}, or all): a full `initspec check` each, in the "
                    "interpreter of its tox env (.tox/ENV/bin/python) unless --python RUN=PATH; only these figures")
    ap.add_argument("--python", action="append", default=[], metavar="RUN=PATH", help="the interpreter of a run")
    ap.add_argument("--table", metavar="JSON", help="print the speed table of a saved --frameworks run, run nothing")
    args = ap.parse_args()
    if args.table:
        table_from(args.table)
        return
    if args.frameworks:
        given = dict(kv.split("=", 1) for kv in args.python)
        runs = list(RUNS) if args.frameworks == "all" else args.frameworks.split(",")
        rows = []
        for run in runs:
            python = _interpreter(run, given)
            if python is None:
                print(f"{run}: no interpreter (.tox/{RUNS[run][0]} missing; give --python {run}=PATH)")
                continue
            rows.append(framework_speed(run, python))
            print(json.dumps(rows[-1]), flush=True)
        print(speed_table(rows))
        Path(args.json).write_text(json.dumps({"frameworks": rows}, indent=2) + "\n")
        print(f"\nall figures: {args.json}")
        return
    fw = _framework()
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"initspec benchmarks on {machine}; framework {fw}\n")
    out: dict = {"machine": machine, "framework": fw}

    out["overhead"] = o = overhead(fw)
    out["power"] = p = power_per_second(fw)
    out["wall"] = w = check_wall(fw)
    out["scaling_samples"] = [audit((1000, 100), n) for n in (10**5, 10**6, 10**7)]
    out["scaling_tensor"] = [audit(s, 10**5) for s in ((1 << 10, 1 << 10), (1 << 12, 1 << 12), (1 << 14, 1 << 14))]
    out["scaling_entries"] = entries_scaling(fw)
    if not args.skip_memory:
        out["memory"] = m = audit((1 << 16, 1 << 15))
    rows = [
        ("statistics overhead / generation time", f"{o['ratio']:.2f}x ({o['ns_per_sample_stats']:.1f} vs "
         f"{o['ns_per_sample_draw']:.1f} ns/sample, {o['samples']:,} samples)", "<= 0.5x", o["ratio"] <= 0.5),
        ("detectable std error in 1 CPU-s: PyTorch method / initspec",
         f"{p['ratio']:.1f}x ({p['detectable_std_error_1cpu_s_pytorch_method']:.2%} vs "
         f"{p['detectable_std_error_1cpu_s_initspec']:.2%})", ">= 10x", p["ratio"] >= 10),
        ("CPU time to detect a 1% std error: PyTorch method / initspec",
         f"{p['time_ratio']:.0f}x ({p['cpu_s_for_1pct_pytorch_method']:.2f} vs {p['cpu_s_for_1pct_initspec']:.3f} s)",
         "(info)", None),
        (f"`initspec check {fw}` wall time", f"{w['check_s']:.1f} s (import {w['import_s']:.1f} s; {w['summary']})",
         f"<= import + 10 s = {w['import_s'] + 10:.1f} s", w["check_s"] <= w["import_s"] + 10 and w["exit"] == 0),
    ]
    if not args.skip_memory:
        rows.append(("peak memory beyond a 2^31-element float32 tensor",
                     f"{m['beyond_tensor_mib']:.0f} MiB (tensor {m['tensor_mib']:.0f} MiB, {m['wall_s']:.0f} s)",
                     "<= 512 MiB", m["beyond_tensor_mib"] <= 512))
    print("| figure | measured | target | met |\n|---|---|---|---|")
    for name, value, target, met in rows:
        print(f"| {name} | {value} | {target} | {'—' if met is None else 'yes' if met else 'NO'} |")
    print("\nscaling: samples per shape (1000x100 tensors)")
    print("| samples | wall s | beyond-tensor MiB |\n|---|---|---|")
    for d in out["scaling_samples"]:
        print(f"| {d['n']:,} | {d['wall_s']:.2f} | {d['beyond_tensor_mib']:.0f} |")
    print("\nscaling: tensor size (100,000-value samples)")
    print("| elements | wall s | beyond-tensor MiB |\n|---|---|---|")
    for d in out["scaling_tensor"]:
        print(f"| {int(d['tensor_mib'] * 2**20 / 4):,} | {d['wall_s']:.2f} | {d['beyond_tensor_mib']:.0f} |")
    print("\nscaling: manifest entries (default settings, one check per entry)")
    print("| entries | wall s |\n|---|---|")
    for d in out["scaling_entries"]:
        print(f"| {d['entries']} | {d['wall_s']:.1f} |")
    Path(args.json).write_text(json.dumps(out, indent=2, default=str) + "\n")
    print(f"\nall figures: {args.json}")


if __name__ == "__main__":
    main()
