"""Every field the manual's JSON page (docs/reference/json.md) documents, present and of the documented type, on a
run holding every verdict (pass, fail, error, xfail, xpass) and a structured law."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

TOP = {"initspec_version": str, "framework": str, "framework_version": str, "seed": int, "alpha": float,
       "results": list, "summary": dict, "paths": dict, "warnings": list}
SUMMARY = ("passed", "failed", "errors", "xfailed", "xpassed")
RESULT = ("id", "target", "scheme", "layout", "shape", "dtype", "fan_in", "fan_out", "verdict", "expected",
          "observed", "tests", "diagnosis", "error", "xfail", "power", "seed", "path", "path_fallback", "repro")
EXPECTED = ("mean", "var", "std", "lower", "upper")
OBSERVED = ("n", "mean", "var", "min", "max")
TEST = ("name", "statistic", "p_value", "passed", "detail")
DIAGNOSIS = ("id", "confidence", "message")

ENTRIES = (("good", "mutants:normal_vs(2.0)", "he_normal"),
           ("bad", "mutants:normal_vs(2.0, bug='std_as_variance')", "he_normal"),
           ("boom", "bad_inits:raises", "he_normal"),
           ("known_bad", "mutants:normal_vs(1.0)", "he_normal"),  # lecun's variance: xfail
           ("known_good", "mutants:uniform_vs(2.0)", "he_uniform"),  # conforms: xpass
           ("ortho", "initspec.frameworks.numpy_reference:orthogonal(2.0)", "orthogonal(gain=2)"))
MANIFEST = 'framework = "numpy"\n' + "".join(
    f'[[entry]]\nid = "{i}"\ncall = "{call}"\nclaims = "{claims}"\nshapes = [[64, 32], [32, 64]]\n'
    for i, call, claims in ENTRIES)


def _number(v) -> bool:
    """A JSON number, or one of the strings the report writes for inf and nan."""
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) or v in ("inf", "-inf", "nan")


@pytest.fixture(scope="module")
def doc(tmp_path_factory):
    import initspec.api
    from initspec.cli import main

    tmp = tmp_path_factory.mktemp("json")
    (tmp / "m.toml").write_text(MANIFEST)
    out = tmp / "r.json"
    mp = pytest.MonkeyPatch()
    mp.setattr(initspec.api, "load_xfails", lambda fw: [("known_*", "known: recorded deviation")])
    try:
        with pytest.raises(SystemExit) as exc:
            main(["check", "--manifest", str(tmp / "m.toml"), "--samples", "5000", "--json", str(out), "-q"])
    finally:
        mp.undo()
    assert exc.value.code == 1
    return json.loads(out.read_text())


def test_the_manual_documents_these_fields():
    """The names above are the manual's: a field added to or dropped from its check section shows here."""
    page = (ROOT / "docs" / "reference" / "json.md").read_text()
    section = page[page.index("## `initspec check --json`"):]
    section = section[:section.index("\n## ", 1)]
    documented = set(re.findall(r"[a-z_]+", section.split("writes", 1)[1]))
    for name in (*TOP, *SUMMARY, *RESULT, *EXPECTED, *OBSERVED, *TEST, *DIAGNOSIS):
        assert name in documented, name


def test_top_level_fields(doc):
    for key, kind in TOP.items():
        assert isinstance(doc[key], kind), key
    assert doc["framework"] == "numpy" and doc["seed"] == 0 and doc["alpha"] == 1e-4
    assert set(doc["summary"]) == set(SUMMARY)
    assert all(isinstance(v, int) for v in doc["summary"].values())
    assert all(isinstance(w, str) for w in doc["warnings"])


def test_every_verdict_is_present(doc):
    verdicts = {r["id"].split("[")[0]: r["verdict"] for r in doc["results"]}
    assert verdicts == {"good": "pass", "bad": "fail", "boom": "error", "known_bad": "xfail",
                        "known_good": "xpass", "ortho": "pass"}
    assert doc["summary"] == {"passed": 4, "failed": 2, "errors": 2, "xfailed": 2, "xpassed": 2}


def test_result_fields(doc):
    for r in doc["results"]:
        assert set(RESULT) <= set(r), r["id"]
        where = r["id"]
        for key in ("id", "target", "scheme", "layout", "dtype", "repro"):
            assert isinstance(r[key], str) and r[key], (where, key)
        assert r["repro"].startswith("initspec check ")
        assert isinstance(r["shape"], list) and all(isinstance(d, int) for d in r["shape"])
        assert r["verdict"] in ("pass", "fail", "error", "xfail", "xpass")
        assert isinstance(r["seed"], int)
        assert r["fan_in"] is None or _number(r["fan_in"])
        assert r["fan_out"] is None or _number(r["fan_out"])
        assert isinstance(r["expected"], dict) and isinstance(r["observed"], dict)
        assert isinstance(r["tests"], list) and isinstance(r["diagnosis"], list)
        assert (r["error"] is None) == (r["verdict"] != "error"), where
        assert isinstance(r["error"], (str, type(None)))
        assert (r["xfail"] is None) == (r["verdict"] not in ("xfail", "xpass")), where
        assert isinstance(r["xfail"], (str, type(None)))
        for t in r["tests"]:
            assert set(TEST) <= set(t)
            assert isinstance(t["name"], str) and isinstance(t["detail"], str)
            assert t["statistic"] is None or _number(t["statistic"])
            assert t["p_value"] is None or (isinstance(t["p_value"], float) and 0 <= t["p_value"] <= 1)
            assert t["passed"] in (True, False, None)
        for d in r["diagnosis"]:
            assert set(DIAGNOSIS) <= set(d)
            assert isinstance(d["id"], str) and isinstance(d["message"], str)
            assert isinstance(d["confidence"], float) and 0 <= d["confidence"] <= 1


def test_continuous_results_carry_their_law_the_sample_and_the_power(doc):
    continuous = [r for r in doc["results"] if r["verdict"] != "error" and not r["id"].startswith("ortho")]
    assert len(continuous) == 8
    for r in continuous:
        assert set(EXPECTED) <= set(r["expected"]) and all(_number(r["expected"][k]) for k in EXPECTED)
        assert set(OBSERVED) <= set(r["observed"]) and all(_number(r["observed"][k]) for k in OBSERVED)
        assert isinstance(r["observed"]["n"], int) and r["observed"]["n"] >= 5000
        assert isinstance(r["power"], float) and 0 <= r["power"] <= 1
        assert isinstance(r["fan_in"], int) and isinstance(r["fan_out"], int)
        assert {"variance", "mean", "ks"} <= {t["name"] for t in r["tests"]}
    # the normal law is unbounded, the uniform one is not: the strings for inf are used
    good = next(r for r in continuous if r["id"].startswith("good"))
    assert (good["expected"]["lower"], good["expected"]["upper"]) == ("-inf", "inf")
    uniform = next(r for r in continuous if r["id"].startswith("known_good"))
    assert math.isclose(uniform["expected"]["upper"], math.sqrt(6 / 32), rel_tol=1e-12)  # fan_in 32 of (64, 32)


def test_failures_carry_a_diagnosis_and_errors_their_message(doc):
    by_entry = {}
    for r in doc["results"]:
        by_entry.setdefault(r["id"].split("[")[0], []).append(r)
    assert all(r["diagnosis"] and r["diagnosis"][0]["id"] == "std_as_variance" for r in by_entry["bad"])
    assert all("raised RuntimeError: boom" in r["error"] and r["power"] is None for r in by_entry["boom"])
    assert all(r["xfail"] == "known: recorded deviation" for r in by_entry["known_bad"] + by_entry["known_good"])
