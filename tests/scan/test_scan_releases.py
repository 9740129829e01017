"""Releases compared: lockfiles written by a scan on one release, checked by a scan on another, list
the real differences and nothing else.  The two releases are a fake transformers (fake_transformers/)
with planted differences, run as the library `initspec scan hf` sees (its own process, the fake on
the path).  Sizes: the planted law change is c_proj's std 0.02 -> 0.01 on (64, 64) kernels, 2 layers,
8 instances: 65k values, the variance test's z is ~500; the unchanged models draw the same values
on both releases (same seeds, same code), so their checks cannot false-alarm.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[2]
FAKE = Path(__file__).resolve().parent / "fake_transformers"


def _scan(release: str, *args: str) -> tuple[int, str, str]:
    env = {**os.environ, "FAKE_TRANSFORMERS_RELEASE": release, "PYTHONPATH": f"{FAKE}{os.pathsep}{ROOT}",
           "OPENBLAS_NUM_THREADS": "1"}
    p = subprocess.run([sys.executable, "-m", "initspec", "scan", "hf", "-j", "2", "--no-progress", *args],
                       capture_output=True, text=True, env=env, timeout=600)
    return p.returncode, p.stdout, p.stderr


@pytest.fixture(scope="module")
def releases(tmp_path_factory):
    d = tmp_path_factory.mktemp("releases")
    code1, out1, err1 = _scan("1.0", "--write-specs", str(d / "locks"), "--json", str(d / "v1.json"))
    code2, out2, err2 = _scan("2.0", "--specs", str(d / "locks"), "--json", str(d / "v2.json"),
                              "--junit", str(d / "v2.xml"), "--markdown", str(d / "v2.md"))
    return d, (code1, out1, err1), (code2, out2, err2)


def _rows(path: Path) -> dict[str, dict]:
    return {r["name"]: r for r in json.loads(path.read_text())["rows"]}


def test_the_first_release_writes_one_lockfile_per_architecture_that_builds(releases):
    d, (code, out, err), _ = releases
    rows = _rows(d / "v1.json")
    assert {n: r["status"] for n, r in rows.items()} == {
        "tinybert": "ok", "tinygpt": "ok", "tinyrenamed": "ok", "tiny_removed": "ok", "tinybroken": "could not build"}
    assert sorted(p.name for p in (d / "locks").iterdir()) == [
        "tiny_removed.toml", "tinybert.toml", "tinygpt.toml", "tinyrenamed.toml"]
    assert code == 1, out + err  # one architecture could not be built
    assert "NOBUILD" in out and "tinybroken needs a kernel" in out and "Traceback" not in out + err


def test_the_second_release_lists_the_planted_differences_and_nothing_else(releases):
    d, _, (code, out, err) = releases
    rows = _rows(d / "v2.json")
    assert {n: r["status"] for n, r in rows.items()} == {
        "tinybert": "ok", "tinygpt": "changed", "tinyrenamed": "changed", "tiny_new": "new",
        "tiny_removed": "removed", "tinybroken": "could not build"}, out + err
    gpt = rows["tinygpt"]["changes"]
    assert {(c["kind"], c["group"], c["old"], c["new"]) for c in gpt} == {
        ("changed", "h.*.c_proj.weight", "normal(std=0.02)", "normal(std=0.01)")}
    assert gpt[0]["diagnosis"] == "wrong_scale"
    renamed = rows["tinyrenamed"]["changes"]
    assert {(c["kind"], c["group"]) for c in renamed} == {
        ("missing", "fc.weight"), ("missing", "fc.bias"), ("new", "dense.weight"), ("new", "dense.bias")}
    assert code == 1


def test_the_second_release_reports_in_every_format(releases):
    d, _, (_, out, _) = releases
    assert "CHANGED  tinygpt" in out and "h.*.c_proj.weight ×2: normal(std=0.02) -> normal(std=0.01)" in out
    assert "REMOVED  tiny_removed" in out and "NEW      tiny_new" in out
    xml = (d / "v2.xml").read_text()
    assert xml.count("<testcase") == 6 and xml.count("<failure") == 3 and xml.count("<error") == 1
    md = (d / "v2.md").read_text()
    assert "| tinygpt | changed |" in md and "| tinybert | ok |" in md
