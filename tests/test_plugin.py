"""The pytest plugin, run on small projects with pytester.

The inner projects check a correct numpy he_normal and one that uses 2 / fan_in as the std
(Var (2/32)² instead of 2/32, a 16x shortfall) at 2000 values per shape: the variance z-test
rejects that at |z| > 25, so the failure is certain; the correct one is seeded (and would only
false-alarm with probability <= alpha = 1e-4 per check).
"""

from __future__ import annotations

import importlib.metadata
import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

# In-process pytester runs restore sys.modules afterwards; numpy (a C extension) cannot be
# imported twice in one process, so the plugin and its numpy stay loaded out here.
import initspec.plugin  # noqa: F401

pytest_plugins = ["pytester"]

INITS = '''
import numpy as np

def good(rng, shape, dtype):
    return (rng.standard_normal(shape) * np.sqrt(2 / shape[1])).astype(dtype)

def bad(rng, shape, dtype):
    return (rng.standard_normal(shape) * (2 / shape[1])).astype(dtype)
'''

TESTS = '''
import pytest
from inits import bad, good

def test_good(initspec):
    report = initspec.assert_conforms(good, scheme="he_normal", shapes=[(64, 32), (16, 48)])
    assert report.ok and len(report.results) == 2

@pytest.mark.initspec(scheme="he_normal", shapes=[(64, 32)])
def test_bad(initspec):
    initspec.assert_conforms(bad)

def test_not_an_initializer_test():
    pass
'''


def _entry_point_registered() -> bool:
    return any(ep.name == "initspec" and ep.value == "initspec.plugin"
               for ep in importlib.metadata.entry_points(group="pytest11"))


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """Run pytest in-process on the inner project; through the entry point when it is installed."""
    extra = () if _entry_point_registered() else ("-p", "initspec.plugin")
    return pytester.runpytest(*extra, "-p", "no:cacheprovider", *args)


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(inits=INITS, test_inits=TESTS)
    return pytester


def test_entry_point_is_registered() -> None:
    assert _entry_point_registered(), ("no pytest11 entry point 'initspec = initspec.plugin': reinstall initspec "
                                       "(pip install -e .) so pytest loads the plugin by itself")


def test_correct_initializer_passes_wrong_one_fails_with_repro(project: pytest.Pytester) -> None:
    result = _run(project, "--initspec-samples", "2000", "--initspec-seed", "3")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines([
        "initspec: seed 3, alpha 0.0001 per check, samples 2000, max-draws 1000",
        "*AssertionError: inits:bad does not conform to he_normal: 1 of 1 results (seed 3, alpha 0.0001)",
        "*bad[[]64x32-float32[]]: inits:bad does not conform to he_normal",
        "*seed 3, shape (64, 32), layout torch, dtype float32, fan_in 32, fan_out 64",
        "*expected: mean 0, var 0.0625, std 0.25*",
        "*observed: n *, mean *, var 0.00*",
        "*failed: variance (p=*",
        "*reproduce: PYTHONPATH=. initspec check --target inits:bad --convention numpy --scheme he_normal "
        "--layout torch --shape 64,32 --dtype float32 --seed 3 --samples 2000",
    ])
    # the traceback stops at the test: the plugin's frames are hidden
    assert "plugin.py" not in result.stdout.str()


def test_session_report_and_its_repro_line(project: pytest.Pytester) -> None:
    _run(project, "--initspec-samples", "2000", "--initspec-report", "session.json").assert_outcomes(passed=2, failed=1)
    data = json.loads((project.path / "session.json").read_text())
    assert (data["seed"], data["samples"], data["alpha"]) == (0, 2000, 1e-4)
    checks = {c["test"]: c for c in data["checks"]}
    assert set(checks) == {"test_inits.py::test_good", "test_inits.py::test_bad"}
    assert [r["verdict"] for r in checks["test_inits.py::test_good"]["results"]] == ["pass", "pass"]
    (bad,) = checks["test_inits.py::test_bad"]["results"]
    assert bad["verdict"] == "fail"
    assert data["summary"] == {"passed": 2, "failed": 1, "errors": 0, "xfailed": 0, "xpassed": 0}
    ks = next(t for t in bad["tests"] if t["name"] == "ks")
    assert ks["detail"].startswith("KS on 2000 values")  # --initspec-samples reached the runner
    # The repro line, run as printed (the console script when installed), draws the same values.
    script = Path(sys.executable).parent / "initspec"
    cli = shlex.quote(str(script)) if script.exists() else f"{shlex.quote(sys.executable)} -m initspec"
    cmd = bad["repro"].replace("initspec check", f"{cli} check", 1) + " --json cli.json -q"
    p = subprocess.run(cmd, shell=True, cwd=project.path, capture_output=True, text=True, timeout=300)
    assert p.returncode == 1 and (project.path / "cli.json").exists(), p.stderr
    (again,) = json.loads((project.path / "cli.json").read_text())["results"]
    assert again["observed"] == bad["observed"] and again["verdict"] == "fail"


def test_marker_selects_fixture_users(project: pytest.Pytester) -> None:
    result = _run(project, "-m", "initspec", "--initspec-samples", "2000")
    result.assert_outcomes(passed=1, failed=1, deselected=1)


def test_options_are_the_shared_table(pytester: pytest.Pytester) -> None:
    from initspec.options import OPTIONS

    out = _run(pytester, "--help").stdout.str()
    for o in OPTIONS:
        assert f"--initspec-{o.name}" in out
    assert "--initspec-report=PATH" in out
    assert "initspec(**defaults)" in _run(pytester, "--markers").stdout.str()


def test_bad_option_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = _run(pytester, "--initspec-alpha", "2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--initspec-alpha must be in (0, 1), got 2.0*"])


def test_bad_scheme_fails_the_test_in_one_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(inits=INITS, test_typo='''
from inits import good

def test_typo(initspec):
    initspec.assert_conforms(good, scheme="he_nromal", shapes=[(8, 4)])
''')
    result = _run(pytester, "--initspec-samples", "100")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*initspec: unknown scheme*he_nromal*he_normal*"])
    assert "Traceback" not in result.stdout.str() and "InputError" not in result.stdout.str()


def test_loading_the_plugin_imports_no_framework() -> None:
    code = ("import sys, initspec.plugin\n"
            "loaded = [m for m in ('torch', 'tensorflow', 'jax', 'flax', 'keras') if m in sys.modules]\n"
            "assert not loaded, loaded")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr


def test_report_header_shows_the_session_options(pytester: pytest.Pytester) -> None:
    result = _run(pytester, "--initspec-seed", "5", "--initspec-alpha", "0.001")
    result.stdout.fnmatch_lines(["initspec: seed 5, alpha 0.001 per check, samples auto, max-draws 1000"])
