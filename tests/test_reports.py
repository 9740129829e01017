"""JUnit, Markdown and HTML reports: their shape, and that they say what the JSON says.

One small mixed report serves every test: a correct numpy he_normal (pass), the same scheme with
the std used as the variance (fail), an initializer that raises (error), the wrong one listed as
a known deviation (xfail), and the correct one listed as one (xpass).  2000 values per shape:
std-as-variance gives Var = (2/n)² instead of 2/n, a 16x and 24x shortfall at these fans, which
the variance z-test rejects at |z| > 25 (p far below the Holm level of 1e-4/m); the correct
initializer is seeded, so its pass is reproducible (and would false-alarm with p <= 1e-4 anyway).
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from initspec import api
from initspec.cli import main
from initspec.engine.runner import apply_xfails
from initspec.reports import write_reports
from initspec.reports.markdown import to_markdown
from initspec.reports.report import Report

SAMPLES = 2000
SHAPES = [(64, 32), (16, 48)]  # fan_in != fan_out, so the fan law is tested too


def he_normal(rng: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """Correct: N(0, 2 / fan_in) in the torch layout (out, in)."""
    return (rng.standard_normal(shape) * np.sqrt(2 / shape[1])).astype(dtype)


def std_as_variance(rng: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """Wrong: uses 2 / fan_in as the std."""
    return (rng.standard_normal(shape) * (2 / shape[1])).astype(dtype)


def listed_wrong(rng: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """std_as_variance under its own name, listed as a known deviation (xfail)."""
    return std_as_variance(rng, shape, dtype)


def listed_right(rng: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """he_normal under its own name, listed as a known deviation that no longer occurs (xpass)."""
    return he_normal(rng, shape, dtype)


def broken(rng: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    raise RuntimeError("broken\x00initializer")  # a control character must not break the XML


@pytest.fixture(scope="module")
def report() -> Report:
    kw = {"scheme": "he_normal", "shapes": SHAPES, "samples": SAMPLES}
    good = api.check(he_normal, dtypes=("float32", "bfloat16"), **kw).results
    bad = api.check(std_as_variance, **kw).results
    err = api.check(broken, **{**kw, "shapes": SHAPES[:1]}).results
    known = api.check(listed_wrong, **kw).results + api.check(listed_right, **kw).results
    apply_xfails(known, [("listed_*", "listed to test the report")])
    rep = Report("numpy", np.__version__, 0, 1e-4, good + bad + err + known,
                 warnings=["xfail pattern 'nothing' matches no result"])
    assert {r.verdict for r in rep.results} == {"pass", "fail", "error", "xfail", "xpass"}
    return rep


def _reloaded(rep: Report) -> dict:
    """The JSON report as a reader of the file sees it."""
    return json.loads(json.dumps(rep.to_dict()))


# --- JUnit -------------------------------------------------------------------------------------


def test_junit_shape_and_counts_match_the_report(report: Report, tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    write_reports(report, junit=path)
    root = ET.parse(path).getroot()
    data = _reloaded(report)
    s = data["summary"]
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [r["id"] for r in data["results"]]
    for el in (root, suite):
        assert int(el.get("tests")) == len(data["results"])
        assert int(el.get("failures")) == s["failed"] == len(suite.findall("testcase/failure"))
        assert int(el.get("errors")) == s["errors"] == len(suite.findall("testcase/error"))
        assert int(el.get("skipped")) == s["xfailed"] == len(suite.findall("testcase/skipped"))
    timed = [(r, c) for r, c in zip(report.results, cases, strict=True) if "total" in r.timing]
    assert timed and all(c.get("time") == f"{r.timing['total']:.3f}" for r, c in timed)
    props = {p.get("name"): p.get("value") for p in suite.findall("properties/property")}
    assert props["framework"] == "numpy" and props["seed"] == "0"
    assert "matches no result" in suite.findtext("system-err")


def test_junit_elements_carry_message_repro_and_reason(report: Report, tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    write_reports(report, junit=path)
    cases = ET.parse(path).getroot().findall("testsuite/testcase")
    for r, case in zip(report.results, cases, strict=True):
        children = [c.tag for c in case if c.tag != "system-out"]
        if r.verdict == "fail":
            (failure,) = case.findall("failure")
            assert "variance" in failure.get("message")
            assert r.repro in failure.text and f"seed {r.seed}, shape {r.shape}" in failure.text
        elif r.verdict == "error":
            (error,) = case.findall("error")
            assert "RuntimeError: broken" in error.get("message") and "\x00" not in error.get("message")
        elif r.verdict == "xfail":
            (skipped,) = case.findall("skipped")
            assert skipped.get("type") == "pytest.xfail" and skipped.get("message") == "listed to test the report"
        else:
            assert children == [], (r.id, r.verdict)
            if r.verdict == "xpass":
                assert "xpass" in case.findtext("system-out")


# --- Markdown ----------------------------------------------------------------------------------


def _cells(line: str) -> list[str]:
    cells = re.split(r"(?<!\\)\|", line.strip())[1:-1]
    return [c.strip().replace("\\|", "|").strip("` ") for c in cells]


def _tables(md: str) -> list[list[list[str]]]:
    """Every pipe table of a Markdown text, as rows of cells (header and rule dropped)."""
    tables, rows = [], None
    for line in [*md.splitlines(), ""]:
        if line.startswith("|"):
            rows = [] if rows is None else rows
            rows.append(_cells(line))
        elif rows is not None:
            tables.append(rows[2:])
            rows = None
    return tables


def test_markdown_shows_the_grouped_view_of_the_verdicts(report: Report) -> None:
    md = to_markdown(report)
    data = _reloaded(report)
    notable, passed, *shape_tables = _tables(md)
    order = ["error", "fail", "xpass", "xfail", "pass"]
    groups: dict[tuple[str, str], list[str]] = {}
    for r in report.results:
        groups.setdefault((r.entry, r.dtype), []).append(r.verdict)
    # one row per initializer and dtype that does not plainly pass, with its worst verdict ...
    want = {k: min(v, key=order.index) for k, v in groups.items() if set(v) != {"pass"}}
    assert {(row[1], row[2]): row[0].split()[-1] for row in notable} == want
    # ... and the passing dtypes of an initializer folded into one row
    want_passed = {}
    for (entry, dtype), v in groups.items():
        if set(v) == {"pass"}:
            want_passed.setdefault(entry, set()).add(dtype)
    assert {row[0]: set(row[2].split()) for row in passed} == want_passed
    assert sum(int(row[3]) for row in notable) + sum(int(row[3]) for row in passed) == len(data["results"])
    # a failure's diagnosis is stated once for the row (and in its repro block), its shapes beneath it
    (fail_row,) = [row for row in notable if row[0].split()[-1] == "fail"]
    assert fail_row[-1].startswith("probably std_as_variance") and md.count("probably std_as_variance") == 2
    assert [len(t) for t in shape_tables] == [1, len(SHAPES)]  # the error's one shape, then the failure's
    s = data["summary"]
    assert (f"{s['passed']} passed, {s['failed']} failed, {s['errors']} errors, {s['xfailed']} xfailed, "
            f"{s['xpassed']} xpassed") in md
    assert md.startswith("### initspec: numpy") and "❌" in md.splitlines()[0]
    assert "reproduce std_as_variance[64x32-float32]" in md and "\x00" not in md


def test_markdown_goes_to_the_github_step_summary(report: Report, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    summary = tmp_path / "step_summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    write_reports(report, markdown=tmp_path / "out.md")
    text = summary.read_text()
    assert text.startswith("earlier step\n")  # appended, not overwritten
    assert (tmp_path / "out.md").read_text() in text


# --- HTML --------------------------------------------------------------------------------------


_SECTION = re.compile(r"<section class='(\w+)' id='r(\d+)'>(.*?)</section>", re.S)
_IMG = re.compile(r'<img alt="[^"]*" src="data:image/png;base64,([A-Za-z0-9+/=]+)">')


def test_html_is_one_file_with_an_image_for_every_result(report: Report, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    path = tmp_path / "report.html"
    write_reports(report, html=path)
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]
    page = path.read_text()
    assert not re.search(r"""(src|href)=["'](https?:|//|file:)""", page)  # self-contained
    assert "<script" not in page and "<link" not in page
    sections = _SECTION.findall(page)
    assert sorted(int(i) for _, i, _ in sections) == list(range(len(report.results)))
    for verdict, i, body in sections:
        r = report.results[int(i)]
        assert verdict == r.verdict
        imgs = _IMG.findall(body)
        if r.evidence is not None and r.evidence.sample is not None:
            assert len(imgs) == 1, r.id
            assert base64.b64decode(imgs[0]).startswith(b"\x89PNG\r\n\x1a\n")
        else:
            assert r.verdict == "error" and not imgs and "no sample to plot" in body
        for d in r.diagnosis:
            assert d["id"] in body
        if r.verdict in ("fail", "error"):
            assert "reproduce:" in body
    # failures first
    order = {"error": 0, "fail": 1, "xpass": 2, "xfail": 3, "pass": 4}
    ranks = [order[v] for v, _, _ in sections]
    assert ranks == sorted(ranks)
    # one variance-against-fan plot per initializer and dtype with samples
    fans = re.findall(r"<section class='fan' id='fan\d+'>(.*?)</section>", page, re.S)
    groups = {(r.entry, r.target, r.dtype) for r in report.results if r.evidence is not None}
    assert len(fans) == len(groups) and all(len(_IMG.findall(f)) == 1 for f in fans)


