"""The JAX, Flax and Keras traces at scale: wall time and peak memory of tracing models far larger
than this machine's memory (nothing is allocated), each in a fresh process.

Cases (those whose framework the running env has):

- ``nnx-linear-stack``: 12 ``nnx.Linear(50000, 50000)``: 30e9 float32 parameters, 120 GB;
- ``nnx-llama-70b``: a Llama-3-70B-shaped nnx model (80 blocks, hidden 8192, 64 heads, 8 KV heads,
  intermediate 28672, vocab 128256; RMSNorm, no biases): 70.6e9 parameters, 282 GB in float32;
- ``keras-dense-stack``: 12 Keras ``Dense(50000)`` on a 50000-wide input: 120 GB.

Each case runs ``initspec.audit.trace.<framework>.trace`` in a subprocess and reports the import
time, the trace time and the process's peak RSS (``ru_maxrss``).  Writes bench/trace_jax.json
(merged with the cases other envs wrote).

    PYTHONPATH=$PWD .tox/flax/bin/python bench/trace_jax.py
    PYTHONPATH=$PWD KERAS_BACKEND=jax .tox/keras-jax/bin/python bench/trace_jax.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

_START = time.perf_counter()  # the import time reported includes the framework's (imported just below)

try:  # imported here so that `initspec audit trace_jax:nnx_llama_70b` knows the target is Flax nnx
    import flax.nnx  # noqa: F401
except ImportError:  # the Keras envs run the Keras case only
    pass

OUT = Path(__file__).with_name("trace_jax.json")
CASES = {"nnx-linear-stack": "flax", "nnx-llama-70b": "flax", "keras-dense-stack": "keras"}


def _nnx_linear_stack():
    from flax import nnx

    class Stack(nnx.Module):
        def __init__(self, *, rngs: nnx.Rngs):
            self.layers = nnx.List([nnx.Linear(50_000, 50_000, rngs=rngs) for _ in range(12)])

    return Stack


def _nnx_llama(layers=80, d=8192, heads=64, kv=8, f=28672, vocab=128256):
    from flax import nnx

    hd = d // heads

    class Block(nnx.Module):
        def __init__(self, *, rngs: nnx.Rngs):
            def lin(i, o):
                return nnx.Linear(i, o, use_bias=False, rngs=rngs)
            self.q, self.k, self.v, self.o = lin(d, heads * hd), lin(d, kv * hd), lin(d, kv * hd), lin(heads * hd, d)
            self.gate, self.up, self.down = lin(d, f), lin(d, f), lin(f, d)
            self.ln1, self.ln2 = nnx.RMSNorm(d, rngs=rngs), nnx.RMSNorm(d, rngs=rngs)

    class Llama(nnx.Module):
        def __init__(self, *, rngs: nnx.Rngs):
            self.embed = nnx.Embed(vocab, d, rngs=rngs)
            self.blocks = nnx.List([Block(rngs=rngs) for _ in range(layers)])
            self.norm = nnx.RMSNorm(d, rngs=rngs)
            self.head = nnx.Linear(d, vocab, use_bias=False, rngs=rngs)

    return Llama


def nnx_llama_70b(*, rngs):
    """The Llama-3-70B-shaped nnx model as an audit target: ``initspec audit trace_jax:nnx_llama_70b``."""
    return _nnx_llama()(rngs=rngs)


def run_case(name: str) -> dict:
    import resource

    t0 = _START
    from initspec.audit.targets import AuditTarget

    if CASES[name] == "flax":
        import flax  # noqa: F401

        from initspec.audit.trace.flax import trace

        cls = _nnx_linear_stack() if name == "nnx-linear-stack" else _nnx_llama()

        def factory(**extra):
            return cls(**extra)

        factory.callee = cls
        target = AuditTarget(name, factory, "module", "flax")
        options = {}
    else:
        import keras

        from initspec.audit.trace.keras import trace

        def factory():
            x = inp = keras.Input((50_000,))
            for i in range(12):
                x = keras.layers.Dense(50_000, name=f"fc_{i}")(x)
            return keras.Model(inp, x)

        target = AuditTarget(name, factory)
        options = {}
    t1 = time.perf_counter()
    rec = trace(target, 0, **options)
    t2 = time.perf_counter()
    import math

    size = sum(math.prod(p.shape) for p in rec.params)
    kinds = sorted({t.law.kind for t in rec.traced.values()})
    return {"framework": CASES[name], "params": size, "gb_float32": round(size * 4 / 1e9, 1),
            "import_s": round(t1 - t0, 2), "trace_s": round(t2 - t1, 2),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "laws": kinds, "notes": rec.notes}


def available(framework: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(framework) is not None


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--case":
        print(json.dumps(run_case(sys.argv[2])))
        return
    results = json.loads(OUT.read_text()) if OUT.exists() else {}
    env = {**os.environ, "JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", "cpu")}
    for name, framework in CASES.items():
        if not available(framework):
            continue
        out = subprocess.run([sys.executable, __file__, "--case", name], capture_output=True, text=True, env=env,
                             check=False)
        if out.returncode != 0:
            print(f"{name}: failed\n{out.stderr[-2000:]}")
            continue
        row = json.loads(out.stdout.strip().splitlines()[-1])
        if framework == "keras":
            row["backend"] = os.environ.get("KERAS_BACKEND", "tensorflow")
            name = f"{name} ({row['backend']})"
        results[name] = row
        print(f"{name}: {row['params'] / 1e9:.1f}e9 parameters ({row['gb_float32']} GB float32): import "
              f"{row['import_s']} s, trace {row['trace_s']} s, peak RSS {row['peak_rss_mb']} MB")
    OUT.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
