"""The framework-neutral parts of the sharded audit (no ranks): the exact merge of per-rank
moments, the sentinel and digests of a streamed block, the stratified sample's quotas, the ulps
distance, and the cross-rank findings on hand-made records.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from initspec.audit.draws import digest
from initspec.audit.shards import findings as sf
from initspec.audit.shards.merge import (
    HEAD,
    SENTINEL,
    ShardRecord,
    merge_records,
    merged,
    quotas,
    stream,
    ulps_apart,
)
from initspec.engine.stats import Moments


def _moments(x: np.ndarray, shift: float = 0.0) -> Moments:
    m = Moments(shift=shift)
    m.add(x)
    return m


def test_moments_merged_across_ranks_equal_the_whole():
    """Chan's update is exact: uneven blocks summed about different shifts give the whole's moments."""
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 0.02, 100_003)
    parts = np.split(x, [1, 17_000, 50_001, 99_000])
    m = merged(_moments(p, shift=float(p[0])) for p in parts)
    assert m.n == x.size
    assert m.mean == pytest.approx(x.mean(), rel=1e-14)
    assert m.var == pytest.approx(x.var(ddof=1), rel=1e-10)
    assert (m.minimum, m.maximum) == (x.min(), x.max())


def _record(x: np.ndarray, rank: int, key: tuple, path: str = "w", size_shape=None) -> ShardRecord:
    rec = ShardRecord(path, rank, (x.size * 2,), str(x.dtype), x.shape, (0,), "(Shard(dim=0),)", "tp=2", key)
    return stream(rec, iter([x]))


def test_a_streamed_block_counts_its_sentinel_and_non_finite_values():
    x = np.random.default_rng(1).normal(size=1000).astype(np.float32)
    x.view(np.uint32)[:10] = SENTINEL["float32"][1]  # never written
    x[10:13] = np.nan  # written, not finite
    rec = _record(x, 0, (("tp", 0),))
    assert (rec.unwritten, rec.nonfinite, rec.moments.n, rec.size) == (10, 3, 987, 1000)
    assert rec.digest == digest(x)  # the single-process audit's digest of the same values
    assert rec.head.size == HEAD and np.isnan(rec.head[0])


def test_replicas_are_counted_once_and_blocks_each():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=500).astype(np.float32), rng.normal(size=500).astype(np.float32)
    recs = [_record(a, 0, (("tp", 0),)), _record(b, 1, (("tp", 1),)), _record(a, 2, (("tp", 0),)),
            _record(b, 3, (("tp", 1),))]
    ev = merge_records(recs)["w"]
    assert [r.rank for r in ev.owners] == [0, 1]
    assert ev.moments.n == 1000 and ev.moments.var == pytest.approx(np.concatenate([a, b]).astype(float).var(ddof=1))
    assert ev.digest == hashlib.blake2b(digest(a) + digest(b), digest_size=16).digest()


def test_quotas_split_each_share_over_the_blocks_in_proportion():
    recs = [_record(np.ones(700, np.float32), 0, ((0,),), "w"), _record(np.ones(300, np.float32), 1, ((1,),), "w"),
            _record(np.ones(10, np.float32), 0, (), "b")]
    ev = merge_records(recs)
    q = quotas({"g1": ["w"], "g2": ["b"]}, ev, 0, 1)
    # the first instance's share is half the cap: more than either parameter holds, so all of it
    assert q == {("w", 0): 700, ("w", 1): 300, ("b", 0): 10}
    q = quotas({"g": ["w"] * 1000}, ev, 0, 1)  # a share of 100 over blocks of 700 and 300
    assert q == {("w", 0): 70, ("w", 1): 30}


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
def test_ulps_apart(dtype):
    from initspec.spec.reference import np_dtype

    dt = np_dtype(dtype)
    a = np.array([1.0, -2.5, 0.0, 3e-3], dtype=dt)
    ints = {2: np.int16, 4: np.int32, 8: np.int64}[dt.itemsize]
    b = (a.view(ints) + np.array([1, 2, 0, 3], dtype=ints)).view(dt)  # 1, 2, 0 and 3 steps away from zero
    assert ulps_apart(a.astype(np.float64), b.astype(np.float64), dtype) == 3
    tiny = np.array([np.finfo(dt).smallest_subnormal, -np.finfo(dt).smallest_subnormal], dtype=dt)
    assert ulps_apart(tiny[:1].astype(np.float64), tiny[1:].astype(np.float64), dtype) == 2  # across zero


def test_shards_cloned_bit_for_bit_and_within_ulps_but_not_constants_or_strangers():
    rng = np.random.default_rng(3)
    a = rng.normal(size=256).astype(np.float32)
    near = (a.view(np.int32) + 1).view(np.float32)
    ev = merge_records([_record(a, 0, ((0,),), "same"), _record(a.copy(), 1, ((1,),), "same"),
                        _record(a, 0, ((0,),), "near"), _record(near, 1, ((1,),), "near"),
                        _record(a, 0, ((0,),), "other"), _record(rng.normal(size=256).astype(np.float32), 1, ((1,),),
                                                                 "other"),
                        _record(np.zeros(256, np.float32), 0, ((0,),), "zeros"),
                        _record(np.zeros(256, np.float32), 1, ((1,),), "zeros")])
    f = sf.shards_cloned(ev, {"same", "near", "other", "zeros"}, {})
    assert f is not None and sorted(f.params) == ["near", "same"]
    assert {d["param"]: d["ulps"] for d in f.extra["details"]} == {"same": 0, "near": 1}
    assert "the blocks of ranks 0, 1 are identical" in f.message and "equal within 1 ulp(s)" in f.message


def test_replicas_differ_names_the_ranks():
    rng = np.random.default_rng(4)
    a = rng.normal(size=64).astype(np.float32)
    ev = merge_records([_record(a, r, ()) for r in range(3)] + [_record(a + 1, 3, ())])
    f = sf.replicas_differ(ev)
    assert f is not None and f.params == ["w"] and f.extra["details"][0]["ranks"] == [0, 3]
    assert sf.replicas_differ(merge_records([_record(a, r, ()) for r in range(4)])) is None
