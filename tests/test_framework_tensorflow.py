"""The tensorflow binding and adapters/tensorflow.toml: conversion, seeding, fans, a caught
wrong claim, findings.

Every statistical assertion uses a fixed seed and a sample sized so the effect it checks is
many standard errors away from the threshold (the sizes are argued next to each test).
"""

import math
from pathlib import Path

import numpy as np
import pytest

from initspec.frameworks.manifest import Case, load_manifest
from initspec.frameworks.target import parse_target

tf = pytest.importorskip("tensorflow")
pytestmark = pytest.mark.framework("tensorflow")

from initspec.frameworks import tensorflow as binding  # noqa: E402 - after the importorskip

ROOT = Path(__file__).resolve().parent.parent


def drawer(call: str):
    target = parse_target(call)
    return binding.prepare(target.load(), target, "tf")


def test_bfloat16_conversion_is_bit_exact():
    """Every finite and infinite bfloat16 bit pattern survives tf tensor -> numpy unchanged."""
    import ml_dtypes

    bits = np.arange(2**16, dtype=np.uint16)
    values = bits.view(ml_dtypes.bfloat16)
    keep = ~np.isnan(values.astype(np.float32))
    out = binding.to_numpy(tf.constant(values[keep], dtype=tf.bfloat16))
    assert out.dtype == np.dtype(ml_dtypes.bfloat16)
    assert np.array_equal(out.view(np.uint16), bits[keep])


@pytest.mark.parametrize("dtype", ["bfloat16", "float16", "float32"])
@pytest.mark.parametrize("call", ["tensorflow.compat.v1:glorot_normal_initializer",
                                  "tensorflow.compat.v1.initializers:he_uniform",
                                  "tensorflow.random:truncated_normal(stddev=0.02)"])
def test_draw_equals_a_direct_seeded_call(call, dtype):
    """The drawer is exactly `tf.random.set_seed(s)` then the initializer (or sampler) with seed=s."""
    x = drawer(call)(Case((64, 96)), dtype, 7)
    t = parse_target(call)
    obj = t.load()
    tf.random.set_seed(7)
    if t.attr == "truncated_normal":
        direct = obj((64, 96), stddev=0.02, dtype=dtype, seed=7)
    else:
        direct = obj(seed=7)((64, 96), dtype=dtype)
    direct = binding.to_numpy(direct)
    assert x.dtype == direct.dtype and x.dtype.name == dtype
    assert np.array_equal(x.view(np.uint8), direct.view(np.uint8))


def test_one_seed_one_tensor_in_eager_mode():
    """In eager mode an op seed alone gives a new tensor on every call; the binding's global
    seed reset makes a seed reproducible, and different seeds differ."""
    init = tf.compat.v1.random_normal_initializer(seed=3)
    assert not np.array_equal(init((16, 16)).numpy(), init((16, 16)).numpy())  # why the reset is needed
    draw = drawer("tensorflow.compat.v1:random_normal_initializer")
    a, b, c = (draw(Case((16, 16)), "float32", s) for s in (3, 3, 4))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_manifest_fans_are_tensorflow_fans():
    """Every fan the engine uses is init_ops._compute_fans; uniform_unit_scaling's input size
    prod(shape[:-1]) is the engine's fan_in on every shape it is checked on."""
    from tensorflow.python.ops.init_ops import _compute_fans

    checked = 0
    for entry in load_manifest(ROOT / "adapters" / "tensorflow.toml").entries:
        for case in entry.cases:
            assert entry.layout.fans(case.shape) == _compute_fans(case.shape), (entry.id, case.shape)
            if entry.id.startswith("uniform_unit_scaling"):
                assert math.prod(case.shape[:-1]) == entry.layout.fans(case.shape)[0]
            checked += 1
    assert checked > 100


