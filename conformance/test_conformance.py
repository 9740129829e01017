"""Each manifest entry x shape x dtype of the chosen framework conforms to its claimed scheme."""

from __future__ import annotations

import warnings

import pytest

from initspec.engine.runner import plan
from initspec.frameworks.manifest import load_manifest, manifest_path


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "result_id" in metafunc.fixturenames:
        framework = metafunc.config.getoption("framework")
        manifest = load_manifest(manifest_path(framework))
        ids = [job.result.id for job in plan(manifest.entries, 0, framework)]
        metafunc.parametrize("result_id", ids, ids=ids)


@pytest.fixture(scope="session")
def conformance_results(pytestconfig: pytest.Config) -> dict:
    from conftest import settings

    import initspec

    report = initspec.check_framework(pytestconfig.getoption("framework"), **settings(pytestconfig))
    for w in report.warnings:
        warnings.warn(w, stacklevel=1)
    return {r.id: r for r in report.results}


def test_conforms(result_id: str, conformance_results: dict) -> None:
    from initspec.reports.report import failure_message

    __tracebackhide__ = True
    r = conformance_results[result_id]
    if r.verdict == "xfail":
        pytest.xfail(f"known deviation: {r.xfail}")
    if r.verdict == "xpass":
        warnings.warn(f"{result_id} conforms although listed as a known deviation ({r.xfail})", stacklevel=1)
    assert r.verdict in ("pass", "xpass"), failure_message(r)
