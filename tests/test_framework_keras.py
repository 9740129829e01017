"""The Keras binding, adapters/keras.toml and --backend/--all-backends: conversion, fans, a
caught wrong claim, findings, and the cross-backend comparison.

Keras runs on the backend KERAS_BACKEND names (one per process; tox has one env per backend).
Every statistical assertion uses a fixed seed and a sample sized so the effect it checks is
many standard errors away from the threshold (the sizes are argued next to each test).
"""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from initspec.errors import InputError
from initspec.frameworks.manifest import Case, load_manifest
from initspec.frameworks.target import parse_target

pytestmark = pytest.mark.framework("keras")
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def keras():
    return pytest.importorskip("keras")


@pytest.fixture(scope="module")
def backend(keras) -> str:
    return keras.backend.backend()


def drawer(call: str, convention: str = "keras"):
    from initspec.frameworks import keras as binding

    target = parse_target(call)
    return binding.prepare(target.load(), target, convention)


# ---- no framework import, CLI validation (no Keras needed) -----------------------------------

def test_bindings_import_no_framework_at_import_time():
    code = ("import sys, initspec.frameworks.keras, initspec.frameworks.tensorflow, initspec.engine.backends; "
            "print(sorted(m for m in ('keras', 'tensorflow', 'torch', 'jax') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(("args", "message"), [
    (("check", "numpy", "--backend", "jax"), "--backend jax applies to keras only, not to numpy"),
    (("check", "torch", "--all-backends"), "--all-backends applies to keras only, not to torch"),
    (("check", "keras", "--backend", "mxnet"), "--backend 'mxnet': use one of tensorflow, jax, torch, numpy"),
    (("check", "keras", "--backend", "jax", "--all-backends"), "give either --backend or --all-backends"),
    (("check", "--target", "keras.initializers:HeNormal", "--scheme", "he_truncated_normal", "--all-backends"),
     "--all-backends works on a framework manifest"),
])
def test_backend_options_misused_are_one_line_and_exit_2(run_cli, args, message):
    code, out, err = run_cli(*args)
    assert code == 2
    assert err.strip() == f"initspec: error: {message}" or message in err
    assert len(err.strip().splitlines()) == 1 and out == ""


# ---- the cross-backend comparison, on synthetic reports --------------------------------------

def _report(var: float, verdict: str = "pass", xfail: str | None = None, n: int = 1_000_000) -> dict:
    """One result of he_normal on (128, 512): Var = 2/128, N(0, var) has mu4 = 3 var²."""
    exp = 2 / 128
    return {"results": [{"id": "HeNormal[128x512-float32]", "scheme": "he_normal", "fan_in": 128, "fan_out": 512,
                         "dtype": "float32", "verdict": verdict, "xfail": xfail,
                         "expected": {"var": exp, "mean": 0.0},
                         "observed": {"n": n, "var": var * exp, "mean": 0.0}}]}


def test_compare_agrees_on_equal_moments_and_flags_a_variance_difference():
    """At n = 1e6 per backend the two-sample variance z has SE sqrt(2 · 2/n) = 0.2% of the
    variance: a 3% difference is z ≈ 15 (rejected at any alpha used here); 0.02% is z ≈ 0.1."""
    from initspec.engine.backends import compare

    rows = compare({"jax": _report(1.0), "torch": _report(1.0002)}, alpha=1e-4)
    assert rows[0]["agree"] and rows[0]["explained"]
    rows = compare({"jax": _report(1.0), "torch": _report(1.03)}, alpha=1e-4)
    var = next(t for t in rows[0]["tests"] if t["test"] == "variance")
    assert var["rejected"] and var["z"] < -10 and not rows[0]["agree"] and not rows[0]["explained"]
    rows = compare({"jax": _report(1.0), "torch": _report(1.03, "xfail", "known")}, alpha=1e-4)
    assert not rows[0]["agree"] and rows[0]["explained"]


