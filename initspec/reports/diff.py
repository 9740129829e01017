"""JUnit and Markdown for ``initspec diff``: one comparison, one testcase / one table."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from initspec.reports import _write, printable


def to_junit_xml(result: dict[str, Any]) -> str:
    """A testsuite with one testcase, failed when the two initializers differ."""
    a, b = result["side_a"]["label"], result["side_b"]["label"]
    suite = ET.Element("testsuite", name="initspec.diff", tests="1", failures="0" if result["same"] else "1",
                       errors="0", skipped="0")
    case = ET.SubElement(suite, "testcase", classname="initspec.diff", name=printable(f"{a} vs {b}"))
    if not result["same"]:
        lines = [printable(line) for line in result["explanation"]]
        failure = ET.SubElement(case, "failure", message=" ".join(x.strip() for x in lines), type="different")
        failure.text = "\n".join(lines)
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def to_markdown(result: dict[str, Any]) -> str:
    """A verdict line, the two sides side by side, the explanation."""
    verdict = "same distribution" if result["same"] else "**different distributions**"
    out = [f"### initspec diff: {verdict}", "",
           "| | initializer | version | claims | shape (layout) | fan_in, fan_out | n | mean | var | kurtosis |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for key, side in (("a", result["side_a"]), ("b", result["side_b"])):
        m = result[key]
        out.append(f"| {key.upper()} | `{side['label']}` | {side['version']} | `{side['claims']}` | "
                   f"{tuple(side['shape'])} ({side['layout']}) | {side['fan_in']}, {side['fan_out']} | {m['n']} | "
                   f"{m['mean']:.4g} | {m['var']:.5g} | {m['kurtosis']:.3f} |")
    out += ["", "```text", *(printable(line) for line in result["explanation"]), "```", ""]
    return "\n".join(out)


def write_diff_reports(result: dict[str, Any], *, junit: str | Path | None = None,
                       markdown: str | Path | None = None) -> None:
    """Write the reports given a path; the Markdown also goes to ``$GITHUB_STEP_SUMMARY`` when set."""
    if junit:
        _write(junit, to_junit_xml(result))
    if markdown:
        text = to_markdown(result)
        _write(markdown, text)
        if os.environ.get("GITHUB_STEP_SUMMARY"):
            _write(os.environ["GITHUB_STEP_SUMMARY"], text, append=True)