def test_a_wrong_claim_is_caught(claims_are_held):
    """glorot_normal_initializer declared as he_normal: Var 2/fan_in instead of 2/(fan_in +
    fan_out), 5x on (128, 512) and 1.1x on (1000, 96), hundreds of standard errors at the run's
    sample size, so the exit code is 1 with certainty; its true claim exits 0 with probability
    >= 1 - alpha (1e-4) under the fixed seed."""
    body = ('framework = "tensorflow"\nconvention = "tf"\nlayout = "tf"\ndtypes = ["float32"]\n\n'
            '[[entry]]\nid = "claim_under_test"\ncall = "tensorflow.compat.v1:glorot_normal_initializer"\n'
            'claims = "{claim}"\nshapes = [[128, 512], [1000, 96]]\n')
    claims_are_held(body.format(claim="he_normal"), body.format(claim="glorot_truncated_normal"), 2)


def test_v1_variance_scaling_is_the_corrected_truncated_normal_not_contrib():
    """Finding: tf.compat.v1.variance_scaling_initializer is core TF's VarianceScaling, whose
    truncated normal has stddev sqrt(scale/n)/0.8796 (variance exactly scale/n), not the removed
    tf.contrib.layers one (stddev sqrt(1.3 scale/n), variance 1.0058 scale/n, cut at 2.28 std).

    2^22 values on (2048, 2048): the variance ratio's SE is sqrt((k - 1)/n) = 0.00057
    (k = 2.36 for a +-2 std truncated normal), so |ratio - 1| < 0.0029 (5 SE) holds for the
    corrected law and fails for contrib's 1.0058 (5.1 SE beyond the band).  No value exceeds the
    corrected bound 2/0.8796 = 2.2737 std; contrib would put 1.2e-3 of its values beyond it.
    """
    x = drawer("tensorflow.compat.v1:variance_scaling_initializer(scale=2.0)")(
        Case((2048, 2048)), "float32", 0).astype(np.float64)
    var = 2.0 / 2048
    assert abs(x.var() / var - 1) < 5 * math.sqrt(1.36 / x.size)
    assert np.abs(x).max() <= 2 / 0.87962566103423978 * math.sqrt(var) * (1 + 1e-6)


def test_bfloat16_uniform_is_a_128_point_lattice():
    """Finding: tf.random.uniform(bfloat16) takes 128 values k/128; U(0, 1) rounded to bfloat16
    takes >= 2000 distinct values in 2^20 draws and rounds up to 1.0 with probability 2^-9
    (2048 expected, SE 45); the lattice's top is 1 - 2^-7 and its mean 127/256 (z = -14 at n = 2^20)."""
    x = binding.to_numpy(tf.random.uniform((2**20,), dtype=tf.bfloat16, seed=1)).astype(np.float64)
    assert np.unique(x).size <= 128
    assert x.max() == 1 - 2**-7
    assert (x - 0.5).mean() * math.sqrt(12 * x.size) < -8


def test_float16_orthogonal_is_computed_in_half_precision():
    """Finding: orthogonal_initializer(float16) runs QR in float16: max |W Wᵀ - I| on (1000, 96)
    is above 8 eps (0.0079), while the float32 draw rounded to float16 stays below 2e-4."""
    def gram_error(w: np.ndarray) -> float:
        w = w.astype(np.float64)
        return float(np.abs(w.T @ w - np.eye(w.shape[1])).max())

    draw = drawer("tensorflow.compat.v1:orthogonal_initializer")
    half = draw(Case((1000, 96)), "float16", 0)
    single = draw(Case((1000, 96)), "float32", 0).astype(np.float16)
    assert gram_error(half) > 8 * np.finfo(np.float16).eps
    assert gram_error(single) < 2e-4


# ---- the batched path: draw.many (tf.function) ----------------------------------------------

def _bits(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x).view(np.uint8)


@pytest.fixture(params=["tf.function", "eager stateless"])
def path(request, monkeypatch):
    """many() through one path at every batch length: tf.function, or the eager twins (by
    default the batch length picks, at binding._MIN_ROWS)."""
    monkeypatch.setattr(binding, "_MIN_ROWS", 1 if request.param == "tf.function" else 10**9)
    return request.param