def test_compare_sides_of_verdicts():
    """xpass and pass conform, fail/xfail/error deviate: a pass next to an xfail is a difference."""
    from initspec.engine.backends import compare

    rows = compare({"jax": _report(1.0, "xpass", "k"), "torch": _report(1.0)}, alpha=1e-4)
    assert rows[0]["agree"]
    rows = compare({"jax": _report(1.0, "xfail", "k"), "torch": _report(1.0)}, alpha=1e-4)
    assert not rows[0]["agree"] and rows[0]["explained"]


# ---- the binding --------------------------------------------------------------------------------

def test_bfloat16_conversion_is_bit_exact(keras):
    """Every finite and infinite bfloat16 bit pattern survives backend tensor -> numpy unchanged."""
    import ml_dtypes

    from initspec.frameworks.keras import to_numpy

    bits = np.arange(2**16, dtype=np.uint16)
    values = bits.view(ml_dtypes.bfloat16)
    keep = ~np.isnan(values.astype(np.float32))
    out = to_numpy(keras.ops.convert_to_tensor(values[keep], dtype="bfloat16"))
    assert out.dtype == np.dtype(ml_dtypes.bfloat16)
    assert np.array_equal(out.view(np.uint16), bits[keep])


@pytest.mark.parametrize("dtype", ["bfloat16", "float16", "float32"])
def test_draw_equals_the_initializer_called_directly(keras, dtype):
    x = drawer("keras.initializers:HeNormal")(Case((64, 96)), dtype, 3)
    direct = keras.ops.convert_to_numpy(keras.initializers.HeNormal(seed=3)((64, 96), dtype=dtype))
    assert x.dtype == direct.dtype and x.dtype.name == dtype
    assert np.array_equal(x.view(np.uint8), np.asarray(direct).view(np.uint8))


def test_seed_makes_draws_repeatable_and_distinct(keras):
    draw = drawer("keras.initializers:GlorotUniform")
    a, b, c = (draw(Case((32, 16)), "float32", s) for s in (5, 5, 6))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    layer = drawer("keras.layers:Dense", "keras_layer")
    case = Case((16, 32), kwargs={"units": 32, "build_shape": [1, 16]}, param="kernel")
    a, b, c = (layer(case, "float32", s) for s in (5, 5, 6))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_layer_param_slices_the_fused_lstm_bias(keras):
    """unit_forget_bias: the forget-gate quarter (units..2 units) of the LSTM bias is ones."""
    draw = drawer("keras.layers:LSTM", "keras_layer")
    kwargs = {"units": 8, "build_shape": [1, 3, 4]}
    full = draw(Case((32,), kwargs=kwargs, param="bias"), "float32", 0)
    assert np.array_equal(full, np.r_[np.zeros(8), np.ones(8), np.zeros(16)].astype(np.float32))
    assert np.array_equal(draw(Case((8,), kwargs=kwargs, param="bias[8:16]"), "float32", 0), np.ones(8, np.float32))
    with pytest.raises(InputError, match=r"has no weight of that name \(it has bias, kernel, recurrent_kernel\)"):
        draw(Case((8,), kwargs=kwargs, param="gates"), "float32", 0)


def test_manifest_fans_are_keras_fans(keras):
    """Every fan the engine uses for keras.toml is the one Keras computes: compute_fans on the
    shape, input_axes/output_axes when the call passes them, the einsum's axes for EinsumDense."""
    from keras.src.initializers.random_initializers import compute_fans
    from keras.src.layers.core.einsum_dense import _analyze_einsum_string

    checked = 0
    for entry in load_manifest(ROOT / "adapters" / "keras.toml").entries:
        kw = parse_target(entry.call).kwargs
        for case in entry.cases:
            ours = (case.fan_in, case.fan_out) if case.fan_in else entry.layout.fans(case.shape)
            if "input_axes" in kw:
                theirs = compute_fans(case.shape, kw["input_axes"], kw["output_axes"])
            elif entry.call.endswith("EinsumDense"):
                k = case.kwargs
                shape, _, _, ia, oa = _analyze_einsum_string(k["equation"], None, tuple(k["build_shape"]),
                                                             k["output_shape"])
                assert tuple(shape) == case.shape, entry.id
                theirs = compute_fans(shape, ia, oa)
            else:
                theirs = compute_fans(case.shape)
            assert ours == theirs, (entry.id, case.shape)
            checked += 1
    assert checked > 100


