"""Keras backends: choose one for this process, or run every installed one and compare them.

``initspec check keras --backend B`` sets ``KERAS_BACKEND`` before anything imports Keras
(:func:`select`).  ``--all-backends`` (:func:`run_all`) runs
``python -m initspec check keras --backend B --json TMP`` once per backend, each in its own
process (a process has one Keras backend), merges the reports (every result tagged with its
backend) and compares the backends result by result: verdicts, observed/expected variance,
and two-sample z-tests of variance and mean between every pair of backends, Holm-corrected
over the whole comparison at the run's alpha.

The interpreter of backend B is ``$INITSPEC_PYTHON_<B>`` (e.g. ``INITSPEC_PYTHON_TORCH``) when
set, else this one: one virtualenv rarely holds TensorFlow, JAX and torch together.
Backends whose framework is not installed are reported as skipped, not as errors.
"""

from __future__ import annotations

import importlib
import importlib.util
import itertools
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from initspec.errors import InputError
from initspec.frameworks.keras_backends import BACKEND_MODULES, BACKENDS, interpreter

_NOT_INSTALLED = ("is not installed", "cannot be imported", "No module named")


def _installed(backend: str, python: str) -> str | None:
    """None when the backend can be tried, else why it is skipped (only checked for this interpreter)."""
    if python != sys.executable:
        return None
    for mod in ("keras", BACKEND_MODULES[backend]):
        if importlib.util.find_spec(mod) is None:
            return f"{mod} is not installed"
    return None


