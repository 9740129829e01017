"""Framework-neutral evidence of sharded parameters: what one rank (or one JAX device) holds of a
parameter, streamed into moments without a copy; records of all ranks merged exactly per parameter
(Chan et al.'s parallel update of (n, mean, M2), not an average of averages); the bounded sample
split over the shards in proportion to their sizes (a stratified sample); the groups fed with it.
"""

from __future__ import annotations

import hashlib
import math
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from initspec.audit.draws import SAMPLE_CAP
from initspec.engine.stats import Moments

#: values converted to float64 at a time: 16 MiB of temporaries (with Moments' own), whatever the shard's size
CHUNK = 1 << 20
#: values of each shard kept for the clone-within-ulps comparison (its first ones, in its own order)
HEAD = 64
#: float bit patterns written into storage before initialization: quiet NaNs with a payload no
#: arithmetic produces, so a value that still has it was never written
SENTINEL = {"float32": ("uint32", 0x7FE15EED), "float64": ("uint64", 0x7FFC15EED15EED00),
            "float16": ("uint16", 0x7E5D), "bfloat16": ("uint16", 0x7FE1)}


def merge(a: Moments, b: Moments) -> Moments:
    """The moments of the union of two samples (Chan, Golub & LeVeque's pairwise update; exact)."""
    if not b.n:
        return Moments(a.shift, a.n, a.mean, a.m2, a.minimum, a.maximum)
    if not a.n:
        return Moments(b.shift, b.n, b.mean, b.m2, b.minimum, b.maximum)
    n = a.n + b.n
    delta = b.mean - a.mean
    return Moments(a.shift, n, a.mean + delta * b.n / n, a.m2 + b.m2 + delta * delta * a.n * b.n / n,
                   min(a.minimum, b.minimum), max(a.maximum, b.maximum))


def merged(ms: Iterable[Moments]) -> Moments:
    out = Moments()
    for m in ms:
        out = merge(out, m)
    return out


@dataclass
class ShardRecord:
    """What one rank holds of one parameter (or buffer): its place in the global tensor and the
    statistics of its values.  Records with equal ``key`` are replicas of one block; records with
    different keys are different blocks of the tensor."""

    path: str
    rank: int
    shape: tuple[int, ...]          # the global shape
    dtype: str
    local_shape: tuple[int, ...]
    offset: tuple[int, ...] | None  # where the block starts in the global tensor (None: not one block)
    placements: str                 # as the framework prints them: "(Shard(dim=0),)"
    mesh: str                       # "tp=2", "dp=2 x tp=2", "world=2"
    key: tuple
    kind: str = "param"             # param | buffer
    holder: str = "rank"            # what holds a block: a rank (torch) or a device (JAX)
    size: int = 0
    moments: Moments = field(default_factory=Moments)
    nonfinite: int = 0
    unwritten: int = 0
    digest: bytes = b""
    head: np.ndarray = field(default_factory=lambda: np.empty(0))

    @property
    def constant(self) -> bool:
        return bool(self.moments.n) and self.moments.minimum == self.moments.maximum


def stream(rec: ShardRecord, chunks: Iterator[np.ndarray]) -> ShardRecord:
    """Fill ``rec``'s statistics from its values, chunk by chunk in the parameter's own dtype (one
    pass: digest, sentinel count, non-finite count, moments of the finite written values, head)."""
    h = hashlib.blake2b(digest_size=16)
    sentinel = SENTINEL.get(rec.dtype)
    floating = rec.dtype in ("float64", "float32", "float16", "bfloat16")
    heads = []
    for c in chunks:
        c = np.ascontiguousarray(c).reshape(-1)
        rec.size += c.size
        h.update(c.view(np.uint8))
        if len(heads) < 1 and c.size:
            heads.append(c[:HEAD].astype(np.float64) if floating else np.empty(0))
        if not floating:
            continue
        written = None
        if sentinel is not None:
            hit = c.view(sentinel[0]) == sentinel[1]
            k = int(hit.sum())
            if k:
                rec.unwritten += k
                written = ~hit
        for j in range(0, c.size, CHUNK):
            x = c[j:j + CHUNK]
            keep = written[j:j + CHUNK] if written is not None else None
            x = x.astype(np.float64) if keep is None else x[keep].astype(np.float64)
            finite = np.isfinite(x)
            if not finite.all():
                rec.nonfinite += int(x.size - finite.sum())
                x = x[finite]
            if x.size:
                if not rec.moments.n and not rec.moments.shift:
                    rec.moments.shift = float(x[0])  # summing about a value of the law keeps M2 exact
                rec.moments.add(x)
    rec.digest = h.digest()
    rec.head = heads[0] if heads else np.empty(0)
    return rec


@dataclass
class Merged:
    """One parameter across all ranks: the statistics of every distinct block counted once."""

    path: str
    records: list[ShardRecord]
    owners: list[ShardRecord]       # one record per key: the lowest rank's
    moments: Moments
    nonfinite: int
    unwritten: int
    size: int
    digest: bytes                   # of the whole tensor as its blocks, in key order

    @property
    def first(self) -> ShardRecord:
        return self.records[0]

    @property
    def constant(self) -> bool:
        return bool(self.moments.n) and self.moments.minimum == self.moments.maximum

    @property
    def sharded(self) -> bool:
        return len(self.owners) > 1