def test_a_wrong_claim_is_caught(claims_are_held, keras):
    """GlorotNormal declared as he_normal: Var 2/fan_in instead of 2/(fan_in + fan_out), 5x on
    (128, 512) and 1.1x on (1000, 96), each hundreds of standard errors at the run's sample size
    (sized to catch a 1% std error), so the exit code is 1 with certainty.  GlorotUniform with
    its true claim exits 0 with probability >= 1 - alpha (1e-4) under the fixed seed."""
    body = ('framework = "keras"\nconvention = "keras"\nlayout = "tf"\ndtypes = ["float32"]\n\n'
            '[[entry]]\nid = "claim_under_test"\ncall = "keras.initializers:{cls}"\n'
            'claims = "{claim}"\nshapes = [[128, 512], [1000, 96]]\n')
    claims_are_held(body.format(cls="GlorotNormal", claim="he_normal"),
                    body.format(cls="GlorotUniform", claim="glorot_uniform"), 2)


def test_select_refuses_a_second_backend_in_one_process(keras, backend):
    from initspec.frameworks.keras_backends import BACKENDS, select

    select(backend)  # the backend already in use: fine
    other = next(b for b in BACKENDS if b != backend)
    with pytest.raises(InputError, match=f"already imported with the {backend} backend"):
        select(other)


def test_diff_at_backend_runs_that_backend(keras, backend, run_cli, tmp_path):
    """`diff keras@B:X keras:X` samples side A on B, not on this process's backend (each side is a
    worker process; the worker reports the backend it ran on and a mismatch is refused).  B is a
    backend other than this env's that this env can run (Keras's numpy backend imports jax): the
    keras-jax and keras-numpy envs run it, the others have no second backend."""
    import importlib.util

    needs = {"numpy": "jax", "jax": "jax", "tensorflow": "tensorflow", "torch": "torch"}
    runnable = [b for b, module in needs.items() if b != backend and importlib.util.find_spec(module)]
    if not runnable:
        pytest.skip(f"no Keras backend besides {backend} can run in this env")
    other = runnable[0]
    out = tmp_path / "d.json"
    code, text, err = run_cli("diff", f"keras@{other}:GlorotNormal", "keras:GlorotNormal", "--samples", "5000",
                              "--json", str(out))
    assert code in (0, 1), text + err  # the verdict is not the point here, the backends are
    doc = json.loads(out.read_text())
    assert doc["side_a"]["backend"] == other
    assert doc["side_a"]["label"] == f"keras@{other}:GlorotNormal"
    assert doc["side_b"]["backend"] == backend


def test_seed_in_a_keras_call_is_refused(keras, run_cli):
    """HeNormal(seed=3) would be rebuilt as HeNormal(seed=<draw's seed>) every draw: the 3 never
    mattered, so the call is refused (exit 2) rather than silently overridden."""
    code, _, err = run_cli("check", "--target", "keras.initializers:HeNormal(seed=3)", "--convention", "keras",
                           "--scheme", "he_normal")
    assert code == 2
    assert "initspec seeds each draw; remove seed=" in err.strip()
    code, out, err = run_cli("check", "--target", "keras.initializers:HeNormal", "--convention", "keras",
                             "--layout", "tf", "--scheme", "he_truncated_normal", "--shape", "64,32", "-q")
    assert code == 0, out + err  # the same initializer without the seed runs (and passes)


# ---- findings -------------------------------------------------------------------------------------

