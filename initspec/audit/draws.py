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
from initspec.audit.structure import RowFact, find_rows, looks_like, rows_hold, without_rows
from initspec.audit.targets import AuditTarget, BuildError, build_model
from initspec.audit.walkers import Param, walker_for
from initspec.engine import stats as st
from initspec.engine.guard import UserCodeError, call_user
from initspec.errors import InputError, clip
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
                raise InputError(f"target {clip(self.target.text)}: no {fw} walker ({e.name} is missing)") from None
            return
        seeded = "torch" in sys.modules
        if seeded:  # this build then is the seed's own instance (the torch walker's way)
            sys.modules["torch"].manual_seed(seed)
        obj = self._call(self.target.factory)
        self.walker = call_user(walker_for, obj, what=f"inspecting what {clip(self.target.text)} returned",
                                error=BuildError)  # isinstance and pytree flattening run the model's code
        if self.walker is None:
            raise InputError(f"target {clip(self.target.text)} returned "
                             f"{clip(f'{type(obj).__module__}.{type(obj).__name__}')}, "
                             "not a torch, Keras, Flax or JAX model")
        if self.walker.FRAMEWORK == "torch" and seeded:  # a factory that imported torch itself built unseeded
            self.first = obj
        else:
            box = [obj]
            del obj
            release(self.walker, box, self.target.text)

    def build(self, seed: int) -> Any:
        if self.first is not None:
            model, self.first = self.first, None
            return model
        return self._call(lambda: self.walker.build(self.target.factory, seed, **self.options))


def release(walker: Any, box: list[Any], text: str) -> None:
    """Drop the instance in ``box`` under the guard: its ``__del__`` runs here, not at some later line."""
    def drop() -> None:
        walker.release(box.pop())
        gc.collect()  # the instance is gone before the next one is built

    call_user(drop, what=f"releasing {clip(text)}", error=BuildError)


def _walk(walker: Any, model: Any) -> list[Param]:
    return list(walker.walk(model))


def _read(p: Param) -> np.ndarray:
    """A parameter's values (a tensor subclass's conversion is the model's code: under the guard)."""
    return call_user(lambda: np.asarray(p.values()), what=f"reading {clip(p.path)}")


def value_facts(p: Param) -> tuple[bool, tuple[RowFact, ...]]:
    """Whether every value of the parameter is equal, and its constant rows (read once more from the
    first instance, then dropped)."""
    if p.dtype not in FLOATS:
        return False, ()
    try:
        x = _read(p)
    except Exception:  # noqa: BLE001 - reported when the values are read for real
        return False, ()
    flat = x.reshape(-1)
    if flat.size and bool(np.all(flat == flat[0])):
        return True, ()
    return False, find_rows(x)


def is_constant(p: Param) -> bool:
    """Every value of the parameter equal."""
    return value_facts(p)[0]


def seeds_needed(groups: dict[tuple, Group], alpha_each: float, max_seeds: int, floor: int = 2) -> int:
    """As many instances as the smallest random group needs for the variance test's power (at least
    ``floor``: the seed check needs two), capped by ``max_seeds``."""
    need = floor
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
    first: dict[bytes, str] = {}  # instance 0's values, by digest: the first parameter that holds them
    for path, ds in digests.items() if i == 1 else ():
        first.setdefault(ds[0], path)
    for p in params:
        g = by_path.get(p.path)
        if g is None or g.error:
            continue
        try:
            x = _read(p)
        except Exception as e:  # noqa: BLE001 - a parameter that cannot be read is the model's failure
            g.error = f"{p.path}: reading the values raised {type(e).__name__}: {e}" if not isinstance(
                e, UserCodeError) else str(e)
            continue
        d = digest(x)
        digests.setdefault(p.path, []).append(d)
        if i == 0:
            g.member_digests[p.path] = d
        if g.dtype not in FLOATS:
            continue
        if i > 0 and d == digests[p.path][0]:
            # the first instance's values again: no new information (a computed table, or a seed
            # ignored); the first repeat says what it looks like while the values are at hand
            if i == 1 and p.path not in g.constant_members and p.path not in g.looks:
                g.looks[p.path] = looks_like(x)
                other = first.get(d)
                if other is not None and other != p.path:
                    g.copies[p.path] = other
            continue
        if g.rows:
            if i > 0 and not rows_hold(x, g.rows):
                g.rows_broken.add(p.path)
            x = without_rows(x, g.rows)
        mm = g.member_moments.setdefault(p.path, st.Moments(shift=g.moments.shift))
        flat = x.reshape(-1)
        lo = hi = None
        for j in range(0, flat.size, CHUNK):
            c = flat[j:j + CHUNK].astype(np.float64)
            finite = np.isfinite(c)
            if not finite.all():
                g.nonfinite += int(c.size - finite.sum())
                c = c[finite]
            if c.size:
                cmin, cmax = mm.add(c)
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
        g.picks.append((p.path, take))
        g.picked += take.size
        if g.rule is not None and g.rule.scheme.kind == "orthogonal" and len(g.shape) >= 2 and not g.rows:
            g.orth_dev = max(g.orth_dev, _orth_deviation(x, g))
        del x, flat


