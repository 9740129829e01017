"""The drawn evidence: build the model under each seed, one instance in memory at a time, and stream
every parameter into its group's moments, a bounded sample and per-parameter digests.
"""

from __future__ import annotations

import gc
import hashlib
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from initspec.audit.report import FLOATS, Group
from initspec.audit.targets import AuditTarget, BuildError, build_model
from initspec.audit.walkers import Param, walker_for
from initspec.engine import stats as st
from initspec.errors import InputError
from initspec.spec.fans import get_layout
from initspec.spec.reference import build as build_reference

#: values per group kept for identification and the KS test (identify's own default per shape)
SAMPLE_CAP = 200_000
CHUNK = 1 << 22


def digest(x: np.ndarray) -> bytes:
    return hashlib.blake2b(np.ascontiguousarray(x).reshape(-1).view(np.uint8), digest_size=16).digest()


class Builder:
    """Builds instances through the walker; a factory that raises is a BuildError."""

    def __init__(self, target: AuditTarget, options: dict[str, Any]) -> None:
        self.target, self.options = target, options
        self.walker: Any = None
        self.first: Any = None

    def _call(self, fn: Any) -> Any:
        return build_model(self.target.text, fn)

    def detect(self, seed: int) -> None:
        """Find the walker: from the target's kind, or from what one build returns."""
        import importlib

        if self.target.framework:
            fw = self.target.framework
            try:
                self.walker = importlib.import_module(f"initspec.audit.walkers.{fw}")
            except ModuleNotFoundError as e:
                raise InputError(f"target {self.target.text!r}: no {fw} walker ({e.name} is missing)") from None
            return
        seeded = "torch" in sys.modules
        if seeded:  # this build then is the seed's own instance (the torch walker's way)
            sys.modules["torch"].manual_seed(seed)
        obj = self._call(self.target.factory)
        self.walker = walker_for(obj)
        if self.walker is None:
            raise InputError(f"target {self.target.text!r} returned {type(obj).__module__}.{type(obj).__name__}, "
                             "not a torch, Keras, Flax or JAX model")
        if self.walker.FRAMEWORK == "torch" and seeded:  # a factory that imported torch itself built unseeded
            self.first = obj
        else:
            self.walker.release(obj)
        del obj

    def build(self, seed: int) -> Any:
        if self.first is not None:
            model, self.first = self.first, None
            return model
        return self._call(lambda: self.walker.build(self.target.factory, seed, **self.options))


def is_constant(p: Param) -> bool:
    """Every value of the parameter equal (read once more from the first instance, then dropped)."""
    if p.dtype not in FLOATS:
        return False
    try:
        x = np.asarray(p.values())
    except Exception:  # noqa: BLE001 - reported when the values are read for real
        return False
    return bool(x.size) and bool(np.all(x.reshape(-1) == x.reshape(-1)[0]))


def seeds_needed(groups: dict[tuple, Group], alpha_each: float, max_seeds: int) -> int:
    """As many instances as the smallest random group needs for the variance test's power (>= 2:
    the seed check needs two), capped by ``max_seeds``."""
    need = 2
    for g in groups.values():
        if g.dtype not in FLOATS or not g.random_members:
            continue
        kurt = 3.0
        if g.rule is not None:
            ref = build_reference(g.rule.scheme, g.fan_in, g.fan_out, g.dtype)
            if ref is None:
                continue
            kurt = ref.kurtosis
        per_instance = len(g.members) * g.size
        need = max(need, math.ceil(st.samples_for_power(kurt, alpha_each) / per_instance))
    return max(1, min(need, max_seeds))