def test_distribution_normal_is_a_truncated_normal(keras):
    """VarianceScaling(distribution='normal') is mapped to 'truncated_normal'.

    2^20 values of VarianceScaling(1, fan_in, 'normal') on (1024, 1024): the corrected
    truncated normal has no value beyond its bound 2 sigma_pre = 2/0.8796 sqrt(1/1024), while a
    plain N(0, 1/1024) puts 2 sf(2.2737) = 2.3% (24 000 values) beyond it.  The bound is 1e-4
    (105 values): torch's 4-candidate overflow (4.3e-6, ~4.5 expected) stays far below it.
    The variance is 1/fan_in: SE of the ratio sqrt((k - 1)/n) = 0.0011 (k = 2.36), bound 6 SE.
    """
    x = drawer("keras.initializers:VarianceScaling(scale=1.0, mode='fan_in', distribution='normal')")(
        Case((1024, 1024)), "float32", 0).astype(np.float64)
    sigma = math.sqrt(1 / 1024)
    bound = 2 * sigma / 0.87962566103423978
    assert (np.abs(x) > bound * (1 + 1e-6)).mean() < 1e-4
    assert abs(x.var() / sigma**2 - 1) < 6 * math.sqrt(1.36 / x.size)


def test_truncated_normal_overflow(keras, backend):
    """Finding (torch backend): keras.random.truncated_normal keeps the first of 4 normal
    candidates inside (-2, 2), and candidate 0 when all 4 miss, so P(|x| > 2) = 0.0455^4 = 4.29e-6.

    2^23 values: Poisson mean 36; [12, 66] holds it with probability > 1 - 2e-6.  Every other
    backend truncates exactly: 0 values beyond 2.
    """
    n = 2**23
    x = keras.ops.convert_to_numpy(keras.random.truncated_normal((n,), dtype="float32", seed=11))
    beyond = int((np.abs(x) > 2).sum())
    if backend == "torch":
        assert 12 <= beyond <= 66, beyond
    else:
        assert beyond == 0


def test_bfloat16_uniform_never_reaches_the_top_grid_value(keras, backend):
    """Finding: on TF, JAX and torch a bfloat16 uniform on [0, 1) comes from a lattice and never
    rounds up to 1.0; U(0, 1) rounded to bfloat16 gives 1.0 with probability 2^-9 (half of the
    top cell of width 2^-8).  2^20 draws: 2048 expected, SE 45; the numpy backend (float64 draw,
    one rounding) must land within 6 SE, the others at exactly 0."""
    x = keras.ops.convert_to_numpy(keras.random.uniform((2**20,), 0.0, 1.0, dtype="bfloat16", seed=2))
    top = int((x.astype(np.float64) == 1.0).sum())
    if backend == "numpy":
        assert abs(top - 2048) < 6 * math.sqrt(2048)
    else:
        assert top == 0


def test_numpy_backend_orthogonal_leaks_float64(keras, backend):
    """Finding (numpy backend): Orthogonal(dtype=bfloat16) returns float64 (its QR runs in float64
    and the result is not cast back). Identity(bfloat16) keeps its dtype on every backend with
    numpy 2 / ml_dtypes 0.7 (`gain * eye` with a Python float no longer promotes)."""
    if backend == "numpy":  # elsewhere a bfloat16 QR is refused outright (README: no 16-bit QR)
        ortho = drawer("keras.initializers:Orthogonal")(Case((8, 8)), "bfloat16", 0)
        assert ortho.dtype.name == "float64"
    eye = drawer("keras.initializers:Identity")(Case((8, 8)), "bfloat16", 0)
    assert eye.dtype.name == "bfloat16"
    assert np.array_equal(eye.astype(np.float32), np.eye(8, dtype=np.float32))


# ---- --all-backends, end to end ------------------------------------------------------------------