def test_a_small_batch_takes_the_eager_twins_and_says_so():
    """Below _MIN_ROWS seeds many() runs the twins eagerly (path "eager stateless"), at
    _MIN_ROWS it compiles ("tf.function"); the rows are the same bits either way."""
    draw = drawer("tensorflow.compat.v1:variance_scaling_initializer")
    seeds = list(range(100, 100 + binding._MIN_ROWS))
    small = draw.many(Case((8, 8)), "bfloat16", seeds[:-1])
    assert draw.path == "eager stateless"
    big = draw.many(Case((8, 8)), "bfloat16", seeds)
    assert draw.path == "tf.function"
    assert small.shape == (len(seeds) - 1, 8, 8) and small.dtype == big.dtype
    assert np.array_equal(_bits(small), _bits(big[:-1]))


def test_seed_pair_is_the_eager_ops_seed_pair():
    """The (key, counter) many() feeds each row is the pair an eager op gets from
    random_seed.get_seed after tf.random.set_seed(s) with op seed s, including the truncation
    mod 2^31 - 1 and the (0, 0) -> (0, 2^31 - 1) rule."""
    from tensorflow.python.framework import random_seed

    m = 2**31 - 1
    for s in (0, 1, 7, 0x5EED, m - 1, m, m + 1, 2**31, 2 * m, 2**40 + 3):
        tf.random.set_seed(s)
        assert binding.seed_pair(s) == random_seed.get_seed(s), s


@pytest.mark.parametrize("dtype", ["bfloat16", "float16", "float32"])
def test_many_shape_dtype_and_path(dtype, path):
    """(len(seeds), *shape) in the eager draw's dtype, bfloat16 as ml_dtypes.bfloat16; the path is named."""
    import ml_dtypes

    draw = drawer("tensorflow.compat.v1:glorot_uniform_initializer")
    x = draw.many(Case((5, 5, 3, 8)), dtype, [11, 12, 13])
    assert x.shape == (3, 5, 5, 3, 8)
    assert x.dtype == (np.dtype(ml_dtypes.bfloat16) if dtype == "bfloat16" else np.dtype(dtype))
    assert x.dtype == draw(Case((5, 5, 3, 8)), dtype, 11).dtype
    assert draw.path == path
    assert draw.many(Case((4, 4)), dtype, []).shape == (0, 4, 4)


@pytest.mark.parametrize("call", ["tensorflow.compat.v1:truncated_normal_initializer",
                                  "tensorflow.random:uniform(minval=-1.0, maxval=1.0)",
                                  "tensorflow.compat.v1:orthogonal_initializer"])
def test_many_is_deterministic_and_row_i_depends_on_seeds_i_only(call, path):
    """The trap of stateful ops in a tf.function (the stream continues across calls, and two
    ops with one seed pair repeat each other) does not apply: the same seeds give the same
    bits on a second call, after eager draws in between, and from a fresh drawer (a new
    compilation); a permuted batch permutes the rows; different seeds give different rows."""
    case, seeds = Case((7, 8, 16)), [5, 6, 7, 8, 2**31 - 2, 0]
    draw = drawer(call)
    a = draw.many(case, "float32", seeds)
    draw(case, "float32", 5)
    b = draw.many(case, "float32", seeds)
    c = drawer(call).many(case, "float32", seeds)
    assert np.array_equal(_bits(a), _bits(b)) and np.array_equal(_bits(a), _bits(c))
    perm = [3, 0, 5, 1, 4, 2]
    d = draw.many(case, "float32", [seeds[i] for i in perm])
    assert np.array_equal(_bits(d), _bits(a[perm]))
    flat = a.reshape(len(seeds), -1)
    assert len({row.tobytes() for row in flat}) == len(seeds)


