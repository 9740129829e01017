"""``propagate --json -`` writes the JSON alone on standard output, the terminal view on stderr (as every
command that writes reports does)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "initspec", "propagate", *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=300)


def test_json_to_stdout_keeps_the_view_on_stderr():
    proc = _run("he_normal", "-a", "relu", "--depth", "3", "--width", "32", "--batch", "8", "--json", "-")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["scheme"] == "he_normal"
    assert "forward:" in proc.stderr and "PASS" in proc.stderr


def test_the_gain_table_too():
    proc = _run("--gains", "--json", "-")
    assert proc.returncode == 0 and {r["activation"] for r in json.loads(proc.stdout)} >= {"relu", "tanh"}
    assert "preserving gain" in proc.stderr