def test_all_backends_runs_merges_and_compares(tmp_path, keras, backend):
    """Each installed backend in its own process on a 2-shape manifest; missing ones are skipped."""
    manifest = tmp_path / "tiny.toml"
    manifest.write_text('framework = "keras"\nconvention = "keras"\nlayout = "tf"\ndtypes = ["float32"]\n\n'
                        '[[entry]]\nid = "GlorotUniform"\ncall = "keras.initializers:GlorotUniform"\n'
                        'claims = "glorot_uniform"\nshapes = [[128, 512], [1000, 96]]\n')
    out = tmp_path / "all.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("INITSPEC_PYTHON_")}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run([sys.executable, "-m", "initspec", "check", "--manifest", str(manifest), "--all-backends",
                           "--json", str(out)], capture_output=True, text=True, env=env, cwd=tmp_path, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(out.read_text())
    assert set(doc["backends"]) == {"tensorflow", "jax", "torch", "numpy"}
    assert doc["backends"][backend]["status"] == "ran"
    ran = [b for b, info in doc["backends"].items() if info["status"] == "ran"]
    for b, info in doc["backends"].items():
        assert info["status"] in ("ran", "skipped"), info
        if info["status"] == "skipped":
            assert "not installed" in info["reason"] or "cannot be imported" in info["reason"]
            assert f"keras[{b}]: skipped" in proc.stdout
    assert {r["backend"] for r in doc["results"]} == set(ran)
    assert len(doc["results"]) == 2 * len(ran)
    assert all(r["verdict"] == "pass" for r in doc["results"])
    assert doc["summary"]["compared"] == (2 if len(ran) > 1 else 0)
    assert "results compared" in proc.stdout or "needs two backends" in proc.stdout


# ---- the xfail files: every line matches, no result is matched twice ---------------------------

@pytest.mark.parametrize(("framework", "backend"), [("keras", b) for b in ("tensorflow", "jax", "torch", "numpy")]
                         + [("tensorflow", None)])
def test_each_xfail_line_matches_and_no_result_matches_two(framework, backend):
    """An unmatched line is dead weight, and a result matched by two lines is wrong twice over:
    the runner applies every matching line in turn, so a second match turns its xfail into an
    xpass.  (Pure data: no framework needed.)"""
    from types import SimpleNamespace

    from initspec.engine.runner import xfail_matches
    from initspec.frameworks.manifest import load_xfails, manifest_path

    ids = [SimpleNamespace(id=f"{e.id}[{c.label}-{d}]", entry=e.id)
           for e in load_manifest(manifest_path(framework)).entries for d in e.dtypes for c in e.cases]
    lines = load_xfails(framework) + (load_xfails(f"{framework}-{backend}") if backend else [])
    for pattern, _ in lines:
        assert any(xfail_matches(r, pattern) for r in ids), f"{pattern!r} matches no result"
    for r in ids:
        hits = [p for p, _ in lines if xfail_matches(r, p)]
        assert len(hits) <= 1, f"{r.id} is matched by {hits}"


# ---- batched draws (issue 13): draw.many on the jax and tensorflow backends -----------------------

BATCHED = {"jax": "jax.jit(vmap)", "tensorflow": "tf.function(map_fn)"}


def test_many_only_where_a_compiled_draw_means_the_same(keras, backend):
    """A seeded initializer class gets `many` on jax and tensorflow (torch and numpy stay eager);
    a seedless one (Zeros, Identity), an initializer instance (it keeps its own seed) and a layer
    never do."""
    draw = drawer("keras.initializers:GlorotUniform")
    assert getattr(draw, "path", None) == BATCHED.get(backend)
    assert hasattr(draw, "many") == (backend in BATCHED)
    for call in ("keras.initializers:Zeros", "keras.initializers:Identity"):
        assert not hasattr(drawer(call), "many"), call
    assert not hasattr(drawer("keras.layers:Dense", "keras_layer"), "many")
    from initspec.frameworks import keras as binding

    instance = keras.initializers.HeNormal(seed=1)
    assert not hasattr(binding.prepare(instance, parse_target("keras.initializers:HeNormal"), "keras"), "many")


