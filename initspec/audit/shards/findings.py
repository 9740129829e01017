"""Findings across ranks, each naming the parameter, its placements and the ranks:

- ``shards_cloned``: two different blocks of one parameter hold the same values (bit for bit, or
  within a few ulps on the values compared) -- every rank drew its shard from the same generator
  state (OLMo-core#307; pytorch#180088, a CPU tensor on an accelerator mesh; pytorch#138329, torch's
  own DTensor init on a CPU mesh);
- ``replicas_differ``: copies of one block (a ``Replicate`` placement, or a tensor every rank holds
  whole) that differ -- seeding by rank applied to a replicated parameter (OLMo-core#319);
- ``uninitialized``: storage the init never wrote after ``to_empty`` (the sentinel is still there;
  Megatron-LM#6799, and buffers wiped by ``to_empty``, timm#2350);
- ``shard_fans``: the law's scale follows the local shard's fans, not the global tensor's
  (Megatron-Bridge#5840).
"""

from __future__ import annotations

import math
from typing import Any

from initspec.audit.findings import Finding
from initspec.audit.shards.merge import Merged, ShardRecord, describe_keys, ulps_apart

#: blocks whose compared values are at most this many ulps apart are clones (a copy that went
#: through a different but equivalent arithmetic path, e.g. a rescale by an exact power of two)
ULPS = 4
#: blocks smaller than this are never called clones (two tiny blocks can agree by chance in 16 bits)
MIN_BLOCK = 8
#: the torch version's own reason for cloned shards, shown when the mesh is one DTensor cannot seed
RNG_CAUSE = ("torch {version}: DTensor's random ops offset the generator per shard only on CUDA-like "
             "devices (torch/distributed/tensor/_random.py is_rng_supported_mesh); on a {device} mesh "
             "every rank draws the same numbers (pytorch#138329)")


def _where(ev: Merged) -> str:
    return f"{ev.first.placements} on {ev.first.mesh}"


def _clusters(owners: list[ShardRecord], dtype: str) -> list[tuple[list[ShardRecord], int]]:
    """Blocks that are copies of each other: (records, largest ulps apart; 0 = bit for bit)."""
    parent = list(range(len(owners)))
    apart = [0] * len(owners)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, a in enumerate(owners):
        for j in range(i):
            b = owners[j]
            if a.size < MIN_BLOCK or b.size < MIN_BLOCK or a.constant or b.constant:
                continue
            if a.digest == b.digest:
                d = 0
            else:
                d = ulps_apart(a.head, b.head, dtype)
                if d is None or d > ULPS or a.size != b.size:
                    continue
            ri, rj = find(i), find(j)
            if ri != rj:
                parent[ri] = rj
                apart[rj] = max(apart[rj], apart[ri], d)
    out: dict[int, list[ShardRecord]] = {}
    for i, r in enumerate(owners):
        out.setdefault(find(i), []).append(r)
    return [(rs, apart[k]) for k, rs in out.items() if len(rs) > 1]


def shards_cloned(evidence: dict[str, Merged], random_paths: set[str], causes: dict[str, str]) -> Finding | None:
    """Blocks of one random parameter that are copies of each other.  ``causes``: a known reason
    per parameter (torch's DTensor RNG on a CPU mesh), shown with it."""
    hits, details = [], []
    for path, ev in evidence.items():
        if path not in random_paths or not ev.sharded:
            continue
        for recs, ulps in _clusters(ev.owners, ev.first.dtype):
            how = "identical" if ulps == 0 else f"equal within {ulps} ulp(s) on the {len(recs[0].head)} values compared"
            hits.append(path)
            details.append({"param": path, "placements": ev.first.placements, "mesh": ev.first.mesh,
                            "ranks": sorted(r.rank for r in recs), "ulps": ulps})
            details[-1]["text"] = f"{path} {_where(ev)}: the blocks of {describe_keys(recs)} are {how}"
            break
    if not hits:
        return None
    lines = [d["text"] for d in details]
    seen_causes = sorted({causes[p] for p in hits if p in causes})
    noun = evidence[hits[0]].first.holder
    msg = (f"{len(hits)} parameter(s) whose shards on different {noun}s are copies of each other (each {noun} drew "
           f"its shard from the same generator state): " + "; ".join(_cut(lines)))
    if seen_causes:
        msg += ". Cause: " + "; ".join(seen_causes)
    return Finding("shards_cloned", hits, msg, {"details": details, "causes": seen_causes})


def replicas_differ(evidence: dict[str, Merged]) -> Finding | None:
    """Copies of one block (same key on different ranks) whose values differ."""
    hits, details = [], []
    for path, ev in evidence.items():
        by_key: dict[tuple, list[ShardRecord]] = {}
        for r in ev.records:
            by_key.setdefault(r.key, []).append(r)
        bad = [(rs[0], [r for r in rs[1:] if r.digest != rs[0].digest]) for rs in by_key.values()]
        bad = [(ref, off) for ref, off in bad if off]
        if not bad:
            continue
        ref, off = bad[0]
        ulps = [ulps_apart(ref.head, r.head, ev.first.dtype) for r in off]
        known = [u for u in ulps if u is not None]
        how = ("differ after the first values" if known and max(known) == 0 else
               f"differ by up to {max(known)} ulp(s)" if known and max(known) <= 1024 else "hold different values")
        hits.append(path)
        ranks = sorted({ref.rank, *(r.rank for r in off)})
        details.append({"param": path, "placements": ev.first.placements, "mesh": ev.first.mesh, "ranks": ranks,
                        "text": f"{path} {_where(ev)}: the copies on {describe_keys([ref, *off])} {how}"})
    if not hits:
        return None
    noun = evidence[hits[0]].first.holder
    return Finding("replicas_differ", hits, f"{len(hits)} replicated parameter(s) whose copies differ across {noun}s "
                   f"(a per-{noun} seed applied to a replicated placement?): "
                   + "; ".join(_cut([d["text"] for d in details])),
                   {"details": details})


