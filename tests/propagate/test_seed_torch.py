"""``propagate --model`` seeds a factory that imports torch itself (tox env torch).

The seed used to be applied only when torch was imported before the build, so a factory that imports
torch inside (``propagate_inits.torch_mlp``) drew fresh weights every run; found by the manual's
example ``docs/examples/propagate_torch.sh``, whose stored output then differed run to run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
ROOT = Path(__file__).resolve().parents[2]


def _run(seed: int) -> str:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "tests" / "propagate"), str(ROOT)]))
    proc = subprocess.run([sys.executable, "-m", "initspec", "propagate", "--model",
                           "propagate_inits:torch_mlp(3, 32, False)", "--input-shape", "8,32", "--seed", str(seed)],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_a_fresh_process_draws_the_same_model_under_the_same_seed():
    first, second, other = _run(0), _run(0), _run(1)
    assert first == second
    assert first != other  # the seed reaches the weights
