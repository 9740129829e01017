"""The torch binding and manifest: conversion, a wrong claim caught, and torch's documented findings.

Every statistical assertion here uses a fixed seed and a sample sized so the effect it
looks for is tens of standard errors away from the null; each test says how many.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from initspec.engine.runner import run  # noqa: E402
from initspec.frameworks import torch as binding  # noqa: E402
from initspec.frameworks.manifest import Case, Entry, load_manifest, manifest_path  # noqa: E402
from initspec.frameworks.target import parse_target  # noqa: E402
from initspec.spec.fans import get_layout  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def _entry(id_: str, call: str, claims: str, cases: list[Case], convention: str = "torch_module",
           dtypes: tuple[str, ...] = ("float32",)) -> Entry:
    return Entry(id=id_, call=call, convention=convention, claims=claims, layout=get_layout("torch"),
                 cases=cases, dtypes=list(dtypes), framework="torch")


def _by_id(results):
    return {r.id: r for r in results}


def _var_ratio(result) -> float:
    return result.observed["var"] / result.expected["var"]


def _draw(call: str, shape: tuple[int, ...], dtype: str, seed: int = 0, convention: str = "torch",
          **case) -> np.ndarray:
    target = parse_target(call)
    return binding.prepare(target.load(), target, convention)(Case(shape=shape, **case), dtype, seed)


# --- the binding ------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_16bit_conversion_is_bit_exact(dtype):
    """All 65536 bit patterns (zeros, subnormals, inf, NaN payloads) survive torch -> numpy."""
    bits = torch.arange(-(2**15), 2**15, dtype=torch.int32).to(torch.int16)
    t = bits.view(binding.torch_dtype(dtype))
    out = binding.to_numpy(t)
    assert out.dtype.name == dtype
    assert np.array_equal(out.view(np.int16), bits.numpy())


def test_float32_conversion_is_bit_exact():
    t = torch.randn(1000, generator=torch.Generator().manual_seed(0))
    assert np.array_equal(binding.to_numpy(t).view(np.int32), t.view(torch.int32).numpy())


def test_draw_is_seeded_and_restores_the_thread_count():
    before = torch.get_num_threads()
    a = _draw("torch.nn.init:kaiming_normal_", (64, 32), "bfloat16", seed=3)
    b = _draw("torch.nn.init:kaiming_normal_", (64, 32), "bfloat16", seed=3)
    c = _draw("torch.nn.init:kaiming_normal_", (64, 32), "bfloat16", seed=4)
    assert a.dtype.name == "bfloat16" and a.shape == (64, 32)
    assert np.array_equal(a.view(np.int16), b.view(np.int16))
    assert not np.array_equal(a.view(np.int16), c.view(np.int16))
    assert torch.get_num_threads() == before
    # the same values as torch's documented seeding
    torch.manual_seed(3)
    want = torch.nn.init.kaiming_normal_(torch.empty(64, 32, dtype=torch.bfloat16))
    assert np.array_equal(a.view(np.int16), want.view(torch.int16).numpy())


def test_module_convention_reads_dotted_parameters_in_the_dtype_under_test():
    w = _draw("torch.nn:MultiheadAttention", (64, 64), "bfloat16", convention="torch_module",
              args=(64, 4), param="out_proj.weight")
    assert w.shape == (64, 64) and w.dtype.name == "bfloat16"


def test_a_missing_parameter_is_an_error_result_not_a_crash():
    e = _entry("Linear.nope", "torch.nn:Linear", "zeros", [Case((4,), args=(3, 4), param="nope")])
    (r,) = run([e])
    assert r.verdict == "error" and "no parameter 'nope'" in r.error


def test_importing_the_binding_does_not_import_torch():
    code = "import sys, initspec, initspec.frameworks.torch; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


# --- a wrong claim is caught ------------------------------------------------------------

MANIFEST = """\
framework = "torch"
convention = "torch"
layout = "torch"
dtypes = ["float32"]