def consume(params: list[Param], groups: dict[tuple, Group], digests: dict[str, list[bytes]],
             i: int, n_seeds: int) -> None:
    by_path = {m: g for g in groups.values() for m in g.members}
    rng = np.random.default_rng([i, 7919])
    for p in params:
        g = by_path.get(p.path)
        if g is None or g.error:
            continue
        try:
            x = np.asarray(p.values())
        except Exception as e:  # noqa: BLE001 - a parameter that cannot be read is the model's failure
            g.error = f"{p.path}: reading the values raised {type(e).__name__}: {e}"
            continue
        digests.setdefault(p.path, []).append(digest(x))
        if g.dtype not in FLOATS:
            continue
        flat = x.reshape(-1)
        lo = hi = None
        for j in range(0, flat.size, CHUNK):
            c = flat[j:j + CHUNK].astype(np.float64)
            finite = np.isfinite(c)
            if not finite.all():
                g.nonfinite += int(c.size - finite.sum())
                c = c[finite]
            if c.size:
                cmin, cmax = g.moments.add(c)
                lo = cmin if lo is None else min(lo, cmin)
                hi = cmax if hi is None else max(hi, cmax)
        if lo is not None and i == 0:
            (g.constant_members if lo == hi else g.random_members).add(p.path)
        # the bounded sample: the first member's first tensor whole (identify's orthogonal check reads
        # it as a matrix), then an equal random share of every tensor
        # (half the cap from the first instance, half from the others: their number is decided after it)
        share = max(1, SAMPLE_CAP // (2 * len(g.members) * (1 if i == 0 else max(n_seeds - 1, 1))))
        if g.picked == 0 and flat.size <= SAMPLE_CAP // 2:
            take = flat.astype(np.float64)
        elif flat.size <= share:
            take = flat.astype(np.float64)
        else:
            take = flat[np.sort(rng.choice(flat.size, share, replace=False))].astype(np.float64)
        take = take[np.isfinite(take)]
        g.picks.append(take)
        g.picked += take.size
        if g.rule is not None and g.rule.scheme.kind == "orthogonal" and len(g.shape) >= 2:
            g.orth_dev = max(g.orth_dev, _orth_deviation(x, g))
        del x, flat


def _orth_deviation(x: np.ndarray, g: Group) -> float:
    rows, cols = get_layout(g.layout).matrix(g.shape)
    w = x.astype(np.float64).reshape(rows, cols) if g.layout == "torch" else \
        np.moveaxis(x.astype(np.float64), -1, 0).reshape(cols, rows).T
    gram = w @ w.T if rows <= cols else w.T @ w
    gain = float(g.rule.scheme.params.get("gain", 1.0))
    return float(np.abs(gram - gain**2 * np.eye(gram.shape[0])).max())


@dataclass
class Drawn:
    """What the draws left beside the groups' own fields: the seeds used, the per-parameter
    digests (one per instance) and the per-test level the plan gave."""

    seeds: list[int]
    digests: dict[str, list[bytes]]
    alpha_each: float


def draw(builder: Builder, groups: dict[tuple, Group], plan: Callable[[list[Param]], float], *, seed: int,
         seeds: int | None, max_seeds: int, timing: dict[str, float], progress: Callable | None = None) -> Drawn:
    """Build the model under seeds ``seed, seed + 1, ...``, one instance at a time, and stream every
    parameter into its group.  ``plan(params)`` makes the groups from the first instance and returns
    the per-test level; the number of instances is then ``seeds`` or what the smallest random group
    needs for the variance test's power (at least 2, at most ``max_seeds``).  ``progress(done, total,
    label)`` is told of each instance (total None until the first instance has decided it)."""
    digests: dict[str, list[bytes]] = {}
    n_seeds = seeds or 2
    alpha_each = 1.0
    timing.setdefault("build", 0.0)
    timing.setdefault("walk", 0.0)
    first_paths: set[str] = set()
    i = 0
    while i < n_seeds:
        s = seed + i
        if progress:
            progress(i, n_seeds if i or seeds else None, f"instance {i + 1} (seed {s})")
        tb = time.perf_counter()
        model = builder.build(s)
        timing["build"] += time.perf_counter() - tb
        tw = time.perf_counter()
        try:
            params = list(builder.walker.walk(model))
        except InputError:
            raise
        except Exception as e:  # noqa: BLE001 - a model whose parameters cannot be listed fails its audit
            raise BuildError(f"walking {builder.target.text} raised {type(e).__name__}: {e}".strip()) from None
        if i == 0:
            first_paths = {p.path for p in params}
            alpha_each = plan(params)
        elif {p.path for p in params} != first_paths:
            new = sorted({p.path for p in params} ^ first_paths)
            raise BuildError(f"the instance built under seed {s} has other parameter names than the first "
                             f"({', '.join(new[:3])}): names that change per build cannot be pooled")
        consume(params, groups, digests, i, n_seeds)
        if i == 0 and seeds is None:  # now that the first instance says which groups are random
            n_seeds = seeds_needed(groups, alpha_each, max_seeds)
        del params
        builder.walker.release(model)
        del model
        gc.collect()  # the instance is gone before the next one is built
        timing["walk"] += time.perf_counter() - tw
        i += 1
    return Drawn(list(range(seed, seed + n_seeds)), digests, alpha_each)
