"""The audit's draw loop (tox env torch): it tells a progress callback of each instance it builds, and it
seeds every instance, the first included."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")


def test_audit_ticks_once_per_instance():
    """One tick per instance (total known from the start when --seeds is given), then the analysis."""
    from initspec.audit.run import audit

    seen = []
    audit("torch.nn:Linear(8, 4)", seeds=3, progress=lambda d, t, label: seen.append((d, t, label)))
    assert [(d, t) for d, t, _ in seen] == [(0, 3), (1, 3), (2, 3), (3, 3)]
    assert seen[0][2] == "instance 1 (seed 0)" and "checking" in seen[-1][2]


def test_the_total_is_unknown_until_the_first_instance_decides_it():
    from initspec.audit.run import audit

    seen = []
    rep = audit("torch.nn:Linear(8, 4)", progress=lambda d, t, label: seen.append((d, t)))
    n = len(rep.seeds)
    assert seen[0] == (0, None) and seen[1:] == [(i, n) for i in range(1, n + 1)]


def _audit(tmp_path, *args: str) -> tuple[int, str, str]:
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root / "tests" / "propagate"), str(root)]))
    proc = subprocess.run([sys.executable, "-m", "initspec", "audit", *args], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=300)
    return proc.returncode, proc.stdout, proc.stderr


def test_a_factory_that_imports_torch_itself_is_seeded(tmp_path):
    """In a fresh process the first instance of a factory that imports torch inside used to be built
    before any seed (torch was not imported yet): two runs then drew different weights."""
    import json

    target = "propagate_inits:torch_mlp(2, 16, False)"
    runs = []
    for seed in (0, 0, 1):
        code, out, err = _audit(tmp_path, target, "--seeds", "2", "--seed", str(seed), "--json", "-")
        assert code == 0, err
        doc = json.loads(out)  # --json -: the JSON alone on stdout, the table on stderr
        assert "groups" in err
        runs.append([r["observed"]["var"] for r in doc["results"]])
    assert runs[0] == runs[1] and runs[0] != runs[2]
