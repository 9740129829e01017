"""Known deviations: xfail lines, exact ids with brackets, several lines matching one result."""

from types import SimpleNamespace

import pytest

from initspec._data import data_dir
from initspec.engine.runner import Result, apply_xfails, xfail_matches
from initspec.frameworks.keras_backends import BACKENDS
from initspec.frameworks.manifest import load_manifest, load_xfails, manifest_path

#: every shipped xfail file (conformance/xfails/<framework>[-<keras backend>].txt), found by listing
#: the folder, so a file added later is covered without naming it here
XFAIL_FILES = sorted(p.stem for p in data_dir("xfails").glob("*.txt"))


def result(verdict: str, rid: str = "uniform_[512x128-bfloat16]") -> Result:
    r = Result(id=rid, entry=rid.split("[")[0], target="t", convention="numpy", scheme="s", layout="torch",
               shape=(512, 128), dtype="bfloat16", fan_in=128, fan_out=512, seed=0)
    r.verdict = verdict
    return r


def test_exact_result_id_with_brackets_matches():
    assert xfail_matches(result("fail"), "uniform_[512x128-bfloat16]")
    assert xfail_matches(result("fail"), "uniform_")
    assert xfail_matches(result("fail"), "uniform*")
    assert not xfail_matches(result("fail"), "normal_")


def test_first_matching_line_decides_and_a_second_does_not_flip_it():
    r, p = result("fail"), result("pass", "normal_[8x3x5x5-float32]")
    apply_xfails([r, p], [("uniform_*", "lattice"), ("uniform_[512x128-bfloat16]", "again"), ("normal_", "x")])
    assert (r.verdict, r.xfail) == ("xfail", "lattice")
    assert (p.verdict, p.xfail) == ("xpass", "x")


def test_the_xfail_files_are_found():
    assert {"torch", "tensorflow", "jax", "flax", "keras", *(f"keras-{b}" for b in BACKENDS)} <= set(XFAIL_FILES)


@pytest.mark.parametrize("name", XFAIL_FILES)
def test_every_shipped_xfail_line_has_a_reason(name):
    for pattern, reason in load_xfails(name):
        assert pattern and len(reason) > 10, (name, pattern)


@pytest.mark.parametrize("name", XFAIL_FILES)
def test_no_stale_xfail_pattern(name):
    """Each line matches at least one result id its framework's manifest produces (pure TOML:
    no framework needed).  keras-<backend>.txt is loaded on top of keras.txt, over keras.toml."""
    framework, _, backend = name.partition("-")
    assert not backend or backend in BACKENDS, f"{name}.txt: {backend!r} is no Keras backend"
    manifest = load_manifest(manifest_path(framework))
    results = [SimpleNamespace(id=f"{e.id}[{c.label}-{d}]", entry=e.id)
               for e in manifest.entries for c in e.cases for d in e.dtypes]
    stale = [p for p, _ in load_xfails(name) if not any(xfail_matches(r, p) for r in results)]
    assert stale == [], f"{name}.txt: patterns matching no result of {framework}'s manifest"


def test_stale_pattern_check_can_fail():
    """The check above on a line naming no entry, and on a shape the entry does not have."""
    results = [SimpleNamespace(id="uniform_[512x128-bfloat16]", entry="uniform_")]
    assert not any(xfail_matches(r, "uniform_x") for r in results)
    assert not any(xfail_matches(r, "uniform_[[]7x7-bfloat16]") for r in results)
    assert any(xfail_matches(r, "uniform_[[]*-bfloat16]") for r in results)


def test_known_deviation_is_xfailed_and_no_xfails_shows_and_diagnoses_it(run_cli, tmp_path, monkeypatch):
    """lecun_normal declared as he_normal (half the variance: hundreds of SE at the run's size)."""
    import json

    import initspec.api

    monkeypatch.setattr(initspec.api, "load_xfails", lambda fw: [("claim", "known: half the variance")])
    manifest = tmp_path / "m.toml"
    manifest.write_text('framework = "numpy"\n[[entry]]\nid = "claim"\n'
                        'call = "initspec.frameworks.numpy_reference:from_scheme(\'lecun_normal\')"\n'
                        'claims = "he_normal"\n'
                        'shapes = [[512, 128], [96, 1000]]\n')
    report = tmp_path / "r.json"
    code, out, _ = run_cli("check", "--manifest", str(manifest), "--json", str(report), "-q")
    assert code == 0, out
    results = json.loads(report.read_text())["results"]
    assert {r["verdict"] for r in results} == {"xfail"}
    assert all(r["xfail"] == "known: half the variance" and r["diagnosis"] == [] for r in results)
    code, out, _ = run_cli("check", "--manifest", str(manifest), "--json", str(report), "-q", "--no-xfails")
    assert code == 1, out
    results = json.loads(report.read_text())["results"]
    assert {r["verdict"] for r in results} == {"fail"}
    assert all(r["diagnosis"] and r["diagnosis"][0]["id"] == "wrong_gain" for r in results)


def _xfail_manifest(tmp_path, monkeypatch, claims: str):
    """A numpy manifest of he_normal under `claims`, with an xfail line naming its entry."""
    import initspec.api

    monkeypatch.setattr(initspec.api, "load_xfails", lambda fw: [("claim", "known: recorded deviation")])
    manifest = tmp_path / "m.toml"
    manifest.write_text('framework = "numpy"\n[[entry]]\nid = "claim"\n'
                        'call = "mutants:normal_vs(2.0)"\n'
                        f'claims = "{claims}"\n'
                        'shapes = [[512, 128], [96, 1000]]\n')
    return manifest


def test_xpass_is_reported_and_exits_0(run_cli, tmp_path, monkeypatch):
    """An xfail line on a conforming initializer: xpass, counted as such, and the run still
    succeeds (xfail and xpass never fail a run; only fail and error do)."""
    import json

    manifest = _xfail_manifest(tmp_path, monkeypatch, "he_normal")
    report = tmp_path / "r.json"
    code, out, err = run_cli("check", "--manifest", str(manifest), "--json", str(report), "-q")
    assert code == 0, out + err
    doc = json.loads(report.read_text())
    assert {r["verdict"] for r in doc["results"]} == {"xpass"}
    assert doc["summary"] == {"passed": 0, "failed": 0, "errors": 0, "xfailed": 0, "xpassed": 2}
    assert "2 xpassed" in out
    # and without the xfail line the same run passes (the xpass came from the line, not the law)
    code, out, _ = run_cli("check", "--manifest", str(manifest), "--json", str(report), "-q", "--no-xfails")
    assert code == 0, out
    assert {r["verdict"] for r in json.loads(report.read_text())["results"]} == {"pass"}
