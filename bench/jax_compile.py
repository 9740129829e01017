"""What one compilation of a batched JAX draw costs under XLA options (run in the jax env).

For each option set: `jit(vmap)` of jax.nn.initializers' samplers over a batch of seeds at the
default shapes, compiled once each; prints milliseconds to lower, to compile, and ns per value
of the compiled draw (best of 3), and writes bench/jax_compile.json.  The options initspec uses
are `initspec.frameworks.jax.COMPILER_OPTIONS`.

    .tox/jax/bin/python bench/jax_compile.py
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

OPTIONS = {
    "XLA default (level 3, fusion emitters)": {},
    "level 1": {"xla_backend_optimization_level": 1},
    "level 1, loop emitters (initspec)": {"xla_backend_optimization_level": 1, "xla_cpu_use_fusion_emitters": False},
    "level 0, loop emitters": {"xla_backend_optimization_level": 0, "xla_cpu_use_fusion_emitters": False},
}
SAMPLERS = ("truncated_normal", "normal", "uniform")
#: default tf-layout shapes and the batch lengths a default check draws them in
CASES = [((128, 512), 64), ((1000, 96), 32), ((5, 5, 3, 8), 1024), ((3, 3, 64, 32), 128), ((7, 8, 16), 1024)]


def measure(options: dict) -> dict:
    lower = compile_ = per_value = 0.0
    n = 0
    for k, sampler in enumerate(SAMPLERS):
        init = jax.nn.initializers.variance_scaling(1.0 + k / 10, "fan_in", sampler)  # never a cached program
        for shape, batch in CASES:
            fn = jax.jit(jax.vmap(lambda s, shape=shape, init=init: init(jax.random.key(s), shape, jnp.float32)),
                         compiler_options=options)
            seeds = np.arange(batch, dtype=np.uint32)
            t0 = time.perf_counter()
            lowered = fn.lower(seeds)
            t1 = time.perf_counter()
            compiled = lowered.compile()
            t2 = time.perf_counter()
            runs = []
            for i in range(3):
                t = time.perf_counter()
                out = compiled(seeds + i).block_until_ready()
                runs.append(time.perf_counter() - t)
            lower, compile_, n = lower + t1 - t0, compile_ + t2 - t1, n + 1
            per_value += min(runs) / out.size
    return {"lower_ms": 1e3 * lower / n, "compile_ms": 1e3 * compile_ / n, "ns_per_value": 1e9 * per_value / n,
            "programs": n}


def main() -> None:
    jax.config.update("jax_platforms", "cpu")
    rows = {}
    print(f"jax {jax.__version__}: {len(SAMPLERS) * len(CASES)} programs per option set, float32")
    print("| XLA options | lower ms | compile ms | draw ns/value |\n|---|---|---|---|")
    for name, options in OPTIONS.items():
        rows[name] = r = {"options": options, **measure(options)}
        print(f"| {name} | {r['lower_ms']:.0f} | {r['compile_ms']:.0f} | {r['ns_per_value']:.1f} |", flush=True)
    out = Path(__file__).resolve().parent / "jax_compile.json"
    out.write_text(json.dumps({"jax": jax.__version__, "rows": rows}, indent=2) + "\n")
    print(f"\n{out}")


if __name__ == "__main__":
    main()
