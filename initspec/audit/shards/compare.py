"""``--compare-unsharded``: the same model initialized in one process by the same flow without the
parallelization, under the same seeds, against the sharded run.  The law must agree
(``sharded_law_differs`` otherwise: two-sample variance, mean and KS tests per group, Holm over the
model); bit equality is only reported -- DTensor's RNG does not promise it.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import numpy as np
from scipy import special, stats

from initspec.audit.findings import Finding
from initspec.audit.report import FLOATS
from initspec.audit.shards.merge import merge, merge_records, quotas, sample_positions
from initspec.engine import stats as st
from initspec.engine.stats import Moments


def unsharded_evidence(job: Any, rep: Any) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, Any]]:
    """Per group name: (moments, sample) of the unsharded model under the report's seeds; and the
    bit comparison of the first seed's blocks."""
    import gc

    from initspec.audit.shards import local
    from initspec.audit.shards.rank import builder

    build = builder(job, None, "cpu", lambda *a, **k: None)
    members = {g.name: list(g.members) for g in rep.groups}
    moments: dict[str, Any] = {}
    picks: dict[str, list[np.ndarray]] = {}
    bits: dict[str, Any] = {}
    for i, seed in enumerate(rep.seeds):
        model = build(seed)
        evidence = merge_records(local.records(model, 0))
        want = quotas(members, evidence, i, len(rep.seeds))
        got = {p: x for (p, _), x in local.sample(model, {(p, 0): sample_positions(p, 0, i, seed, evidence[p].size, k)
                                                        for (p, _), k in want.items()}).items()}
        for name, paths in members.items():
            for p in paths:
                if p in evidence:
                    moments[name] = merge(moments.get(name, Moments()), evidence[p].moments)
                if p in got:
                    picks.setdefault(name, []).append(got[p])
        if i == 0:
            bits = _bit_equal(model, rep.blocks)
        del model
        gc.collect()
    return moments, {k: np.concatenate(v) for k, v in picks.items()}, bits


def _bit_equal(model: Any, blocks: dict[str, list[tuple[tuple[int, ...] | None, tuple[int, ...], bytes]]]) -> dict:
    """Which parameters' sharded blocks are bit-equal to the same slices of the unsharded tensor."""
    from initspec.frameworks.torch import to_numpy

    params = dict(model.named_parameters())
    equal, differ, skipped = [], [], []
    for path, bl in blocks.items():
        if path not in params or any(off is None for off, _, _ in bl):
            skipped.append(path)
            continue
        full = params[path].detach()
        same = True
        for off, shape, dig in bl:
            block = full[tuple(slice(o, o + n) for o, n in zip(off, shape, strict=True))]
            x = to_numpy(block)
            if hashlib.blake2b(np.ascontiguousarray(x).reshape(-1).view(np.uint8), digest_size=16).digest() != dig:
                same = False
                break
        (equal if same else differ).append(path)
    return {"equal": equal, "differ": differ, "not_compared": skipped}


def _two_sample(a_m: Any, a_x: np.ndarray, b_m: Any, b_x: np.ndarray) -> list[tuple[str, float, float]]:
    """(test, statistic, p) for variance, mean and KS between two samples of one group."""
    out = []
    both = np.concatenate([a_x - a_x.mean(), b_x - b_x.mean()]) if a_x.size and b_x.size else np.empty(0)
    var = both.var() if both.size else 0.0
    if var > 0 and a_m.n > 3 and b_m.n > 3:
        mu4 = float(np.mean(both**4))
        se = math.sqrt(max(mu4 - var**2, 0.0) * (1 / a_m.n + 1 / b_m.n))
        if se > 0:
            z = (a_m.var - b_m.var) / se
            out.append(("variance", z, float(2 * special.ndtr(-abs(z)))))
        z = (a_m.mean - b_m.mean) / math.sqrt(var * (1 / a_m.n + 1 / b_m.n))
        out.append(("mean", z, float(2 * special.ndtr(-abs(z)))))
    if a_x.size > 1 and b_x.size > 1:
        res = stats.ks_2samp(a_x, b_x)
        out.append(("ks", float(res.statistic), float(res.pvalue)))
    return out


def compare(rep: Any, job: Any) -> None:
    """Add ``sharded_law_differs`` (a severe finding) and the bit comparison to ``rep``."""
    moments, samples, bits = unsharded_evidence(job, rep)
    rows = []
    for g in rep.groups:
        if g.dtype not in FLOATS or g.name not in moments or not g.moments.n or g.constant:
            continue
        u = moments[g.name]
        for test, z, p in _two_sample(g.moments, g.sample(), u, samples.get(g.name, np.empty(0))):
            rows.append((g, test, z, p, u))
    rejected = st.holm([r[3] for r in rows], rep.alpha)
    bad: dict[str, list[str]] = {}
    ratios = {}
    for (g, test, _, p, u), rej in zip(rows, rejected, strict=True):
        if rej:
            ratios[g.name] = g.moments.var / u.var if u.var else math.inf
            bad.setdefault(g.name, []).append(f"{test} p={p:.2g}")
    rep.sharded["unsharded"] = {"tests": len(rows), "groups_differ": sorted(bad), "bit_equal": bits}
    if bad:
        members = [m for g in rep.groups if g.name in bad for m in g.members]
        text = "; ".join(f"{name}: var sharded/unsharded {ratios[name]:.4g} ({', '.join(v)})"
                         for name, v in bad.items())
        rep.findings.insert(0, Finding("sharded_law_differs", members, f"{len(bad)} group(s) whose sharded law "
                                       f"differs from the same model's unsharded init: {text}", {"groups": bad}))
    n_eq, n = len(bits["equal"]), len(bits["equal"]) + len(bits["differ"])
    rep.notes.append(f"unsharded comparison: laws {'differ in ' + str(len(bad)) + ' group(s)' if bad else 'agree'} "
                     f"({len(rows)} tests, Holm); bit-equal to the unsharded init: {n_eq} of {n} parameter(s) "
                     "(not required: DTensor's RNG does not promise it)")

