"""JUnit XML: one testcase per initializer × shape × dtype.

A failed result is a ``failure`` (message: the failed tests and diagnosis in one line; text:
the repro block), an errored one an ``error``, an xfail a ``skipped`` with the known-deviation
reason (as pytest writes xfail), an xpass a passed testcase with a note in ``system-out``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from initspec.reports import printable
from initspec.reports.report import failure_message, one_line

if TYPE_CHECKING:
    from initspec.engine.runner import Result
    from initspec.reports.report import Report


def to_junit(report: Report) -> ET.Element:
    """The ``<testsuites>`` element of a report (one ``<testsuite>`` per framework)."""
    from initspec import __version__

    s = report.summary
    counts = {"tests": str(len(report.results)), "failures": str(s["failed"]), "errors": str(s["errors"]),
              "skipped": str(s["xfailed"])}
    suite_name = f"initspec.{report.framework}"
    root = ET.Element("testsuites", {"name": "initspec", **counts})
    seconds = [r.timing["total"] for r in report.results if "total" in r.timing]
    if seconds:  # measured by the runner (per result: drawing and testing)
        counts["time"] = f"{sum(seconds):.3f}"
        root.set("time", counts["time"])
    suite = ET.SubElement(root, "testsuite", {"name": suite_name, **counts,
                                              "timestamp": datetime.now(UTC).isoformat(timespec="seconds")})
    props = ET.SubElement(suite, "properties")
    for name, value in (("initspec_version", __version__), ("framework", report.framework),
                        ("framework_version", report.framework_version), ("seed", report.seed),
                        ("alpha", f"{report.alpha:g}"), *sorted(report.meta.items())):
        ET.SubElement(props, "property", {"name": str(name), "value": printable(str(value))})
    for r in report.results:
        case = ET.SubElement(suite, "testcase", {"classname": suite_name, "name": printable(r.id)})
        if "total" in r.timing:
            case.set("time", f"{r.timing['total']:.3f}")
        if r.verdict == "fail":
            el = ET.SubElement(case, "failure", {"message": printable(one_line(r)), "type": _failure_type(r)})
            el.text = printable(failure_message(r))
        elif r.verdict == "error":
            el = ET.SubElement(case, "error", {"message": printable(r.error or "error"), "type": "error"})
            el.text = printable(failure_message(r))
        elif r.verdict == "xfail":
            el = ET.SubElement(case, "skipped", {"type": "pytest.xfail", "message": printable(r.xfail or "xfail")})
            el.text = printable(failure_message(r))
        elif r.verdict == "xpass":
            ET.SubElement(case, "system-out").text = printable(
                f"xpass: listed as a known deviation ({r.xfail}) but conforms; drop the xfail entry")
    if report.warnings:
        ET.SubElement(suite, "system-err").text = printable("\n".join(f"warning: {w}" for w in report.warnings))
    return root


def _failure_type(r: Result) -> str:
    """The top diagnosis id, else the first failed test's name."""
    if r.diagnosis:
        return str(r.diagnosis[0]["id"])
    return r.failed_tests[0].name if r.failed_tests else "fail"


def to_junit_xml(report: Report) -> str:
    """The JUnit XML document as text."""
    root = to_junit(report)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
