"""Packaging: no ML framework on import, and the wheel works from outside the repository."""

import json
import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FRAMEWORKS = ("torch", "tensorflow", "jax", "flax", "keras")


def test_import_initspec_imports_no_framework():
    code = ("import sys, initspec, initspec.cli, initspec.api, initspec.engine.runner, initspec.frameworks; "
            f"print([m for m in {FRAMEWORKS!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_check_numpy_imports_no_framework(tmp_path):
    code = ("import sys, initspec; initspec.check_framework('numpy', only='he_normal', samples=1000); "
            f"print([m for m in {FRAMEWORKS!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.slow
def test_wheel_in_a_fresh_venv_runs_check_numpy_outside_the_repo(tmp_path):
    """Build the wheel, install it alone into a new venv, run `initspec check numpy` elsewhere.

    The new venv gets this environment's dependencies (numpy, scipy, ...) through a .pth
    file, which is appended after its own site-packages, so `initspec` comes from the wheel.
    """
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(dist), str(ROOT)], check=True)
    wheel = next(dist.glob("initspec-*.whl"))
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    site = Path(subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q", str(wheel)],
                   check=True)
    # only now: with the .pth in place pip would see this environment's initspec and skip the wheel
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    where = subprocess.run([py, "-c", "import initspec, initspec._data as d; print(initspec.__file__); "
                            "print(d.data_dir('spec'))"], cwd=work, env=env, capture_output=True, text=True,
                           check=True).stdout.split()
    assert where[0].startswith(str(env_dir)) and where[1].startswith(str(env_dir))
    report = work / "r.json"
    run = subprocess.run([env_dir / "bin" / "initspec", "check", "numpy", "--json", str(report)], cwd=work,
                         env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    doc = json.loads(report.read_text())
    assert doc["summary"]["failed"] == doc["summary"]["errors"] == 0
    assert doc["summary"]["passed"] > 400