def merged(ms: list[st.Moments], shift: float = 0.0) -> st.Moments:
    """Moments of the union of samples (Chan et al.'s pairwise update)."""
    out = st.Moments(shift=shift)
    for m in ms:
        if not m.n:
            continue
        n = out.n + m.n
        delta = m.mean - out.mean
        out.m2 += m.m2 + delta**2 * out.n * m.n / n
        out.mean += delta * m.n / n
        out.n = n
        out.minimum, out.maximum = min(out.minimum, m.minimum), max(out.maximum, m.maximum)
    return out


def settle(groups: dict[tuple, Group], order: list[tuple], n_seeds: int, digests: dict[str, list[bytes]]) -> None:
    """After the last instance: members equal under every seed and not constant are deterministic
    (split from random siblings into a group of their own, no longer "random" for the clone and
    seed checks); every group's moments are its members' merged."""
    from initspec.audit.group import group_names

    for k in list(order):
        g = groups[k]
        fixed = {m for m in g.random_members if n_seeds >= 2 and len(set(digests.get(m, []))) == 1}
        if fixed and g.random_members - fixed:  # mixed: the computed members become a group of their own
            split = _split(g, fixed)
            groups[split.key] = split
            order.insert(order.index(k) + 1, split.key)
            fixed = set()
        g.deterministic = fixed
        g.random_members -= fixed
    for k in order:
        g = groups[k]
        g.moments = merged([g.member_moments[m] for m in g.members if m in g.member_moments], g.moments.shift)
        if g.deterministic:
            looks = [g.looks.get(m, "") for m in g.members if m in g.deterministic]
            same = looks and all(t == looks[0] for t in looks)
            said = next((t for t in looks if t), "")
            g.looks_like = looks[0] if same else said and f"{said} (in the first member; the others differ)"
            if len(g.members) > 1 and len({g.member_digests.get(m) for m in g.members}) == 1:
                g.copy_of = "the same in every member"
            elif all(m in g.copies for m in g.members):  # every member holds another parameter's values
                first = g.copies[g.members[0]]
                g.copy_of = f"a copy of {first}" if len(g.members) == 1 else \
                    f"copies of {first} and {len(g.members) - 1} more"
    names = group_names(order, {k: groups[k].members for k in order})
    for k in order:
        groups[k].name = names[k]


def _split(g: Group, fixed: set[str]) -> Group:
    """The deterministic members of a mixed group as a group of their own (moved, not copied)."""
    import dataclasses

    h = dataclasses.replace(g, key=(*g.key, "deterministic"), members=[m for m in g.members if m in fixed],
                            member_moments={m: v for m, v in g.member_moments.items() if m in fixed},
                            picks=[(m, a) for m, a in g.picks if m in fixed], random_members=set(),
                            constant_members=set(), deterministic=set(fixed),
                            member_digests={m: v for m, v in g.member_digests.items() if m in fixed},
                            looks=dict(g.looks), copies=dict(g.copies), rows_broken=set(g.rows_broken & fixed))
    h.picked = sum(a.size for _, a in h.picks)
    g.members = [m for m in g.members if m not in fixed]
    g.picks = [(m, a) for m, a in g.picks if m not in fixed]
    g.picked = sum(a.size for _, a in g.picks)
    g.random_members -= fixed
    for m in fixed:
        g.member_moments.pop(m, None)
        g.member_digests.pop(m, None)
    return h


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
    """:func:`draw_instances` with the objects alive before the first draw (transformers' import alone:
    ~10^6) kept out of the collections after each instance: a full ``gc.collect`` over them cost 0.6 s
    an instance, now milliseconds.  (An instance is freed by reference counting; the collection is
    for cycles a model may make.)"""
    gc.collect()
    gc.freeze()
    try:
        return draw_instances(builder, groups, plan, seed=seed, seeds=seeds, max_seeds=max_seeds, timing=timing,
                              progress=progress)
    finally:
        gc.unfreeze()


def draw_instances(builder: Builder, groups: dict[tuple, Group], plan: Callable[[list[Param]], float], *,
                   seed: int, seeds: int | None, max_seeds: int, timing: dict[str, float],
                   progress: Callable | None = None) -> Drawn:
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
        # a model whose parameters cannot be listed fails its audit (named_modules is the model's code)
        params = call_user(_walk, builder.walker, model, what=f"walking {clip(builder.target.text)}",
                           error=BuildError)
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
        box = [model]
        del model
        release(builder.walker, box, builder.target.text)
        timing["walk"] += time.perf_counter() - tw
        i += 1
    return Drawn(list(range(seed, seed + n_seeds)), digests, alpha_each)