def _child(backend: str, args: list[str], folder: Path) -> dict[str, Any]:
    """Run one backend in its own process; its JSON report, or why it was skipped/failed."""
    python = interpreter(backend)
    why = _installed(backend, python)
    if why:
        return {"backend": backend, "status": "skipped", "reason": why, "python": python}
    out = folder / f"{backend}.json"
    cmd = [python, "-m", "initspec", "check", "keras", "--backend", backend, "--json", str(out), "--quiet", *args]
    # every child runs this very initspec (the comparison needs one engine), whatever it has installed
    source = str(Path(__file__).resolve().parent.parent)
    path = os.pathsep.join(p for p in (source, os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": path,
           "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - t0
    info = {"backend": backend, "python": python, "exit_code": proc.returncode, "seconds": round(seconds, 1),
            "command": " ".join(cmd)}
    err = [line for line in proc.stderr.strip().splitlines() if line.startswith("initspec: error:")]
    if proc.returncode == 2 and err and any(s in err[-1] for s in _NOT_INSTALLED):
        return {**info, "status": "skipped", "reason": err[-1].removeprefix("initspec: error: ")}
    if not out.is_file():
        tail = (err[-1] if err else proc.stderr.strip().splitlines()[-1:] or ["no output"])
        reason = tail if isinstance(tail, str) else tail[0]
        return {**info, "status": "error", "reason": reason}
    return {**info, "status": "ran", "report": json.loads(out.read_text())}


def _num(v: Any) -> float:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    return math.nan


def _reference(r: dict[str, Any]) -> Any:
    from initspec.spec.reference import build
    from initspec.spec.schemes import resolve

    try:
        return build(resolve(r["scheme"]), r["fan_in"] or 1, r["fan_out"] or 1, r["dtype"])
    except InputError:
        return None


def _pair_tests(a: dict[str, Any], b: dict[str, Any], ref: Any) -> list[dict[str, Any]]:
    """Two-sample z-tests of variance and mean; standard errors from the claimed law's moments.

    Under "both backends draw from the same law" the difference of the sample variances has
    variance (mu4 - var²)(1/n_a + 1/n_b) and the difference of the means var (1/n_a + 1/n_b);
    the claimed law's var and mu4 stand in for the common law's (the fourth moment only sets
    the test's scale; a backend that is off in variance shows up in the numerator).
    """
    from scipy import stats

    oa, ob = a.get("observed", {}), b.get("observed", {})
    na, nb = _num(oa.get("n")), _num(ob.get("n"))
    if ref is None or not (na >= 2 and nb >= 2) or "var" not in oa or "var" not in ob:
        return []
    inv = 1.0 / na + 1.0 / nb
    out = []
    se_var = math.sqrt(max(ref.mu4 - ref.var**2, 0.0) * inv)
    se_mean = math.sqrt(ref.var * inv)
    for name, diff, se in (("variance", _num(oa["var"]) - _num(ob["var"]), se_var),
                           ("mean", _num(oa["mean"]) - _num(ob["mean"]), se_mean)):
        if not (se > 0 and math.isfinite(diff)):
            continue
        z = diff / se
        out.append({"test": name, "z": z, "p_value": float(2 * stats.norm.sf(abs(z)))})
    return out


def compare(runs: dict[str, dict[str, Any]], alpha: float) -> list[dict[str, Any]]:
    """Result-by-result comparison of the backends that ran (Holm over every two-sample test)."""
    from initspec.engine.stats import holm

    by_id: dict[str, dict[str, dict[str, Any]]] = {}
    for backend, rep in runs.items():
        for r in rep["results"]:
            by_id.setdefault(r["id"], {})[backend] = r
    rows = []
    for rid, per in by_id.items():
        if len(per) < 2:
            continue
        first = next(iter(per.values()))
        ref = _reference(first)
        row = {"id": rid, "verdicts": {b: r["verdict"] for b, r in per.items()},
               "var_ratio": {}, "tests": [],
               "xfail": {b: r["xfail"] for b, r in per.items() if r.get("xfail")}}
        for b, r in per.items():
            exp, obs = _num(r.get("expected", {}).get("var")), _num(r.get("observed", {}).get("var"))
            if exp > 0 and math.isfinite(obs):
                row["var_ratio"][b] = obs / exp
        for (ba, ra), (bb, rb) in itertools.combinations(per.items(), 2):
            for t in _pair_tests(ra, rb, ref):
                row["tests"].append({"pair": [ba, bb], **t})
        rows.append(row)
    tests = [t for row in rows for t in row["tests"]]
    for t, rejected in zip(tests, holm([t["p_value"] for t in tests], alpha), strict=True):
        t["rejected"] = rejected
    for row in rows:
        same_verdict = len({_side(v) for v in row["verdicts"].values()}) == 1
        row["agree"] = same_verdict and not any(t["rejected"] for t in row["tests"])
        row["explained"] = row["agree"] or bool(row["xfail"])
    return rows


def _side(verdict: str) -> str:
    """pass/xpass conform, fail/xfail/error do not: backends agree when they are on the same side."""
    return "conforms" if verdict in ("pass", "xpass") else "deviates"


def run_all(*, seed: int, alpha: float, samples: int | None, max_draws: int, only: str | None,
            manifest: str | None, json_path: str | None, quiet: bool, echo: Any = print,
            eager: bool = False) -> int:
    """Run every backend in its own process, merge, compare, print; the exit code.

    0: every backend that ran conforms (known deviations aside) and the backends agree where
    no known deviation explains a difference; 1: a nonconformance or an unexplained
    disagreement; 2: no backend could run.
    """
    args = ["--seed", str(seed), "--alpha", repr(alpha), "--max-draws", str(max_draws)]
    if samples is not None:
        args += ["--samples", str(samples)]
    if only:
        args += ["--only", only]
    if manifest:
        args += ["--manifest", str(Path(manifest).resolve())]
    if eager:
        args.append("--eager")
    children = {}
    with tempfile.TemporaryDirectory(prefix="initspec-backends-") as tmp:
        for backend in BACKENDS:
            child = _child(backend, args, Path(tmp))
            children[backend] = child
            echo(_status_line(child))
    runs = {b: c["report"] for b, c in children.items() if c["status"] == "ran"}
    rows = compare(runs, alpha)
    merged = _merged(children, rows, seed, alpha)
    if json_path:
        Path(json_path).write_text(json.dumps(merged, indent=2) + "\n")
    _print_comparison(rows, list(runs), echo, quiet)
    if not runs:
        echo("initspec: no Keras backend could run")
        return 2
    failed = any(c["status"] == "error" or c.get("exit_code", 0) != 0 for c in children.values()
                 if c["status"] != "skipped")
    unexplained = any(not row["explained"] for row in rows)
    return 1 if failed or unexplained else 0


def _status_line(child: dict[str, Any]) -> str:
    b = child["backend"]
    if child["status"] == "skipped":
        return f"keras[{b}]: skipped ({child['reason']})"
    if child["status"] == "error":
        return f"keras[{b}]: error (exit {child['exit_code']}, {child['seconds']} s): {child['reason']}"
    rep = child["report"]
    s = rep["summary"]
    return (f"keras[{b}] {rep['framework_version']}: {s['passed']} passed, {s['failed']} failed, "
            f"{s['errors']} errors, {s['xfailed']} xfailed, {s['xpassed']} xpassed ({child['seconds']} s)")


def _merged(children: dict[str, dict[str, Any]], rows: list[dict[str, Any]], seed: int,
            alpha: float) -> dict[str, Any]:
    from initspec import __version__

    backends, results = {}, []
    for b, c in children.items():
        info = {k: v for k, v in c.items() if k != "report"}
        if c["status"] == "ran":
            rep = c["report"]
            info.update(framework_version=rep["framework_version"], summary=rep["summary"],
                        warnings=rep.get("warnings", []))
            results += [{**r, "backend": b} for r in rep["results"]]
        backends[b] = info
    agree = sum(row["agree"] for row in rows)
    return {"initspec_version": __version__, "framework": "keras", "seed": seed, "alpha": alpha,
            "backends": backends, "results": results, "comparison": rows,
            "summary": {"compared": len(rows), "agree": agree, "disagree": len(rows) - agree,
                        "unexplained": sum(not row["explained"] for row in rows)}}


def _group_key(rid: str) -> tuple[str, str]:
    """(entry, dtype) of a result id ``entry[shape-dtype]``."""
    entry, _, rest = rid.rpartition("[")
    return entry, rest.rstrip("]").rpartition("-")[2]


def _cell(verdicts: list[str], ratios: list[float]) -> str:
    """One backend's verdicts over a group's shapes ('xfail', '3 xfail 2 xpass') and its var ratio range."""
    counts = {v: verdicts.count(v) for v in dict.fromkeys(verdicts)}
    text = next(iter(counts)) if len(counts) == 1 else " ".join(f"{n} {v}" for v, n in counts.items())
    if ratios:
        lo, hi = min(ratios), max(ratios)
        text += f" {lo:.3f}" if lo == hi else f" {lo:.3f}-{hi:.3f}"
    return text


def _print_comparison(rows: list[dict[str, Any]], ran: list[str], echo: Any, quiet: bool) -> None:
    """The differing results, one line per entry and dtype (its shapes pooled), then a summary."""
    if len(ran) < 2:
        echo(f"cross-backend comparison needs two backends; ran: {', '.join(ran) or 'none'}")
        return
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        if not row["agree"]:
            groups.setdefault(_group_key(row["id"]), []).append(row)
    if groups and not quiet:
        table = []
        for (entry, dtype), members in groups.items():
            cells = [_cell([r["verdicts"][b] for r in members if b in r["verdicts"]],
                           [r["var_ratio"][b] for r in members if b in r["var_ratio"]]) for b in ran]
            rejected: dict[str, list[float]] = {}
            for t in (t for r in members for t in r["tests"] if t["rejected"]):
                rejected.setdefault(f"{t['test']} {t['pair'][0]}≠{t['pair'][1]}", []).append(abs(t["z"]))
            diff = "; ".join(f"{k} |z| {min(z):.1f}" + (f"-{max(z):.1f}" if len(z) > 1 else "")
                             for k, z in rejected.items()) or "-"
            unexplained = sum(not r["explained"] for r in members)
            table.append((unexplained == 0, f"{entry} [{dtype}] {len(members)} shape{'s' * (len(members) > 1)}",
                          cells, diff + (f"  UNEXPLAINED ({unexplained})" if unexplained else "")))
        table.sort(key=lambda t: (t[0], t[1]))
        width = max(len(t[1]) for t in table)
        cols = [max(len(b), *(len(t[2][i]) for t in table)) for i, b in enumerate(ran)]
        echo("")
        echo(f"{'differing results (entry [dtype], shapes pooled)':{width}}  "
             + "  ".join(f"{b:{w}}" for b, w in zip(ran, cols, strict=True)) + "  two-sample tests rejected (Holm)")
        for _, label, cells, diff in table:
            echo(f"{label:{width}}  " + "  ".join(f"{c:{w}}" for c, w in zip(cells, cols, strict=True)) + f"  {diff}")
    agree = sum(row["agree"] for row in rows)
    unexplained = sum(not row["explained"] for row in rows)
    echo(f"{len(rows)} results compared across {', '.join(ran)}: {agree} agree, {len(rows) - agree} differ "
         f"({len(rows) - agree - unexplained} explained by known deviations, {unexplained} unexplained)")