def test_many_restores_the_stateful_ops(path):
    """The twins live only while a batch is traced: afterwards gen_random_ops is TF's own and an
    eager draw is still the direct seeded call."""
    from tensorflow.python.ops import gen_random_ops

    before = {n: getattr(gen_random_ops, n) for n in ("random_standard_normal", "truncated_normal", "random_uniform")}
    drawer("tensorflow.compat.v1:random_normal_initializer").many(Case((8, 8)), "float32", [1, 2])
    assert all(getattr(gen_random_ops, n) is f for n, f in before.items())
    tf.random.set_seed(3)
    direct = tf.compat.v1.random_normal_initializer(seed=3)((8, 8)).numpy()
    assert np.array_equal(drawer("tensorflow.compat.v1:random_normal_initializer")(Case((8, 8)), "float32", 3), direct)


def _manifest_jobs():
    """Every entry of adapters/tensorflow.toml on its first shape, in each of its dtypes."""
    for entry in load_manifest(ROOT / "adapters" / "tensorflow.toml").entries:
        for dtype in entry.dtypes:
            yield pytest.param(entry.call, entry.cases[0], dtype, id=f"{entry.id}-{dtype}")


@pytest.mark.parametrize("call,case,dtype", list(_manifest_jobs()))
def test_many_rows_are_the_eager_draws_bit_for_bit(call, case, dtype, path):
    """Each row of many() is the eager draw with its seed, bit for bit, for every entry of the
    manifest (TF 2.21, CPU): the stateless V2 kernels fill from the Philox key and counter the
    stateful kernel starts from, through the same distributions, and the initializer's own
    arithmetic runs on them.  Where TF cannot draw the dtype eagerly (orthogonal in bfloat16:
    no bfloat16 QR), many() raises too, on the same missing kernel (TypeError at trace where
    eager says InvalidArgumentError): the runner falls back, and the eager draw fails as before."""
    draw = drawer(call)
    seeds = [101, 2**31 - 2, 0]
    try:
        eager = [draw(case, dtype, s) for s in seeds]
    except Exception as e:  # noqa: BLE001 - the eager failure is what many() must match
        assert "not in the list of allowed values" in str(e)
        with pytest.raises(TypeError, match=f"DataType {dtype} not in list of allowed values"):
            draw.many(case, dtype, seeds)
        return
    x = draw.many(case, dtype, seeds)
    for i, e in enumerate(eager):
        assert x[i].dtype == e.dtype and np.array_equal(_bits(x[i]), _bits(e)), (call, seeds[i])


