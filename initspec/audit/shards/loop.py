"""The sharded audit on ranks already set up: each rank streams its shards into records; rank 0
merges them exactly, plans the groups the single-process audit would plan, asks each rank for its
share of a bounded stratified sample, and gives the verdicts with the single-process audit's own
tests and Holm over the model.  No rank assembles a parameter: rank 0 receives records and the
bounded sample (a block smaller than its share of the sample is sent whole).

``audit_sharded(model)`` is the entry point for a training codebase's own launcher: call it on every
rank of an initialized process group, after the init; every rank gets the same report.
"""

from __future__ import annotations

import gc
import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from initspec.audit.draws import seeds_needed
from initspec.audit.findings import Finding, clones, model_findings
from initspec.audit.report import DEFAULT_ALPHA, DEFAULT_MAX_SEEDS, FLOATS, AuditReport, Group, framework_version
from initspec.audit.shards import findings as sf
from initspec.audit.shards.merge import Merged, merge, merge_records, quotas, sample_positions, summary
from initspec.audit.spec import AuditSpec
from initspec.audit.verdicts import adopt, check_groups, identify_group, name_groups, planned_tests


@dataclass
class ShardedReport(AuditReport):
    """An audit of a sharded model: the groups and findings of :class:`AuditReport`, plus the world
    it ran on, each parameter's placements and what each rank sent to rank 0."""

    sharded: dict[str, Any] = field(default_factory=dict)
    #: path -> [(global offset, local shape, digest)] of each block, first instance (for --compare-unsharded)
    blocks: dict[str, list[tuple[Any, tuple[int, ...], bytes]]] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["findings"] = [{**f.to_dict(), **f.extra} for f in self.findings]
        out["sharded"] = self.sharded
        return out


