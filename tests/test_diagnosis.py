"""Diagnosis: every mutant is rejected at default settings and its mistake named first;
its correct twin passes.

The mutants (tests/mutants) are seeded through the engine's default seed, so each case is
deterministic.  Their effects are far beyond the default power target (a 1% error in std
caught with probability 0.99 per shape): the smallest is the 0.2% of stray values of a
truncated normal that resamples its rejects once, which the support check sees whenever
one stray value is drawn (hundreds are, at ~2.5e5 values per shape).
"""

from __future__ import annotations

import json
import math

import pytest
from mutants import MUTANTS, Mutant

import initspec
from initspec.engine import diagnosis
from initspec.engine.diagnosis import CATALOGUE, diagnose, diagnose_group, hypotheses
from initspec.frameworks.numpy_reference import from_scheme
from initspec.reports.report import one_line
from initspec.spec.schemes import resolve

BRIEF_IDS = {"std_as_variance", "variance_as_std", "fan_swapped", "wrong_fan_mode", "receptive_field_ignored",
             "wrong_gain", "truncation_uncorrected", "truncation_absolute_bounds", "uniform_limit_missing_sqrt3",
             "wrong_distribution", "layout_mismatch", "mean_shift", "support_violation", "non_finite",
             "dtype_changed", "shape_changed", "not_deterministic", "seed_ignored", "unknown"}


def test_catalogue_holds_every_id_with_its_explanation():
    assert set(CATALOGUE) == BRIEF_IDS
    for m in CATALOGUE.values():
        assert m.explanation and m.recognized_by


def test_every_id_has_a_mutant():
    assert {m.mistake for m in MUTANTS} == BRIEF_IDS
    assert len({m.name for m in MUTANTS}) == len(MUTANTS)


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.name)
def test_mutant_is_rejected_and_named(mutant: Mutant):
    report = initspec.check(mutant.broken(), **mutant.check_kwargs())
    assert not any(r.verdict == "error" for r in report.results), [r.error for r in report.results]
    failed = [r for r in report.results if r.verdict == "fail"]
    assert failed, f"{mutant.name} passed its claim {mutant.claim}"
    for r in failed:
        top = r.diagnosis[0]
        assert top["id"] == mutant.mistake, f"{r.id}: {r.diagnosis}"
        assert top["confidence"] >= 0.5, r.diagnosis
        assert top["message"]


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.name)
def test_twin_passes(mutant: Mutant):
    report = initspec.check(mutant.twin(), **mutant.check_kwargs())
    assert report.ok, [(r.id, one_line(r)) for r in report.results if r.verdict != "pass"]
    assert all(r.diagnosis == [] for r in report.results)


def _mutant(name: str) -> Mutant:
    return next(m for m in MUTANTS if m.name == name)


def test_one_line_says_what_is_probably_wrong():
    m = _mutant("he_normal_std_is_var")
    report = initspec.check(m.broken(), **{**m.check_kwargs(), "shapes": [(512, 128)], "dtypes": ("float32",)})
    (r,) = report.results
    line = one_line(r)
    assert "probably std_as_variance: observed var" in line
    assert "≈ expected var² (0.0156² = 0.000244)" in line  # 2/128 = 0.015625
    d = json.loads(json.dumps(report.to_dict()))["results"][0]["diagnosis"]
    assert d[0]["id"] == "std_as_variance" and 0 <= d[0]["confidence"] <= 1


def test_a_shape_the_mistake_leaves_alone_shows_one_it_breaks():
    m = _mutant("he_normal_channels_only")
    report = initspec.check(m.broken(), **{**m.check_kwargs(), "dtypes": ("float32",)})
    r = next(r for r in report.results if r.shape == (512, 128))
    assert r.verdict == "fail"  # the group's fan_law test fails on every shape
    assert r.diagnosis[0]["message"].startswith("on 8x3x5x5: ")
    assert "fan_in 3," in r.diagnosis[0]["message"]


def test_samples_that_fit_the_claim_are_not_given_a_mistake():
    """A failure the samples do not support (here forced) is called a chance failure, not a mistake."""
    report = initspec.check(from_scheme("he_normal"), scheme="he_normal", dtypes=("float32",))
    assert report.ok
    results = report.results
    t = next(t for t in results[0].tests if t.name == "variance")
    t.passed = False
    results[0].verdict = "fail"
    diagnose_group(results)
    top = results[0].diagnosis[0]
    assert top["id"] == "unknown" and "consistent with the claim" in top["message"]
    assert all(r.diagnosis == [] for r in results[1:])


def test_single_result_diagnosis():
    m = _mutant("he_uniform_missing_sqrt3")
    report = initspec.check(m.broken(), **{**m.check_kwargs(), "shapes": [(96, 1000)], "dtypes": ("float32",)})
    (r,) = report.results
    assert diagnose(r)[0]["id"] == "uniform_limit_missing_sqrt3"


def test_a_crashing_diagnosis_does_not_stop_the_run(monkeypatch):
    def boom(shapes):
        raise RuntimeError("boom")

    monkeypatch.setattr(diagnosis, "rank", boom)
    m = _mutant("kaiming_relu_without_gain")
    report = initspec.check(m.broken(), **{**m.check_kwargs(), "shapes": [(512, 128)]})
    (r,) = report.results
    assert r.verdict == "fail"
    assert r.diagnosis == [{"id": "unknown", "confidence": 0.0, "message": "diagnosis failed: RuntimeError: boom"}]


def _ids(expr: str) -> list[str]:
    return [h.id for h in hypotheses(resolve(expr))]


def test_hypothesis_table_follows_the_claim():
    he = _ids("he_normal")
    assert he.count("fan_swapped") == 1 and he.count("wrong_fan_mode") == 2  # fan_avg, fan_geo_avg
    assert "uniform_limit_missing_sqrt3" not in he and "truncation_uncorrected" not in he
    glorot = _ids("glorot_uniform")
    assert "fan_swapped" not in glorot and glorot.count("wrong_fan_mode") == 3
    assert "uniform_limit_missing_sqrt3" in glorot
    fixed = _ids("normal(std=0.05)")
    assert not {"fan_swapped", "wrong_fan_mode", "wrong_gain", "receptive_field_ignored"} & set(fixed)
    assert "truncation_absolute_bounds" in _ids("trunc_normal(std=0.02)")


def test_uniform_claims_leave_the_factor_three_to_the_sqrt3_mistake():
    """On a uniform claim var/3 is the missing sqrt(3), not a gain: one hypothesis, no tie."""
    m = _mutant("he_uniform_missing_sqrt3")
    report = initspec.check(m.broken(), **{**m.check_kwargs(), "shapes": [(512, 128)], "dtypes": ("float32",)})
    ids = [d["id"] for d in report.results[0].diagnosis]
    assert ids[0] == "uniform_limit_missing_sqrt3" and "wrong_gain" not in ids


def test_gain_table_matches_the_spec():
    from initspec.spec.schemes import gain

    for g2, name in diagnosis.GAIN2.items():
        if "relu" in name and "leaky" not in name:
            assert math.isclose(g2, gain("relu") ** 2)
        if "tanh" in name:
            assert math.isclose(g2, gain("tanh") ** 2)
        if "leaky" in name:
            assert math.isclose(g2, gain("leaky_relu", math.sqrt(5)) ** 2)