def test_many_and_eager_draw_the_same_law(path):
    """Two-sample tests, batched vs eager, on disjoint seeds (so the samples are independent and
    the test does not lean on the bit equality above), over a representative set: truncated,
    untruncated and uniform variance scaling, orthogonal, fixed-scale samplers, in all three
    dtypes.  Per entry a two-sample KS (scipy.stats.ks_2samp) and a variance z-test (SE from
    each sample's fourth moment); Holm over all 16 p-values at family-wise alpha 1e-3.

    Power: n = 2^17 values a side.  At alpha_each >= 1e-3 / 16 the two-sample KS rejects a sup
    CDF distance above 2.25 sqrt(2 / n) = 0.0088 with power ~1/2 and 0.013 with power ~0.99;
    the variance test's SE is about sqrt(2 (k - 1) / n) = 0.0055 of the variance for a
    normal (k = 3), so a 3.5 % variance difference is rejected with power 0.99.  The mistakes a
    wrong path would make (a missing truncation correction: variance 0.77x; a repeated or
    shifted stream: identical or correlated rows; a different sampler: KS distance >= 0.02)
    are far beyond both.  The sizes keep it under ~10 s on 2 busy cores.
    """
    from scipy import stats

    from initspec.engine.stats import holm

    cases = [("tensorflow.compat.v1:variance_scaling_initializer", (5, 5, 3, 8), "float32"),
             ("tensorflow.compat.v1:variance_scaling_initializer(scale=1.0, mode='fan_avg', "
              "distribution='untruncated_normal')", (128, 512), "bfloat16"),
             ("tensorflow.compat.v1:glorot_uniform_initializer", (7, 8, 16), "float16"),
             ("tensorflow.compat.v1:orthogonal_initializer", (3, 3, 64, 32), "float32"),
             ("tensorflow.random:truncated_normal(stddev=0.02)", (1000, 96), "bfloat16"),
             ("tensorflow.compat.v1:random_uniform_initializer", (128, 512), "float32"),
             ("tensorflow.compat.v1:uniform_unit_scaling_initializer(factor=1.43)", (5, 5, 3, 8), "float32"),
             ("tensorflow.random:normal(mean=1.0, stddev=0.5)", (7, 8, 16), "float16")]
    n = 2**17
    p = []
    for call, shape, dtype in cases:
        draw, case = drawer(call), Case(shape)
        k = math.ceil(n / math.prod(shape))
        eager = np.concatenate([draw(case, dtype, 1000 + j).ravel() for j in range(k)])[:n].astype(np.float64)
        batch = draw.many(case, dtype, [700_000 + j for j in range(k)]).ravel()[:n].astype(np.float64)
        p.append(stats.ks_2samp(eager, batch).pvalue)
        se2 = sum((((s - s.mean()) ** 4).mean() - s.var() ** 2) / s.size for s in (eager, batch))
        p.append(2 * stats.norm.sf(abs(eager.var() - batch.var()) / math.sqrt(se2)))
    rejected = [(cases[i // 2][0], ("ks", "variance")[i % 2], p[i]) for i, r in enumerate(holm(p, 1e-3)) if r]
    assert not rejected


def _two_ops(shape, dtype=tf.float32, seed=None):
    return tf.random.normal(shape, dtype=dtype, seed=seed) + tf.random.normal(shape, dtype=dtype, seed=seed)


def _seed_ignored(shape, dtype=tf.float32, seed=None):
    return tf.random.normal(shape, dtype=dtype)


def _untwinned(shape, dtype=tf.float32, seed=None):
    return tf.random.gamma(shape, 2.0, dtype=dtype, seed=seed)


@pytest.mark.parametrize("obj,why", [
    (_two_ops, "more than one random op"),  # eager continues one stream; a twin would repeat it
    (_seed_ignored, "not the seed passed"),  # the eager op seed comes from the context, not seed=
    (_untwinned, "ran 0 of the twinned random ops"),  # RandomGamma: stateful, no twin
    (tf.compat.v1.random_normal_initializer(seed=3), "not the seed passed"),  # an instance keeps its seed
    (tf.keras.initializers.HeNormal, "ran 0 of the twinned random ops"),  # Keras 3 seeds its own ops
])
def test_many_raises_where_a_batch_would_not_be_the_eager_law(obj, why, path):
    """Where a batched draw would not mean the eager draw, many() raises (the runner falls
    back to the eager loop), once per shape: the second call re-raises the kept error without
    tracing again.  Every case still draws eagerly."""
    target = parse_target("tensorflow.random:normal")
    draw = binding.prepare(obj, target, "tf")
    assert draw(Case((4, 4)), "float32", 1).shape == (4, 4)
    with pytest.raises(NotImplementedError, match=why) as first:
        draw.many(Case((4, 4)), "float32", [1, 2])
    with pytest.raises(NotImplementedError) as second:
        draw.many(Case((4, 4)), "float32", [1, 2])
    assert second.value is first.value


def test_many_of_a_constant_initializer_is_the_constant(path):
    """An unseeded initializer (no seed parameter, no random op) compiles too: every row is its value."""
    x = drawer("tensorflow.compat.v1:constant_initializer(0.3)").many(Case((3, 4)), "bfloat16", [1, 2])
    assert np.array_equal(x.astype(np.float32), np.full((2, 3, 4), np.float32(tf.constant(0.3, tf.bfloat16))))
