"""Name the likely mistake behind a failed result.

Each diagnosis has a stable id, a confidence in [0, 1] and a one-line message.  The
structural ids are read straight off the failed test; the statistical ones compare the
observed variance with what each known mistake would have produced.
"""

from __future__ import annotations

from typing import Any

#: structural failures -> mistake id
_STRUCTURAL = {"shape": "shape_changed", "dtype": "dtype_changed", "finite": "non_finite",
               "deterministic": "not_deterministic", "seed_sensitive": "seed_ignored",
               "support": "support_violation"}


def _diag(id_: str, confidence: float, message: str) -> dict[str, Any]:
    return {"id": id_, "confidence": round(confidence, 3), "message": message}


def diagnose(result: Any) -> list[dict[str, Any]]:
    """Diagnoses for one failed result, most likely first."""
    if result.verdict not in ("fail", "error") or result.error:
        return []
    out = []
    for t in result.failed_tests:
        if t.name in _STRUCTURAL:
            out.append(_diag(_STRUCTURAL[t.name], 1.0, t.detail or f"{t.name} check failed"))
    if not out:
        out.append(_diag("unknown", 0.0, "no known mistake explains the failed checks: "
                         + ", ".join(t.name for t in result.failed_tests)))
    return out


def diagnose_group(results: list[Any]) -> None:
    """Fill ``diagnosis`` for each result of one initializer and dtype (all shapes)."""
    for r in results:
        r.diagnosis = diagnose(r)