def test_seed_rows_are_the_tensors_draw_seed_makes(keras):
    """The batch's seed rows equal Keras's own draw_seed(int) on every backend (uint32 on jax and
    numpy, int64 on tensorflow, int32 two's complement on torch), including seeds >= 2^31."""
    from keras.src.random.seed_generator import draw_seed

    from initspec.frameworks.keras import seed_rows

    seeds = [0, 1, 12345, 2**31 - 1, 2**31, 2**32 - 1]
    rows = seed_rows(seeds)
    theirs = np.stack([np.asarray(keras.ops.convert_to_numpy(draw_seed(s))) for s in seeds])
    assert rows.dtype == theirs.dtype and np.array_equal(rows, theirs)


def np_dtype_of(name: str) -> np.dtype:
    from initspec.spec.reference import np_dtype

    return np.dtype(np_dtype(name))


def _batched_drawer(keras, backend, call: str):
    if backend not in BATCHED:
        pytest.skip(f"the {backend} backend draws eagerly (no many)")
    return drawer(call)


@pytest.mark.parametrize(("call", "shape", "dtype"), [
    ("keras.initializers:GlorotNormal", (5, 5, 3, 8), "bfloat16"),
    ("keras.initializers:RandomNormal(mean=0.5, stddev=2.0)", (64, 32), "float32"),
    ("keras.initializers:VarianceScaling(scale=2.0, mode='fan_in', distribution='untruncated_normal')",
     (7, 8, 16), "float16"),
    ("keras.initializers:Orthogonal", (32, 16), "float32"),
])
def test_many_is_deterministic_distinct_and_typed(keras, backend, call, shape, dtype):
    """The compiled path: rows (len(seeds), *shape) in the eager dtype (bfloat16 as ml_dtypes),
    the same seeds give the same bits, every row differs from every other, and a second batch
    length works."""
    draw = _batched_drawer(keras, backend, call)
    seeds = [11, 12, 13, 14, 2**31 - 2]
    a, b = draw.many.compiled(Case(shape), dtype, seeds), draw.many.compiled(Case(shape), dtype, seeds)
    assert a.shape == (len(seeds), *shape)
    assert a.dtype == draw(Case(shape), dtype, 11).dtype == np_dtype_of(dtype)
    assert np.array_equal(a.view(np.uint8), b.view(np.uint8))
    flat = a.reshape(len(seeds), -1).view(np.uint8)
    assert len({row.tobytes() for row in flat}) == len(seeds)
    c = draw.many.compiled(Case(shape), dtype, seeds[:2])
    assert np.array_equal(c.view(np.uint8), a[:2].view(np.uint8))


def test_many_raises_where_eager_raises(keras, backend):
    """Orthogonal has no 16-bit QR on jax/tensorflow: the batch raises as the eager draw does
    (the runner then falls back to the eager draw, which records the error)."""
    draw = _batched_drawer(keras, backend, "keras.initializers:Orthogonal")
    with pytest.raises(Exception):  # noqa: B017 - the backend's own error type
        draw(Case((8, 8)), "bfloat16", 0)
    with pytest.raises(Exception):  # noqa: B017
        draw.many.compiled(Case((8, 8)), "bfloat16", [0, 1])
    with pytest.raises(Exception):  # noqa: B017
        draw.many(Case((8, 8)), "bfloat16", [0, 1])


def test_many_draws_a_cheap_batch_eagerly_on_tensorflow_only(keras, backend):
    """On TensorFlow `many` compiles only when the batch's eager draws would cost more than a
    trace: 3 draws of 64 values (well under a millisecond each, a trace is tens of ms) never do,
    so the rows are the eager draws, bit for bit.  On JAX it always compiles.  The choice is kept
    per (shape, dtype, length), so a redraw gives the same bits."""
    draw = _batched_drawer(keras, backend, "keras.initializers:RandomNormal(mean=0.5, stddev=2.0)")
    seeds = [1, 2, 3]
    a, b = draw.many(Case((8, 8)), "float32", seeds), draw.many(Case((8, 8)), "float32", seeds)
    way = "eager" if backend == "tensorflow" else "compiled"
    assert draw.many.way == {((8, 8), "float32", 3): way}
    same = (np.stack([draw(Case((8, 8)), "float32", s) for s in seeds]) if way == "eager"
            else draw.many.compiled(Case((8, 8)), "float32", seeds))
    assert np.array_equal(a.view(np.uint8), same.view(np.uint8)) and np.array_equal(a, b)


