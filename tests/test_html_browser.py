"""The self-contained HTML reports, opened in a real browser: headless Chromium (Debian's chromium and
chromium-driver, driven by selenium) loads each one from a file, and the test fails on any console
error and on any image the browser could not decode (naturalWidth 0).  Each page's screenshot is
the one the manual shows (``INITSPEC_DOCS_UPDATE=1`` writes them into docs/figures/).

Reports made here with small runs: ``check`` (a failing callable; the broken manifest: failures
with plots, an error, a pass), ``propagate`` (a numpy stack), and ``audit`` (a tiny torch model,
where torch is installed).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FIGURES = ROOT / "docs" / "figures"
UPDATE = os.environ.get("INITSPEC_DOCS_UPDATE") == "1"

if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
    pytest.skip("no Chromium here (apt-get install chromium chromium-driver; .ci/run does)", allow_module_level=True)
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (tox env docs has it)")
pytest.importorskip("matplotlib", reason="the HTML reports need matplotlib")

REPORTS = {
    # one callable drawing N(0, 2/fan_in) with 2/fan_in as its std: failures with their plots
    "check": ["check", "--target", "mutants:normal_vs(2.0, bug='std_as_variance')", "--scheme", "he_normal",
              "--shape", "512,128", "--shape", "96,1000"],
    # a std used as a variance, an initializer that raises, a correct one
    "check-errors": ["check", "--manifest", "tests/data/broken_manifest.toml", "--samples", "20000"],
    "propagate": ["propagate", "torch_linear_default", "-a", "relu", "--depth", "20", "--width", "256"],
    # tests/audit/torch_models.py: a 4-layer GPT whose scaled residual init never matched its name
    "audit": ["audit", "torch_models:tiny_gpt(bug='scaled_name')", "--spec", "{spec}", "--seeds", "3"],
}
SHOWN = ("check", "audit", "propagate")  # the screenshots the manual uses
AUDIT_SPEC = """[vars]
n_layer = 4
[params]
"*.c_proj.weight" = "normal(std=0.02 / sqrt(2 * n_layer))"
"*.bias"          = "zeros"
"*ln_*.weight"    = "ones"
"*"               = "normal(std=0.02)"
"""


def _make(kind: str, out: Path) -> Path:
    """Write one report with the command line; its path."""
    if kind == "audit":
        pytest.importorskip("torch", reason="the audit report needs a torch model (tox env torch has torch)")
    page = out / f"{kind}.html"
    (out / "spec.toml").write_text(AUDIT_SPEC)
    args = [a.replace("{spec}", str(out / "spec.toml")) for a in REPORTS[kind]]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "tests"), str(ROOT / "tests" / "audit"), str(ROOT)]),
               OPENBLAS_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "initspec", *args, "--html", str(page)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode in (0, 1) and page.exists(), proc.stderr[-2000:]
    return page


def _browser_pids(profile: Path) -> list[int]:
    """Processes whose command line names this test's Chromium profile."""
    pids = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if str(profile).encode() in (p / "cmdline").read_bytes():
                    pids.append(int(p.name))
            except OSError:
                continue
    return pids


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    profile = tmp_path_factory.mktemp("chromium-profile")
    opts = Options()
    opts.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1280,1600", f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # the driver from Debian's package: selenium then has nothing to download
    driver = webdriver.Chrome(options=opts, service=Service(executable_path=str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()
        deadline = time.monotonic() + 15  # quit() returns once the driver has asked; the browser's
        while _browser_pids(profile) and time.monotonic() < deadline:  # helpers end a moment later
            time.sleep(0.2)
        left = _browser_pids(profile)
        assert not left, f"Chromium processes left running: {left}"


@pytest.mark.parametrize("kind", sorted(REPORTS))
def test_report_renders_in_chromium(kind, browser, tmp_path):
    page = _make(kind, tmp_path)
    browser.get(page.as_uri())
    assert browser.execute_script("return document.readyState") == "complete"
    images = browser.execute_script(
        "return Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth, i.naturalHeight])")
    assert images, f"{kind}: the report shows no image"
    broken = [alt for alt, complete, w, h in images if not complete or w == 0 or h == 0]
    assert not broken, f"{kind}: images the browser could not show: {broken}"
    errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert not errors, f"{kind}: console errors: {errors}"
    shot = tmp_path / f"report-{kind}.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    if UPDATE and kind in SHOWN:
        shutil.copy(shot, FIGURES / shot.name)


def test_a_broken_image_is_caught(browser, tmp_path):
    """The check above can fail: a page with an undecodable image shows naturalWidth 0."""
    page = tmp_path / "broken.html"
    page.write_text('<!DOCTYPE html><html><body><img alt="x" src="data:image/png;base64,AAAA"></body></html>')
    browser.get(page.as_uri())
    widths = browser.execute_script("return Array.from(document.images).map(i => i.naturalWidth)")
    assert widths == [0]
