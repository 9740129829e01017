"""The runner's batched path: a drawer's ``many(case, dtype, seeds)``, its fallback and its checks.

The drawers here are numpy's: ``many`` stacks one ``default_rng(seed)`` draw per seed, so each row
is bit for bit the eager draw with its seed, and the batched and eager runs of one seed must give
identical results -- a stronger check than a law comparison, and one that cannot pass by chance.
"""

from __future__ import annotations

import numpy as np
import pytest

from initspec.engine.runner import run
from initspec.frameworks.target import entry_for

SHAPES = [[64, 32], [5, 5, 3, 8]]


def he_normal(case, dtype, seed):
    fan_in = int(np.prod(case.shape[1:]))
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(case.shape) * np.sqrt(2.0 / fan_in)).astype(dtype)


def make(draw=he_normal, many=None, path="stacked"):
    def drawer(case, dtype, seed):
        return draw(case, dtype, seed)

    calls = []

    def batch(case, dtype, seeds):
        calls.append(len(seeds))
        return np.stack([draw(case, dtype, s) for s in seeds])

    drawer.many = many or batch
    drawer.path = path
    drawer.calls = calls
    return drawer


def check(drawer, **kw):
    entry, _ = entry_for(he_normal, "he_normal", "numpy", "torch", SHAPES, ["float32"])
    return run([entry], drawers={entry.id: drawer}, **kw)


def test_a_batched_run_is_the_eager_run_when_the_rows_are_the_eager_draws():
    drawer = make()
    batched, eager = check(drawer), check(drawer, batched=False)
    assert [r.path for r in batched] == ["stacked", "stacked"] and {r.path for r in eager} == {"eager"}
    for b, e in zip(batched, eager, strict=True):
        assert b.verdict == e.verdict == "pass"
        assert b.observed == e.observed  # the same values, in the same order: the same statistics
        assert [(t.name, t.statistic) for t in b.tests] == [(t.name, t.statistic) for t in e.tests]
    # batch lengths are powers of two (one compilation per job), and a batch holds <= 2^22 values
    assert drawer.calls and all(n & (n - 1) == 0 and n * 600 <= 1 << 22 for n in drawer.calls)


def test_a_failing_batched_call_falls_back_to_eager_and_says_why():
    def broken(case, dtype, seeds):
        raise NotImplementedError("cannot trace this initializer")

    results = check(make(many=broken))
    assert all(r.path == "eager" and r.verdict == "pass" for r in results)
    assert all("cannot trace this initializer" in r.path_fallback for r in results)


def test_a_batch_of_the_wrong_shape_falls_back():
    results = check(make(many=lambda case, dtype, seeds: np.zeros((len(seeds), 3), dtype)))
    assert all(r.path == "eager" and "not an array of shape" in r.path_fallback for r in results)


def test_a_batched_path_that_ignores_the_seeds_fails_the_seed_test():
    results = check(make(many=lambda case, dtype, seeds: np.stack([he_normal(case, dtype, 7)] * len(seeds))))
    assert all(r.path == "stacked" and r.verdict == "fail" for r in results)
    assert all(any(t.name == "seed_sensitive" and t.passed is False for t in r.tests) for r in results)


def test_a_batched_path_that_is_not_deterministic_fails_the_determinism_test():
    state = {"calls": 0}

    def drifting(case, dtype, seeds):
        state["calls"] += 1
        return np.stack([he_normal(case, dtype, s + 1000 * state["calls"]) for s in seeds])

    results = check(make(many=drifting))
    assert all(any(t.name == "deterministic" and t.passed is False for t in r.tests) for r in results)


def test_the_batched_rows_follow_the_law_like_any_draw():
    """A batched path whose rows have twice the variance is caught like an eager one (z ~ 700)."""
    results = check(make(many=lambda case, dtype, seeds: np.stack([he_normal(case, dtype, s) * np.sqrt(2)
                                                                   for s in seeds]).astype(dtype)))
    assert all(r.verdict == "fail" and any(t.name == "variance" and t.passed is False for t in r.tests)
               for r in results)


@pytest.mark.parametrize("eager", [False, True])
def test_the_cli_says_which_path_a_run_took(tmp_path, run_cli, eager):
    import json

    code, _, _ = run_cli("check", "numpy", "--only", "he_normal", "--json", str(tmp_path / "r.json"),
                           *(["--eager"] if eager else []))
    doc = json.loads((tmp_path / "r.json").read_text())
    assert code == 0 and doc["paths"] == {"eager": len(doc["results"])}
    assert all(r["path"] == "eager" and r["path_fallback"] is None for r in doc["results"])
    assert ("--eager" in doc["results"][0]["repro"]) == eager


def test_the_report_header_counts_the_paths():
    from initspec.reports.report import Report

    results = check(make(many=lambda case, dtype, seeds: (_ for _ in ()).throw(RuntimeError("no"))))
    results += check(make())
    line = Report("numpy", "x", 0, 1e-4, results).paths_line()
    assert line == "draws: eager 2, stacked 2 (2 after the batched call failed)"
    assert Report("numpy", "x", 0, 1e-4, check(make(), batched=False)).paths_line() == ""


def structural(scheme, draw):
    """A run of one structural scheme (exact checks: one or two draws) through a stacking drawer."""
    drawer = make(draw=draw)
    entry, _ = entry_for(draw, scheme, "numpy", "torch", [[16, 24]], ["float32"])
    return run([entry], drawers={entry.id: drawer}), drawer


def orthogonal_draw(case, dtype, seed):
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal(case.shape[::-1]))
    return q.T.astype(dtype)


def test_exact_schemes_draw_through_the_batched_path_too():
    """A constant takes one draw and an orthogonal matrix two (the second for the seed test): both
    as one batch, then the determinism test's batch again -- for JAX one compilation instead of an
    eager call's per-op compilations at a new shape."""
    (result,), drawer = structural("constant(value=0.5)", lambda case, dtype, seed: np.full(case.shape, 0.5, dtype))
    assert result.verdict == "pass" and result.path == "stacked" and drawer.calls == [1, 1]
    (result,), drawer = structural("orthogonal", orthogonal_draw)
    assert result.verdict == "pass" and result.path == "stacked" and drawer.calls == [2, 2]
    assert [t.name for t in result.tests if t.passed] == ["shape", "dtype", "finite", "orthogonal", "seed_sensitive",
                                                         "deterministic"]


def test_an_orthogonal_batch_that_ignores_its_seeds_fails_the_seed_test():
    (result,), _ = structural("orthogonal", lambda case, dtype, seed: orthogonal_draw(case, dtype, 7))
    assert result.verdict == "fail" and [t.name for t in result.failed_tests] == ["seed_sensitive"]