def test_jax_programs_are_shared_across_entries(keras, backend):
    """GlorotUniform and HeUniform on one shape are the same `uniform` program with other limits:
    one compiled function serves both (the limits are its inputs), and each still draws its own
    law's bits (checked against eager in test_many_bits_against_eager)."""
    if backend != "jax":
        pytest.skip("program sharing is the JAX path's")
    from initspec.frameworks import jax as jax_binding

    before = len(jax_binding._SHARED)
    glorot, he = drawer("keras.initializers:GlorotUniform"), drawer("keras.initializers:HeUniform")
    a = glorot.many(Case((24, 40)), "float32", [5, 6])
    b = he.many(Case((24, 40)), "float32", [5, 6])
    assert len(jax_binding._SHARED) == before + 1
    ratio = np.abs(b).max() / np.abs(a).max()  # limits sqrt(6/24) vs sqrt(6/64): ratio sqrt(64/24)
    assert 1.5 < ratio < 1.75


# Every seeded initializer of adapters/keras.toml, one case and each of its dtypes: compared bit
# for bit with the eager draws of the same seeds.
def _seeded_entries() -> list[tuple[str, tuple[int, ...], str]]:
    out = []
    for entry in load_manifest(ROOT / "adapters" / "keras.toml").entries:
        if entry.convention == "keras" and entry.call.split(":")[1].split("(")[0] not in (
                "Zeros", "Ones", "Constant", "Identity"):
            out += [(entry.call, min(entry.cases, key=lambda c: math.prod(c.shape)).shape, d) for d in entry.dtypes
                    if not (entry.call.split(":")[1].startswith("Orthogonal") and d != "float32")]
    return out


def _ulp_of_largest(x: np.ndarray) -> float:
    """One unit in the last place of the array's largest magnitude, in its storage dtype."""
    big = float(np.max(np.abs(x.astype(np.float64))))
    return float(np.spacing(np.asarray(big, dtype=np.float32))) * (
        {"float32": 1, "float16": 2**13, "bfloat16": 2**16}[x.dtype.name])


def test_many_bits_against_eager(keras, backend):
    """Row i of many(seeds) against draw(seeds[i]), every seeded entry x dtype of keras.toml
    (4 seeds each).  TensorFlow: bit-identical (the same stateless kernels, one per row, in a
    while_loop).  JAX: the untruncated normals (RandomNormal, VarianceScaling 'untruncated_normal')
    come out of one fused XLA program whose erfinv polynomial and `x * stddev + mean` round
    differently from the eager op-by-op draw: a share of their float32/float16 values differ, by at
    most 2 units in the last place of the array's largest value (the README's Speed section gives the
    shares; near mean + stddev * x = 0 that is many ulps of the tiny value itself).  Everything
    else is bit-identical (uniform, truncated normal, Orthogonal), which is asserted."""
    if backend not in BATCHED:
        pytest.skip(f"the {backend} backend draws eagerly (no many)")
    seeds = [3, 77, 4096, 2**31 - 5]
    for call, shape, dtype in _seeded_entries():
        draw = drawer(call)
        batch = draw.many.compiled(Case(shape), dtype, seeds)
        eager = np.stack([draw(Case(shape), dtype, s) for s in seeds])
        assert batch.dtype == eager.dtype, call
        if backend == "tensorflow" or not ("RandomNormal" in call or "untruncated_normal" in call):
            assert np.array_equal(batch.view(np.uint8), eager.view(np.uint8)), (call, shape, dtype)
        else:
            err = np.abs(batch.astype(np.float64) - eager.astype(np.float64)).max()
            assert err <= 2 * _ulp_of_largest(eager), (call, shape, dtype, err)


