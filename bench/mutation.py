"""Mutation check: plant known bugs in the engine, one at a time, and see whether the tests notice.

Each mutation is a one-line textual change to a copy of this checkout (``initspec/`` and
everything the tests read), made in a temporary directory; the copy is then tested the way
``tox -e core`` tests it: ``pytest tests`` and, if that passes, ``pytest conformance
--framework numpy``, with the copy first on PYTHONPATH (so the installed initspec is shadowed,
in spawned workers and subprocesses too).  A mutation is *caught* when either command fails.
The unmutated copy runs first and must pass, or nothing below means anything.

    python bench/mutation.py                        # every mutation, the whole core suite each
    python bench/mutation.py --only holm_uncorrected,std_error_3pct
    python bench/mutation.py --first                # stop each run at its first failure (faster)
    python bench/mutation.py --json bench/mutation.json
    python bench/mutation.py --tests-from ab6b93f   # the same bugs against an older tests/ (git rev)

Not part of CI (the whole run is ~12 core-suite runs).  A mutation whose line is no longer in
the source is reported as ``not applied``: update its text when the engine changes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mutation:
    name: str
    why: str  # what the planted bug is
    path: str  # file, relative to the repository
    old: str  # must occur exactly once
    new: str


MUTATIONS: tuple[Mutation, ...] = (
    # --- the six that survived in issue 14 ---
    Mutation("holm_uncorrected", "holm() tests every p-value at alpha (no multiplicity correction)",
             "initspec/engine/stats.py", "if p_values[i] > alpha / (m - rank):", "if p_values[i] > alpha:"),
    Mutation("std_error_3pct", "STD_ERROR 0.01 -> 0.03: samples sized for a 3% std error (~9x smaller)",
             "initspec/engine/stats.py", "STD_ERROR = 0.01", "STD_ERROR = 0.03"),
    Mutation("xpass_exits_1", "an xpass makes the run fail (exit 1)",
             "initspec/reports/report.py", 'FAILING = ("fail", "error")', 'FAILING = ("fail", "error", "xpass")'),
    Mutation("cli_ignores_jobs", "the CLI drops -j: every framework check runs in one process",
             "initspec/cli/check.py", "manifest=m, workers=workers,", "manifest=m, workers=1,"),
    Mutation("json_drops_power_seed", "the JSON report drops each result's power and seed",
             "initspec/engine/runner.py", '"power": _num(self.power), "seed": self.seed,', ""),
    Mutation("identify_without_bic", "identify ranks by likelihood alone (no BIC penalty for fitted parameters)",
             "initspec/engine/identify.py", "c.bic = -2 * total + c.fitted * math.log(n) if",
             "c.bic = -2 * total if"),
    # --- fans ---
    Mutation("fans_swapped", "Layout.fans returns (fan_out, fan_in)",
             "initspec/spec/fans.py", "return shape[axes[0]] * receptive, shape[axes[1]] * receptive",
             "return shape[axes[1]] * receptive, shape[axes[0]] * receptive"),
    Mutation("receptive_field_ignored", "Layout.fans counts channels only (receptive field 1)",
             "initspec/spec/fans.py", "receptive = math.prod(d for i, d in enumerate(shape) if i not in axes)",
             "receptive = 1"),
    # --- statistics ---
    Mutation("holm_bonferroni", "holm() without the step-down: every p-value at alpha/m (Bonferroni)",
             "initspec/engine/stats.py", "if p_values[i] > alpha / (m - rank):", "if p_values[i] > alpha / m:"),
    Mutation("variance_se_normal_kurtosis", "the variance z-test uses a normal's standard error for every law",
             "initspec/engine/stats.py", "se = math.sqrt(max(mu4 - var**2 * (n - 3) / (n - 1), 0.0) / n)",
             "se = math.sqrt(2 * var**2 / n)"),
    Mutation("fan_law_extra_df", "the fan-law chi-square has one degree of freedom too many",
             "initspec/engine/stats.py", "stats.chi2.sf(chi2, len(z_values))",
             "stats.chi2.sf(chi2, len(z_values) + 1)"),
    Mutation("bounds_reached_doubled", "bounds_reached doubles the smaller tail (the earlier, conservative p)",
             "initspec/engine/stats.py", "return 1.0 - (1.0 - min(p_hi, p_lo)) ** 2",
             "return min(1.0, 2 * min(p_hi, p_lo))"),
    Mutation("shapes_share_seeds", "every shape and dtype of a run draws with the same seeds",
             "initspec/engine/runner.py", 'f"{seed}:{key}:{k}"', 'f"{seed}:{k}"'),
    Mutation("xpass_reported_as_xfail", "an xfail line turns a passing result into xfail, not xpass",
             "initspec/engine/runner.py", 'r.verdict = "xfail" if r.verdict in ("fail", "error") else "xpass"',
             'r.verdict = "xfail"'),
)

IGNORE = shutil.ignore_patterns(".git", ".tox", "__pycache__", "*.egg-info", "build", "dist", ".pytest_cache",
                                ".ruff_cache")


def _copy(dest: Path) -> None:
    for item in ROOT.iterdir():
        if item.name in (".git", ".tox", "build", "dist") or item.name.endswith(".egg-info"):
            continue
        if item.is_dir():
            shutil.copytree(item, dest / item.name, ignore=IGNORE)
        else:
            shutil.copy2(item, dest / item.name)


def _tests_from(tree: Path, rev: str) -> None:
    """Replace the copy's tests/ by tests/ as of git revision `rev`."""
    shutil.rmtree(tree / "tests")
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "tests"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)