def merge_records(records: Iterable[ShardRecord]) -> dict[str, Merged]:
    """Every parameter's records (from all ranks) merged: owners are the lowest rank of each key."""
    by_path: dict[str, list[ShardRecord]] = {}
    for r in records:
        by_path.setdefault(r.path, []).append(r)
    out = {}
    for path, recs in by_path.items():
        recs.sort(key=lambda r: r.rank)
        owners: dict[tuple, ShardRecord] = {}
        for r in recs:
            owners.setdefault(r.key, r)
        own = sorted(owners.values(), key=lambda r: (r.offset or (), r.key))
        h = hashlib.blake2b(digest_size=16)
        for r in own:
            h.update(r.digest)
        out[path] = Merged(path, recs, own, merged(r.moments for r in own), sum(r.nonfinite for r in own),
                           sum(r.unwritten for r in own), sum(r.size for r in own), h.digest())
    return out


def quotas(members: dict[str, list[str]], evidence: dict[str, Merged], instance: int,
           n_instances: int) -> dict[tuple[str, int], int]:
    """How many values each owner rank samples of each parameter: the single-process audit's share
    (half of the group's cap from the first instance, half from the others, equal per member),
    split over the parameter's blocks in proportion to their sizes (a stratified sample)."""
    out: dict[tuple[str, int], int] = {}
    for paths in members.values():
        share = max(1, SAMPLE_CAP // (2 * len(paths) * (1 if instance == 0 else max(n_instances - 1, 1))))
        for p in paths:
            ev = evidence.get(p)
            if ev is None or not ev.size:
                continue
            take = min(share, ev.size)
            # largest remainders: the parts sum to `take` exactly
            exact = [take * r.size / ev.size for r in ev.owners]
            parts = [math.floor(e) for e in exact]
            for i in sorted(range(len(parts)), key=lambda i: parts[i] - exact[i])[:take - sum(parts)]:
                parts[i] += 1
            for r, k in zip(ev.owners, parts, strict=True):
                if k:
                    out[(p, r.rank)] = min(k, r.size)
    return out


def sample_positions(path: str, rank: int, instance: int, seed: int, size: int, k: int) -> np.ndarray:
    """``k`` distinct positions of a block of ``size`` values, sorted, from a stream named by the
    parameter, rank and instance (the same run picks the same positions)."""
    rng = np.random.default_rng([seed, instance, rank, zlib.crc32(path.encode()), 7919])
    if k >= size:
        return np.arange(size)
    return np.sort(rng.choice(size, k, replace=False))


def finite_written(x: np.ndarray, dtype: str) -> np.ndarray:
    """The sampled values as float64, without the sentinel and non-finite ones."""
    sentinel = SENTINEL.get(dtype)
    if sentinel is not None:
        x = x[np.ascontiguousarray(x).view(sentinel[0]) != sentinel[1]]
    x = x.astype(np.float64)
    return x[np.isfinite(x)]


def ulps_apart(a: np.ndarray, b: np.ndarray, dtype: str) -> int | None:
    """The largest distance in units in the last place between two heads (in ``dtype``), or None
    when they cannot be compared (not a float dtype, empty, non-finite)."""
    from initspec.spec.reference import np_dtype

    n = min(a.size, b.size)
    if dtype not in SENTINEL or n == 0:
        return None
    a, b = a[:n], b[:n]
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return None
    dt = np_dtype(dtype)
    ints = {2: np.int16, 4: np.int32, 8: np.int64}[dt.itemsize]
    ia = a.astype(dt).view(ints).astype(np.int64)
    ib = b.astype(dt).view(ints).astype(np.int64)
    top = np.int64(1) << np.int64(8 * dt.itemsize - 1)
    # sign-magnitude to a monotonic integer line: the ulps between two floats is their distance on it
    ia = np.where(ia < 0, -(ia + top) if dt.itemsize < 8 else -(ia & ~top), ia)
    ib = np.where(ib < 0, -(ib + top) if dt.itemsize < 8 else -(ib & ~top), ib)
    return int(np.abs(ia - ib).max())


def describe_keys(records: list[ShardRecord]) -> str:
    """``ranks 0, 1`` / ``ranks 0-3`` / ``devices 0-3``."""
    ranks = sorted({r.rank for r in records})
    noun = records[0].holder if records else "rank"
    if len(ranks) > 2 and ranks == list(range(ranks[0], ranks[-1] + 1)):
        return f"{noun}s {ranks[0]}-{ranks[-1]}"
    return (f"{noun} " if len(ranks) == 1 else f"{noun}s ") + ", ".join(map(str, ranks))


def summary(evidence: dict[str, Merged]) -> dict[str, Any]:
    """Placements per parameter, for the JSON report."""
    return {p: {"placements": ev.first.placements, "mesh": ev.first.mesh, "blocks": len(ev.owners),
                "local_shape": list(ev.first.local_shape)} for p, ev in evidence.items()}
