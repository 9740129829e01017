"""The terminal report: one line per initializer, each diagnosis once, the summary last."""

from __future__ import annotations

import io

import numpy as np
import pytest
from rich.console import Console

from initspec import api
from initspec.engine.runner import apply_xfails
from initspec.reports.report import Report
from initspec.reports.terminal import print_report

SHAPES = [(64, 32), (16, 48), (8, 3, 5, 5)]
SAMPLES = 4000  # a std used as a variance is off by a factor ~30 in variance: caught at any size


def he_normal(rng, shape, dtype):
    fan_in = int(np.prod(shape[1:]))
    return (rng.standard_normal(shape) * np.sqrt(2 / fan_in)).astype(dtype)


def std_as_variance(rng, shape, dtype):
    fan_in = int(np.prod(shape[1:]))
    return (rng.standard_normal(shape) * (2 / fan_in)).astype(dtype)


def raises(rng, shape, dtype):
    raise RuntimeError("boom")


@pytest.fixture(scope="module")
def report() -> Report:
    kw = {"scheme": "he_normal", "shapes": SHAPES, "samples": SAMPLES}
    good = api.check(he_normal, dtypes=("float32", "bfloat16"), **kw).results
    bad = api.check(std_as_variance, **kw).results
    err = api.check(raises, **kw).results
    known = api.check(std_as_variance, **{**kw, "dtypes": ("bfloat16",)}).results
    apply_xfails(known, [("std_as_variance*", "listed on purpose")])
    return Report("numpy", np.__version__, 0, 1e-4, good + bad + err + known)


def _lines(report: Report, verbosity: int = 0) -> list[str]:
    out = io.StringIO()
    print_report(report, Console(file=out, width=200, color_system=None), verbosity=verbosity)
    return out.getvalue().rstrip("\n").splitlines()


def test_grouped_view(report: Report) -> None:
    lines = _lines(report)
    verdict_lines = [ln for ln in lines if ln.split()[:1] and ln.split()[0] in ("PASS", "FAIL", "ERROR", "XFAIL")]
    # the correct initializer: both dtypes on one line, its shapes folded
    (passing,) = [ln for ln in verdict_lines if ln.startswith("PASS")]
    assert "he_normal" in passing and "float32 bfloat16" in passing and "6 results" in passing
    # the failure: its row, the diagnosis stated once, one line per shape, the repro once
    assert sum("probably std_as_variance" in ln for ln in lines) == 1
    assert sum("reproduce:" in ln for ln in lines) == 2  # the failure's and the error's
    failing = lines.index(next(ln for ln in lines if ln.startswith("FAIL")))
    shape_lines = lines[failing + 2:failing + 2 + len(SHAPES)]
    assert [ln.split()[0] for ln in shape_lines] == ["x".join(map(str, s)) for s in SHAPES]
    assert all("variance (p=" in ln for ln in shape_lines)
    # the error on every shape is said once; the known deviation one line with its reason
    assert sum("RuntimeError: boom" in ln for ln in lines) == 1
    (known,) = [ln for ln in verdict_lines if ln.startswith("XFAIL")]
    assert "known deviation: listed on purpose" in known
    # worst first, the summary last
    assert [ln.split()[0] for ln in verdict_lines] == ["ERROR", "FAIL", "XFAIL", "PASS"]
    assert lines[-1] == "6 passed, 3 failed, 3 errors, 3 xfailed, 0 xpassed"


def test_verbose_shows_every_result_and_quiet_only_the_summary(report: Report) -> None:
    verbose = "\n".join(_lines(report, verbosity=1))
    assert all(f" {'x'.join(map(str, r.shape))} " in verbose for r in report.results)
    assert sum(ln.startswith("│ std_as_variance") for ln in verbose.splitlines()) == 2 * len(SHAPES)
    assert _lines(report, verbosity=-1) == ["6 passed, 3 failed, 3 errors, 3 xfailed, 0 xpassed"]