# The law test: batched rows against eager draws with OTHER seeds (so that equal bits cannot make
# it pass by construction), a two-sample KS and a two-sample variance z-test per case, Holm over
# all of them at family level 1e-3.
LAW_CASES = [
    ("keras.initializers:GlorotNormal", (128, 512), "float32"),
    ("keras.initializers:HeUniform", (1000, 96), "bfloat16"),
    ("keras.initializers:VarianceScaling(scale=2.0, mode='fan_in', distribution='untruncated_normal')",
     (128, 512), "float32"),
    ("keras.initializers:RandomNormal(mean=0.5, stddev=2.0)", (128, 512), "float32"),
    ("keras.initializers:RandomNormal", (128, 512), "float16"),
    ("keras.initializers:TruncatedNormal(mean=1.0, stddev=0.5)", (7, 8, 16), "bfloat16"),
    ("keras.initializers:Orthogonal", (256, 64), "float32"),
]
LAW_N = 1 << 20  # values per side


def _two_sample_p(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(KS p, variance z-test p) of two samples; the variance SE uses each side's kurtosis."""
    from scipy import stats

    x, y = x.astype(np.float64).ravel(), y.astype(np.float64).ravel()
    ks = stats.ks_2samp(x, y).pvalue
    vx, vy = x.var(), y.var()
    kx, ky = stats.kurtosis(x, fisher=False), stats.kurtosis(y, fisher=False)
    se = math.sqrt(vx**2 * (kx - 1) / x.size + vy**2 * (ky - 1) / y.size)
    z = (vx - vy) / se if se > 0 else 0.0
    return float(ks), float(2 * stats.norm.sf(abs(z)))


def _law_samples(draw, shape, dtype) -> tuple[np.ndarray, np.ndarray]:
    k = -(-LAW_N // math.prod(shape))
    batched = draw.many.compiled(Case(shape), dtype, list(range(10_000, 10_000 + k)))
    eager = np.stack([draw(Case(shape), dtype, s) for s in range(k)])
    return batched, eager


def test_many_has_the_eager_law(keras, backend):
    """The batched draws have the eager draws' law on a representative set (normal, truncated,
    uniform, the fused-affine normals whose bits differ on JAX, 16-bit dtypes, Orthogonal).

    Power, at n = 2^20 values a side and a per-test level of at least 1e-3 / 14: the variance
    z-test's SE is sqrt(2 (k - 1) / n) of the variance (<= 0.2% for k <= 3), so a 1% error in the
    std (2% in the variance) is >= 10 SE, far beyond Holm's <= 4.0-SE threshold; the KS critical
    distance sqrt(-ln(alpha/2)/2) sqrt(2/n) = 0.0031 is below the 0.0048 that a 2% scale error
    moves a normal's CDF (0.02 max|x phi(x)|).  The negative control proves that power: the same
    machinery rejects the batch against the eager draws scaled by 1.02.  (Orthogonal's entries are
    not independent -- its sum of squares is fixed -- which only makes both tests conservative.)
    Seeds are fixed, so the outcome is deterministic; it holds for a valid implementation with
    probability >= 0.999."""
    from initspec.engine.stats import holm

    if backend not in BATCHED:
        pytest.skip(f"the {backend} backend draws eagerly (no many)")
    p, control = [], None
    for call, shape, dtype in LAW_CASES:
        batched, eager = _law_samples(drawer(call), shape, dtype)
        p += _two_sample_p(batched, eager)
        if control is None:
            control = _two_sample_p(batched, eager.astype(np.float64) * 1.02)
    assert not any(holm(p, 1e-3)), dict(zip([f"{c[0]}:{t}" for c in LAW_CASES for t in ("ks", "var")], p, strict=True))
    assert all(holm(p + list(control), 1e-3)[-2:]), control