def test_html_without_matplotlib_exits_2_with_one_line(tmp_path: Path) -> None:
    code = ("import sys; sys.modules['matplotlib'] = None\n"  # makes `import matplotlib` fail
            "from initspec.cli import main\n"
            f"main(['check', 'numpy', '--only', 'normal', '--samples', '200', '--html', {str(tmp_path / 'r.html')!r}])")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2, p.stderr
    assert p.stderr.strip().splitlines() == ["initspec: error: --html needs matplotlib, which is not installed: "
                                             "pip install 'initspec[report]'"]
    assert not (tmp_path / "r.html").exists()


# --- the CLI -----------------------------------------------------------------------------------


def test_cli_writes_every_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "summary.md"))
    out = {k: tmp_path / f"r.{k}" for k in ("json", "junit", "markdown", "html")}
    with pytest.raises(SystemExit) as exit_:
        main(["check", "numpy", "--only", "caffe_msra", "--samples", str(SAMPLES), "-q",
              *(a for k, p in out.items() for a in (f"--{k}", str(p)))])
    assert exit_.value.code == 0, capsys.readouterr()
    data = json.loads(out["json"].read_text())
    assert data["results"] and all(r["verdict"] == "pass" for r in data["results"])
    suite = ET.parse(out["junit"]).getroot().find("testsuite")
    assert int(suite.get("tests")) == len(suite.findall("testcase")) == len(data["results"])
    md = out["markdown"].read_text()
    (passed,) = _tables(md)
    assert sum(int(row[3]) for row in passed) == len(data["results"])
    assert (tmp_path / "summary.md").read_text() == md + "\n"
    assert len(_IMG.findall(out["html"].read_text())) == len(data["results"]) + len({r["dtype"] for r in
                                                                                     data["results"]})


def test_cli_unwritable_report_path_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["check", "numpy", "--only", "normal", "--samples", "200", "-q",
              "--junit", str(tmp_path / "no" / "such" / "dir" / "j.xml")])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    # refused before the run (reports/output.py), naming the option, the path and why
    assert len(err) == 1 and err[0].startswith("initspec: error: --junit") and "j.xml" in err[0]
    assert "does not exist" in err[0]