def _apply(tree: Path, m: Mutation) -> bool:
    path = tree / m.path
    text = path.read_text()
    if text.count(m.old) != 1:
        return False
    path.write_text(text.replace(m.old, m.new))
    return True


# test ids of this suite only: the plugin tests run inner pytest sessions whose output is echoed
FAILED = re.compile(r"^(?:FAILED|ERROR) ((?:tests|conformance)/\S+)", re.M)


def _pytest(tree: Path, args: list[str], first: bool, timeout: float) -> tuple[int, list[str], str]:
    """(exit code, failing test ids, tail of the output) of one pytest command in the copy."""
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1", "OPENBLAS_NUM_THREADS": "1",
           "JAX_PLATFORMS": "cpu"}
    cmd = [sys.executable, "-m", "pytest", *args, "-q", "-p", "no:cacheprovider", "-rfE", *(["-x"] if first else [])]
    try:
        proc = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return -1, ["(timeout)"], ""
    out = proc.stdout + proc.stderr
    return proc.returncode, sorted({m.group(1) for m in FAILED.finditer(out)}), "\n".join(out.splitlines()[-3:])


def run_one(m: Mutation | None, tests: list[str], first: bool, timeout: float, tests_from: str | None = None) -> dict:
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="initspec-mutant-") as tmp:
        tree = Path(tmp)
        _copy(tree)
        if tests_from:
            _tests_from(tree, tests_from)
        if m is not None and not _apply(tree, m):
            return {"name": m.name, "why": m.why, "file": m.path, "applied": False, "caught": None,
                    "stage": None, "failed_tests": [], "seconds": 0.0}
        stage, failed, tail = "tests", [], ""
        code, failed, tail = _pytest(tree, tests, first, timeout)
        if code == 0:
            stage = "conformance"
            code, failed, tail = _pytest(tree, ["conformance", "--framework", "numpy"], first, timeout)
    caught = code != 0
    return {"name": m.name if m else "(none: the unmutated copy)", "why": m.why if m else "",
            "file": m.path if m else "", "applied": True, "caught": caught, "stage": stage if caught else None,
            "failed_tests": failed, "seconds": round(time.perf_counter() - start, 1),
            **({"output": tail} if m is None and caught else {})}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=None, help="comma-separated mutation names")
    ap.add_argument("--tests", nargs="+", default=["tests"], help="pytest arguments of the first command "
                    "(default: tests, as tox -e core)")
    ap.add_argument("--first", action="store_true", help="stop each run at its first failure (-x)")
    ap.add_argument("--timeout", type=float, default=1200.0, help="seconds per pytest command")
    ap.add_argument("--json", default=None, help="write the results here (e.g. bench/mutation.json)")
    ap.add_argument("--tests-from", default=None, metavar="REV",
                    help="run tests/ as of this git revision instead of the checkout's (before/after comparisons)")
    ap.add_argument("--list", action="store_true", help="list the mutations and exit")
    args = ap.parse_args(argv)
    chosen = list(MUTATIONS)
    if args.only:
        names = args.only.split(",")
        unknown = sorted(set(names) - {m.name for m in MUTATIONS})
        if unknown:
            print(f"mutation.py: error: unknown mutation(s) {', '.join(unknown)}", file=sys.stderr)
            return 2
        chosen = [m for m in MUTATIONS if m.name in names]
    if args.list:
        for m in MUTATIONS:
            print(f"{m.name:30} {m.path:30} {m.why}")
        return 0
    rows = [run_one(None, args.tests, args.first, args.timeout, args.tests_from)]
    print(f"baseline: {'FAILS' if rows[0]['caught'] else 'passes'} ({rows[0]['seconds']} s)", flush=True)
    if rows[0]["caught"]:
        print("the unmutated copy fails its tests; fix that first:\n" + rows[0].get("output", ""), file=sys.stderr)
        return 2
    for m in chosen:
        row = run_one(m, args.tests, args.first, args.timeout, args.tests_from)
        rows.append(row)
        verdict = "not applied" if not row["applied"] else "caught" if row["caught"] else "SURVIVED"
        print(f"{m.name:30} {verdict:12} {row['seconds']:7.1f} s  {', '.join(row['failed_tests'][:3])}"
              + (f" (+{len(row['failed_tests']) - 3})" if len(row["failed_tests"]) > 3 else ""), flush=True)
    mutants = rows[1:]
    caught = sum(bool(r["caught"]) for r in mutants)
    survived = [r["name"] for r in mutants if r["applied"] and not r["caught"]]
    stale = [r["name"] for r in mutants if not r["applied"]]
    print(f"\n{caught} of {len(mutants)} caught; survived: {', '.join(survived) or 'none'}"
          + (f"; not applied: {', '.join(stale)}" if stale else ""))
    print("\n| mutation | planted bug | caught | by (failing tests) |\n|---|---|---|---|")
    for r in mutants:
        verdict = "not applied" if not r["applied"] else "yes" if r["caught"] else "**no**"
        by = ", ".join(f"`{t.split('::')[0].removeprefix('tests/')}`" for t in
                       sorted({t.split("::")[0] for t in r["failed_tests"]}))
        print(f"| `{r['name']}` | {r['why']} | {verdict} | {by} |")
    if args.json:
        doc = {"command": "python bench/mutation.py " + " ".join(argv if argv is not None else sys.argv[1:]),
               "python": platform.python_version(), "first_failure_only": args.first, "tests": args.tests,
               "tests_from": args.tests_from,
               "caught": caught, "total": len(mutants), "survived": survived, "not_applied": stale,
               "baseline_seconds": rows[0]["seconds"], "results": mutants}
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n")
    return 1 if survived or stale else 0


if __name__ == "__main__":
    sys.exit(main())