class Comm:
    """Collectives to and from rank 0 over a process group, counting the bytes each rank sends."""

    def __init__(self, group: Any = None) -> None:
        import torch.distributed as dist

        if not dist.is_available() or not dist.is_initialized():
            from initspec.errors import InputError

            raise InputError("audit_sharded needs an initialized torch.distributed process group "
                             "(torch.distributed.init_process_group)")
        self.dist, self.group = dist, group
        self.rank, self.world = dist.get_rank(group), dist.get_world_size(group)
        self.sent = 0
        self.note: Callable[..., None] = lambda what, waiting=False: None  # the launcher's phase watch

    def _collective(self, fn: Callable[..., None], *args: Any, **kwargs: Any) -> None:
        self.note("exchanging evidence with rank 0", waiting=True)
        fn(*args, **kwargs)
        self.note("auditing")

    def gather(self, obj: Any) -> list[Any] | None:
        """Every rank's ``obj``, on rank 0 (None elsewhere)."""
        self.sent += len(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))
        out = [None] * self.world if self.rank == 0 else None
        dst = self.dist.get_global_rank(self.group, 0) if self.group is not None else 0
        self._collective(self.dist.gather_object, obj, out, dst=dst, group=self.group)
        return out

    def scatter(self, parts: list[Any] | None) -> Any:
        """Rank 0's ``parts[r]`` on rank r."""
        box = [None]
        src = self.dist.get_global_rank(self.group, 0) if self.group is not None else 0
        self._collective(self.dist.scatter_object_list, box, parts if self.rank == 0 else None, src=src,
                         group=self.group)
        return box[0]

    def share(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        box = [obj if self.rank == 0 else None]
        src = self.dist.get_global_rank(self.group, 0) if self.group is not None else 0
        self._collective(self.dist.broadcast_object_list, box, src=src, group=self.group)
        return box[0]


class PeerFailure(RuntimeError):
    """Another rank failed (this one did nothing wrong)."""


@dataclass
class Settings:
    target: str = "model"
    spec: AuditSpec | None = None
    seed: int = 0
    seeds: int | None = None
    max_seeds: int = DEFAULT_MAX_SEEDS
    alpha: float = DEFAULT_ALPHA
    layout: str | None = None
    strict: bool = False
    notes: list[str] = field(default_factory=list)
    sharded: dict[str, Any] = field(default_factory=dict)
    identify: bool = True


class _Rank0:
    """What rank 0 accumulates over the instances."""

    def __init__(self, s: Settings, source: Any) -> None:
        self.s, self.source = s, source
        self.groups: dict[tuple, Group] = {}
        self.order: list[tuple] = []
        self.findings: list[Finding] = []
        self.tied: dict[Any, list[str]] = {}
        self.digests: dict[str, list[bytes]] = {}
        self.cross: dict[str, Finding] = {}   # the first instance's cross-rank finding of each id
        self.alpha_each = 1.0
        self.members: dict[tuple, list[str]] = {}
        self.placements: dict[str, Any] = {}
        self.first: dict[str, Merged] = {}    # the first instance's evidence, without values

    def plan(self, model: Any, evidence: dict[str, Merged]) -> None:
        from initspec.audit.run import _plan

        params = []
        for p in self.source.walk(model):
            ev = evidence.get(p.path)
            if ev is not None and ev.moments.n == 0 and ev.first.dtype in FLOATS and (ev.unwritten or ev.nonfinite):
                p = replace(p, uninitialized=True)  # never written at all: no group (the finding has details)
            extremes = np.array([ev.moments.minimum, ev.moments.maximum]) if ev is not None and ev.moments.n \
                else np.empty(0)
            params.append(replace(p, values=lambda x=extremes: x))
        _plan(params, self.groups, self.order, self.s.spec, self.s.layout or self.source.layout, self.tied,
              self.findings)
        self.findings[:] = [f for f in self.findings if f.id != "uninitialized"]  # sf.uninitialized says more
        self.alpha_each = self.s.alpha / max(sum(planned_tests(g) for g in self.groups.values()), 1)
        self.members = {k: list(self.groups[k].members) for k in self.order}
        self.placements = summary({p: e for p, e in evidence.items() if e.first.kind == "param"})
        for g in self.groups.values():
            if g.rule is not None and g.rule.scheme.kind == "orthogonal" and any(
                    evidence[m].sharded for m in g.members if m in evidence):
                g.error = "an orthogonal law is not checked on a sharded parameter (its Gram matrix spans ranks)"

    def feed(self, evidence: dict[str, Merged], picks: dict[str, list[np.ndarray]], i: int) -> None:
        for g in self.groups.values():
            for m in g.members:
                ev = evidence.get(m)
                if ev is None:
                    continue
                g.moments = merge(g.moments, ev.moments)
                g.nonfinite += ev.nonfinite
                self.digests.setdefault(m, []).append(ev.digest)
                if i == 0 and ev.moments.n and g.dtype in FLOATS:
                    (g.constant_members if ev.constant else g.random_members).add(m)
                for x in picks.get(m, []):
                    g.picks.append((m, x))
                    g.picked += x.size

    def cross_rank(self, evidence: dict[str, Merged], causes: dict[str, str]) -> None:
        random_paths = {m for g in self.groups.values() for m in g.random_members}
        for f in (sf.shards_cloned(evidence, random_paths, causes), sf.replicas_differ(evidence),
                  sf.uninitialized(evidence)):
            if f is not None and f.id not in self.cross:
                self.cross[f.id] = f


def audit_loop(build: Callable[[int], Any], comm: Comm, s: Settings, source: Any = None,
               timing: dict[str, float] | None = None) -> ShardedReport:
    """Build (``build(seed)`` on every rank: the sharded, initialized model), collect, merge, judge.
    ``source`` reads a model's blocks (default: the torch ranks' :class:`~initspec.audit.shards.local.TorchSource`).
    Every rank returns the same report."""
    from initspec.audit.shards.local import TorchSource

    source = source or TorchSource()
    timing = timing if timing is not None else {}
    t0 = time.perf_counter()
    me = {"rss_before": _rss(), "local_bytes": 0}
    r0 = _Rank0(s, source) if comm.rank == 0 else None
    n_instances, i = s.seeds or 1, 0
    while i < n_instances:
        tb = time.perf_counter()
        model = build(s.seed + i)
        timing["build"] = timing.get("build", 0.0) + time.perf_counter() - tb
        tc = time.perf_counter()
        recs = source.records(model, comm.rank)
        if i == 0:
            me["local_bytes"] = sum(r.size * _itemsize(r.dtype) for r in recs if r.kind == "param")
        causes = source.causes(model) if i == 0 and comm.rank == 0 else {}
        gathered = comm.gather(recs)
        box: dict[str, Any] = {}

        def plan(i: int = i, gathered: Any = gathered, model: Any = model, box: dict = box,
                 n: int = n_instances) -> Any:
            box["evidence"] = evidence = merge_records(r for rs in gathered for r in rs)
            if i == 0:
                r0.plan(model, evidence)
            return quotas(r0.members, evidence, i, n)

        want = _on_rank0(comm, plan)
        held = {(r.path, r.rank): r.size for r in recs}
        mine = {pr: sample_positions(*pr, i, s.seed, held[pr], k) for pr, k in want.items() if pr in held}
        picks = comm.gather(source.sample(model, mine))

        def feed(i: int = i, picks: Any = picks, causes: Any = causes, box: dict = box, n: int = n_instances) -> int:
            by_path: dict[str, list[np.ndarray]] = {}
            for rank_picks in picks:
                for (p, _), x in sorted(rank_picks.items()):
                    by_path.setdefault(p, []).append(x)
            r0.feed(box["evidence"], by_path, i)
            r0.cross_rank(box["evidence"], causes)
            if i == 0:
                r0.first = box["evidence"]
                if s.seeds is None:
                    # no floor of two: the seed check is not what a sharded audit is for, and each instance is a
                    # whole sharded model
                    return seeds_needed(r0.groups, r0.alpha_each, s.max_seeds, floor=1)
            return n

        n_instances = _on_rank0(comm, feed)
        del model, recs, gathered, box, picks
        gc.collect()
        timing["collect"] = timing.get("collect", 0.0) + time.perf_counter() - tc
        i += 1
    me.update(sent=comm.sent, peak_rss=_peak_rss())
    ranks = comm.gather(me)
    ta = time.perf_counter()
    _identify(comm, r0, s)
    timing["identify"] = time.perf_counter() - ta
    return _on_rank0(comm, lambda: _judge(r0, s, n_instances, ranks, timing, t0))


def _identify(comm: Comm, r0: _Rank0 | None, s: Settings) -> None:
    """Name each group's law (the slow part of the analysis), the groups dealt out over the ranks:
    rank r identifies groups r, r + world, ... and sends back what it found."""
    def deal() -> list[list[Group]]:
        ordered = [r0.groups[k] for k in r0.order] if s.identify else []
        return [ordered[r::comm.world] for r in range(comm.world)]

    mine = comm.scatter(deal() if comm.rank == 0 else None)
    found = comm.gather([(identify_group(g, s.seed), g.identified) for g in mine])
    if r0 is not None and s.identify:
        ordered = [r0.groups[k] for k in r0.order]
        for r, share in enumerate(found):
            for g, (ident, why) in zip(ordered[r::comm.world], share, strict=True):
                g.identified = why
                adopt(g, ident)
        name_groups(ordered, s.seed)  # one law per model: the consensus needs every group, on rank 0


def _itemsize(dtype: str) -> int:
    from initspec.spec.reference import np_dtype

    try:
        return np_dtype(dtype).itemsize
    except Exception:  # noqa: BLE001 - an integer or bool buffer: numpy knows it
        return int(np.dtype(dtype).itemsize)


def _rss() -> int | None:
    """This process's resident memory now (bytes; Linux), None where /proc is missing."""
    try:
        with open("/proc/self/statm") as fh:
            import os

            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _peak_rss() -> int | None:
    """This process's peak resident memory (bytes): VmHWM on Linux (getrusage's maxrss survives the
    exec of a spawned process, so it starts at the parent's peak), else getrusage."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource
        import sys

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB on Linux
    except (ImportError, OSError):
        return None


def _on_rank0(comm: Comm, fn: Callable[[], Any]) -> Any:
    """``fn()`` on rank 0, its result on every rank; when it raises, it raises on every rank (no rank
    is left waiting for rank 0 in a collective)."""
    out, err = None, None
    if comm.rank == 0:
        try:
            out = ("ok", fn())
        except Exception as e:  # noqa: BLE001 - shared first, raised right after
            out, err = ("error", f"{type(e).__name__}: {e}"), e
    out = comm.share(out)
    if err is not None:
        raise err
    if out[0] == "error":
        raise PeerFailure(f"rank 0 failed: {out[1]}")
    return out[1]


def _judge(r0: _Rank0, s: Settings, n_instances: int, ranks: list[dict[str, Any]], timing: dict[str, float],
           t0: float) -> ShardedReport:
    tc = time.perf_counter()
    ordered = [r0.groups[k] for k in r0.order]
    findings = r0.findings
    clones(r0.digests, r0.groups, s.spec, findings)
    model_findings(ordered, r0.digests, n_instances, findings)
    for g in ordered:
        if not s.identify:
            g.identified = "(not identified)"
    check_groups(ordered, s.target, s.seed, s.alpha, r0.alpha_each, n_instances)
    findings += list(r0.cross.values())
    fans = sf.shard_fans(ordered, r0.first, r0.alpha_each, s.seed)
    if fans is not None:
        findings.append(fans)
    findings.sort(key=lambda f: (not f.severe, f.id))
    timing["analyse"] = time.perf_counter() - tc
    timing["total"] = time.perf_counter() - t0
    sharded = {**s.sharded, "instances": n_instances, "placements": r0.placements,
               "gathered_bytes_per_rank": [r["sent"] for r in ranks], "ranks": ranks}
    fw = r0.source.framework
    return ShardedReport(s.target, fw, framework_version(fw), list(range(s.seed, s.seed + n_instances)),
                         s.alpha, ordered, findings, [v for v in r0.tied.values() if len(v) > 1], strict=s.strict,
                         spec_path=s.spec.path if s.spec else None, notes=list(s.notes), timing=timing,
                         sharded=sharded, blocks={p: [(r.offset, r.local_shape, r.digest) for r in ev.owners]
                                                  for p, ev in r0.first.items() if ev.first.kind == "param"})


def audit_sharded(model: Any, *, spec: Any = None, seed: int = 0, alpha: float = DEFAULT_ALPHA,
                  layout: str | None = None, strict: bool = False, group: Any = None,
                  target: str | None = None, identify: bool = True) -> ShardedReport:
    """Audit ``model`` -- sharded (FSDP2, tensor parallel, DTensor) and initialized -- on every rank of
    the process group ``group`` (default: the world).  A collective: call it on every rank.  Every
    rank gets the same report; ``report.ok`` says whether it conforms.

    Call :func:`initspec.audit.shards.mark_unwritten` right after ``to_empty`` (before the init) and
    storage the init never writes is reported as ``uninitialized``.  ``identify=False`` skips
    naming each group's law (the slow part of a small audit); the checks against ``spec`` and the
    findings are the same.
    """
    from pathlib import Path

    from initspec.audit.spec import load_spec, parse_spec

    if isinstance(spec, (str, Path)):
        spec = load_spec(spec)
    elif isinstance(spec, dict):
        spec = parse_spec(spec, "spec")
    comm = Comm(group)
    s = Settings(target or type(model).__name__, spec, seed, 1, 1, alpha, layout, strict,
                 [f"sharded: {comm.world} ranks, the model as given (audit_sharded)"],
                 {"world_size": comm.world, "flow": "as given"}, identify)
    return audit_loop(lambda _seed: model, comm, s)