def uninitialized(evidence: dict[str, Merged]) -> Finding | None:
    """Parameters and buffers with values the init never wrote (or never materialized)."""
    hits, details = [], []
    for path, ev in evidence.items():
        recs = [r for r in ev.records if r.unwritten]
        if not recs:
            continue
        meta = any(r.unwritten < 0 for r in recs)
        total = sum(r.size for r in ev.owners)
        left = sum(max(r.unwritten, 0) for r in ev.owners)
        what = "left on the meta device" if meta else f"{left} of {total} values never written after to_empty"
        kind = "buffer " if ev.first.kind == "buffer" else ""
        hits.append(path)
        details.append({"param": path, "kind": ev.first.kind, "placements": ev.first.placements,
                        "mesh": ev.first.mesh, "ranks": sorted(r.rank for r in recs), "unwritten": left,
                        "text": f"{kind}{path} {_where(ev)} on {describe_keys(recs)}: {what}"})
    if not hits:
        return None
    return Finding("uninitialized", hits, f"{len(hits)} tensor(s) whose storage the init never wrote: "
                   + "; ".join(_cut([d["text"] for d in details])), {"details": details})


def _cut(lines: list[str], k: int = 6) -> list[str]:
    return lines[:k] + ([f"and {len(lines) - k} more"] if len(lines) > k else [])


def shard_fans(groups: list[Any], evidence: dict[str, Merged], alpha_each: float, seed: int) -> Finding | None:
    """Groups whose law is an intended law (the declared one, else the layer's default) on the local
    shard's fans and not on the global tensor's: the init read the fans from the shard."""
    import numpy as np

    from initspec.audit.report import FLOATS
    from initspec.engine import stats as st
    from initspec.spec.fans import get_layout
    from initspec.spec.reference import build as build_reference
    from initspec.spec.schemes import resolve

    hits, details = [], []
    for g in groups:
        if g.dtype not in FLOATS or len(g.shape) < 2 or not g.moments.n or g.constant or g.error:
            continue
        evs = [evidence[m] for m in g.members if m in evidence]
        shapes = {r.local_shape for ev in evs for r in ev.owners}
        if not evs or not all(ev.sharded for ev in evs) or len(shapes) != 1:
            continue
        local = shapes.pop()
        fi, fo = (float(f) for f in get_layout(g.layout).fans(local))
        if (fi, fo) == (g.fan_in, g.fan_out):
            continue
        intended = [(g.rule.scheme, f"declared {g.rule.expr}")] if g.rule is not None else []
        if g.default:
            intended.append((resolve(g.default), f"the layer default {g.default}"))
        sample = g.sample()
        for scheme, label in intended:
            ref_g = build_reference(scheme, g.fan_in, g.fan_out, g.dtype)
            ref_l = build_reference(scheme, fi, fo, g.dtype)
            if ref_g is None or ref_l is None or math.isclose(ref_g.var, ref_l.var, rel_tol=1e-9):
                continue
            _, p_local = st.variance_test(g.moments, ref_l.var, ref_l.mu4)
            _, p_global = st.variance_test(g.moments, ref_g.var, ref_g.mu4)
            if p_local <= alpha_each or p_global > alpha_each or sample.size < 2:
                continue
            _, p_ks = st.ks_uniform(ref_l.pit(sample, np.random.default_rng([seed, 104729])))
            if p_ks <= alpha_each:
                continue
            ratio = math.sqrt(ref_l.var / ref_g.var)
            k = round(ratio * ratio)
            factor = f"{ratio:.4g}×" + (f" (√{k})" if k > 1 and abs(ratio * ratio - k) < 1e-6 else "")
            ev = evs[0]
            hits.extend(g.members)
            details.append({"group": g.name, "params": list(g.members), "placements": ev.first.placements,
                            "mesh": ev.first.mesh, "ranks": sorted({r.rank for e in evs for r in e.records}),
                            "global_fans": [g.fan_in, g.fan_out], "local_fans": [fi, fo], "std_factor": ratio,
                            "text": f"{g.name} ×{len(g.members)} {_where(ev)}: the law is {label} on the local "
                                    f"shard's fans (fan_in {fi:g}, fan_out {fo:g}), not on the global tensor's "
                                    f"(fan_in {g.fan_in:g}, fan_out {g.fan_out:g}): std {factor} the intended"})
            break
    if not hits:
        return None
    return Finding("shard_fans", hits, f"{len(details)} group(s) initialized from the local shard's fans: "
                   + "; ".join(_cut([d["text"] for d in details])), {"details": details})