[[entry]]
id = "xavier_normal_as_claimed"
call = "torch.nn.init:xavier_normal_"
claims = "{claims}"
shapes = [[512, 128], [96, 1000]]
"""


@pytest.mark.parametrize(("claims", "code"), [("he_normal", 1), ("glorot_normal", 0)])
def test_check_exit_code_follows_the_claim(tmp_path, run_cli, claims, code):
    """xavier_normal_ claimed as he_normal: Var 2/(in+out) against 2/in, 0.2x at 512x128.

    The engine draws >= 3e5 normal values (relative SE of the variance 0.26%): ~300 SE.

    The control (its true claim, glorot_normal) must exit 0, so the 1 is the claim's doing.
    """
    manifest = tmp_path / "m.toml"
    manifest.write_text(MANIFEST.format(claims=claims))
    report = tmp_path / "r.json"
    status, _, _ = run_cli("check", "--manifest", str(manifest), "--json", str(report), "-q")
    assert status == code
    results = {r["id"]: r for r in json.loads(report.read_text())["results"]}
    r = results["xavier_normal_as_claimed[512x128-float32]"]
    ratio = r["observed"]["var"] / r["expected"]["var"]
    assert ratio == pytest.approx(128 / 640 if code else 1.0, rel=0.02)
    if code:
        assert all(r["verdict"] == "fail" for r in results.values())


# --- findings ---------------------------------------------------------------------------

def test_conv_transpose_counts_out_channels_per_group_as_fan_in():
    """ConvTranspose2d(64, 8, 3): weight (64, 8, 3, 3); torch's fan_in is 8*9 = 72, as its docs say.

    The conv-style fan (in_channels * kernel = 576) would give a variance 8x smaller.  With the
    engine's sample (>= 1.2e5 uniform values, relative SE of the variance <= 0.26%) the claim
    passes and the in-channel law fails by ~3000 SE.
    """
    docs = Case((64, 8, 3, 3), args=(64, 8, 3), param="weight")
    conv_style = Case((64, 8, 3, 3), args=(64, 8, 3), param="weight", fan_in=576)
    results = run([_entry("ct_docs", "torch.nn:ConvTranspose2d", "torch_linear_default", [docs]),
                   _entry("ct_in_channels", "torch.nn:ConvTranspose2d", "torch_linear_default", [conv_style])])
    ok, wrong = results
    assert ok.verdict == "pass" and ok.fan_in == 72
    assert _var_ratio(ok) == pytest.approx(1.0, rel=0.02)
    assert wrong.verdict == "fail"
    assert _var_ratio(wrong) == pytest.approx(576 / 72, rel=0.02)


def test_multihead_attention_fused_in_proj_has_half_the_per_projection_variance():
    """xavier over the fused (3E, E) in_proj: Var = 2/(4E), half of xavier on one E x E projection.

    The kdim != embed_dim path initializes q_proj_weight (E, E) with the full 1/E.  Both
    samples hold >= 1.2e5 uniform values: relative SE of the variance <= 0.26%, the 0.5
    ratio is ~190 SE from 1.
    """
    fused = Case((192, 64), args=(64, 4), param="in_proj_weight", fan_in=64, fan_out=64)
    split = Case((64, 64), args=(64, 4), kwargs={"kdim": 32, "vdim": 48}, param="q_proj_weight")
    r_fused, r_split = run([_entry("fused", "torch.nn:MultiheadAttention", "glorot_uniform", [fused]),
                            _entry("split", "torch.nn:MultiheadAttention", "glorot_uniform", [split])])
    assert r_split.verdict == "pass"
    assert r_fused.verdict == "fail"
    assert _var_ratio(r_fused) == pytest.approx(0.5, rel=0.02)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_16bit_uniform_never_draws_b_and_doubles_a(dtype):
    """uniform_(2, 3) in 16 bits: a value that rounds to b = 3 comes back as a = 2.

    The end cells of U(2, 3) rounded to bfloat16 (grid 2^-6 on [2, 4)) hold 2^-7 each, to
    float16 (grid 2^-9) 2^-10 each.  With n = 2^20 draws the expected count at b is 8192
    (bfloat16) or 1024 (float16): zero is impossible under the claim; the count at a is
    double with SE <= 3% of it; the mean sits 28 (bfloat16) / 3.5 (float16) SE below 2.5.
    """
    n = 2**20
    x = _draw("torch.nn.init:uniform_(a=2.0, b=3.0)", (n,), dtype).astype(np.float64)
    cell = 2.0**-7 if dtype == "bfloat16" else 2.0**-10
    assert (x == 3.0).sum() == 0
    assert (x == 2.0).mean() == pytest.approx(2 * cell, rel=0.1)
    assert x.min() == 2.0 and x.max() == 3.0 - 2 * cell
    if dtype == "bfloat16":
        se = math.sqrt(1 / 12 / n)
        assert x.mean() < 2.5 - 20 * se
        assert x.mean() == pytest.approx(2.5 - cell, abs=5 * se)


def test_float32_uniform_is_not_shifted():
    """Control for the test above: float32 U(2, 3), n = 2^20, mean within 5 SE of 2.5."""
    n = 2**20
    x = _draw("torch.nn.init:uniform_(a=2.0, b=3.0)", (n,), "float32").astype(np.float64)
    assert abs(x.mean() - 2.5) < 5 * math.sqrt(1 / 12 / n)


def test_bfloat16_trunc_normal_keeps_draws_that_round_onto_the_bounds():
    """trunc_normal_ in bfloat16 rejects after rounding, so the cells at ±2 get normal mass from
    both sides of the bound: P(x = ±2) = 6.6e-4 each, 3x the 2.2e-4 of the rounded truncated law.

    n = 2^20: expected count at ±2 is ~465 under the claim and ~1383 as torch does it: 42 SE
    apart (Poisson SE ~ 22).  Too small (variance +0.4%) for the default run's 1%-std power.
    """
    from scipy import stats

    n = 2**20
    x = _draw("torch.nn.init:trunc_normal_", (n,), "bfloat16").astype(np.float64)
    law = stats.truncnorm(-2, 2)
    at_bounds_claimed = 2 * (law.cdf(2) - law.cdf(2 - 2.0**-8)) * n  # bfloat16 grid below 2 is 2^-7
    mass = stats.norm.cdf(2 + 2.0**-7) - stats.norm.cdf(-2 - 2.0**-7)
    at_bounds_torch = 2 * (stats.norm.cdf(2 + 2.0**-7) - stats.norm.cdf(2 - 2.0**-8)) / mass * n
    seen = int((np.abs(x) == 2.0).sum())
    assert abs(x).max() == 2.0
    assert seen > at_bounds_claimed + 20 * math.sqrt(at_bounds_claimed)
    assert abs(seen - at_bounds_torch) < 5 * math.sqrt(at_bounds_torch)


def test_trunc_normal_std_002_is_not_truncated():
    """trunc_normal_(std=0.02) keeps the absolute bounds ±2 = ±100 std: a plain N(0, 0.02²).

    A ±2 std truncation would give variance 0.774 * 4e-4.  n = 2^20 normal values: relative SE
    of the variance 0.14%, so 1.0 vs 0.774 is ~160 SE apart.
    """
    x = _draw("torch.nn.init:trunc_normal_(std=0.02)", (2**20,), "float32").astype(np.float64)
    assert x.var() / 0.02**2 == pytest.approx(1.0, abs=0.01)


def test_sync_batch_norm_weight_is_ones_not_uniform():
    """SyncBatchNorm's docstring says gamma ~ U(0, 1); the code sets ones (exact check)."""
    w = _draw("torch.nn:SyncBatchNorm", (4096,), "float32", convention="torch_module", args=(4096,),
              param="weight")
    assert np.all(w == 1.0)


def test_orthogonal_has_no_16bit_cpu_kernel():
    with pytest.raises(NotImplementedError, match="geqrf"):
        _draw("torch.nn.init:orthogonal_", (16, 8), "bfloat16")


def test_manifest_covers_every_public_init_function():
    """Each name in torch.nn.init.__all__ (but calculate_gain) is called by some manifest entry."""
    entries = load_manifest(manifest_path("torch")).entries
    called = {e.call.split(":")[1].split("(")[0] for e in entries if e.call.startswith("torch.nn.init:")}
    missing = set(torch.nn.init.__all__) - {"calculate_gain"} - called
    assert not missing, f"torch.nn.init functions without an entry: {sorted(missing)}"

