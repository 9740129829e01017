"""The audit's draw loop tells a progress callback of each instance it builds (tox env torch)."""

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
