"""False alarms of a lockfile re-drawn: written on seeds 0-7, checked on seeds 100-107, over every
model the tests build (issue 22; target 0).

    python bench/lockfile_false_alarms.py [--seeds 8] [--out bench/lockfile_false_alarms.json]
    python bench/lockfile_false_alarms.py --write-locks DIR      # the sweep's lockfiles (this transformers)
    /other/env/bin/python bench/lockfile_false_alarms.py --check-locks DIR   # ... checked on another release

Run it in each env whose framework it should cover (torch: the audit suite's torch models, the
transformers sweep and test_audit_hf's configs; keras-jax: test_audit_keras's model; flax:
test_audit_flax's models); each run replaces its framework's entry in the JSON and keeps the others.

A false alarm is a lockfile line whose group fails the re-draw (or a line with no match).  The
lockfile is written from what the audit identified, exactly as ``--write-spec`` writes it, read back
with the spec parser and checked with ``--strict``.  Models that fail their own audit by design (the
issue-10 bug models: a NaN, a parameter on the meta device, cloned blocks) are measured too, in a
separate list: their severe findings fail the re-draw again (that is not the lockfile's doing), and
their lines are counted the same way.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "audit")]


def torch_targets() -> tuple[list[Any], list[Any]]:
    """(correct models, models that fail their own audit by design) the torch env's tests build."""
    import hf_sweep_models
    import test_audit_hf
    import test_audit_truth
    import transformers

    transformers.logging.set_verbosity_error()
    good = list(test_audit_truth.SUITE) + [hf_sweep_models.target(t) for t in sorted(hf_sweep_models.SWEEP)]
    good += [test_audit_hf.GPT2, test_audit_hf.GPT2.replace("n_layer=4", "n_layer=8"),
             "hf:t5(num_layers=1, num_decoder_layers=1, d_model=128, d_ff=256, num_heads=4, d_kv=32, vocab_size=300)",
             "hf:bert(num_hidden_layers=1, hidden_size=32, num_attention_heads=2, intermediate_size=64, "
             "vocab_size=100)"]
    bad = [f"torch_models:tiny_gpt(bug={b!r})" for b in ("scaled_name", "ln_random", "head_var1", "padding_none",
                                                         "zero_forgotten", "meta", "nan",
                                                         "private_generator")]
    bad += ["torch_models:Cloned(bug=True)"]
    return good, bad


def keras_targets() -> tuple[list[Any], list[Any]]:
    import test_audit_keras as m

    from initspec.audit.targets import AuditTarget

    good = [AuditTarget("tiny('')", lambda: m.tiny(""))]
    bad = [AuditTarget(f"tiny({b!r})", lambda b=b: m.tiny(b)) for b in ("gamma,proj,head", "clone", "seed")]
    return good, bad


def flax_targets() -> tuple[list[Any], list[Any]]:
    import jax
    import test_audit_flax as m

    from initspec.audit.targets import AuditTarget

    def params(key):
        return {"w": jax.random.normal(key, (64, 128)) / 8, "b": jax.numpy.zeros(128)}

    good = [m.target(""), AuditTarget("params", params, "module", "jax")]
    bad = [m.target(b) for b in ("gamma,proj,head", "clone", "seed")]
    return good, bad


def measure(target: Any, seeds: int) -> dict[str, Any]:
    from initspec.audit.lockfile import lockfile_text
    from initspec.audit.run import audit
    from initspec.audit.spec import parse_spec
    from initspec.audit.targets import BuildError

    name = target if isinstance(target, str) else target.text
    t0 = time.perf_counter()
    try:
        rep = audit(target, seeds=seeds, seed=0)
    except BuildError as e:
        return {"target": name, "error": str(e)}
    text, n_lines = lockfile_text(rep, name)
    values = list(tomllib.loads(text)["params"].values())
    again = audit(target, seeds=seeds, seed=100, spec=parse_spec(tomllib.loads(text), "lockfile"), strict=True)
    # the bug itself, again (a NaN, a severe finding of the writing audit): not the lockfile's doing
    known = {p for f in rep.findings if f.severe for p in f.params}
    failed = [(g.name, g.result.diagnosis[0]["id"] if g.result and g.result.diagnosis else g.error)
              for g in again.groups if again.verdict(g) in ("fail", "error") and not set(g.members) & known]
    return {"target": name, "seconds": round(time.perf_counter() - t0, 2), "groups": len(rep.groups),
            "lines": n_lines, "unknown": sum(v.startswith("unknown") for v in values),
            "deterministic": sum(v.startswith("deterministic") for v in values),
            "with_rows": sum(";" in v for v in values), "own_exit": rep.exit_code, "redraw_exit": again.exit_code,
            "redraw_severe": sorted({f.id for f in again.findings if f.severe}),
            "false_alarms": [{"group": n, "diagnosis": d} for n, d in failed]
            + [{"group": m["glob"], "diagnosis": "missing"} for m in again.missing]}


def cross_release(write: str | None, check: str | None, seeds: int) -> dict[str, Any]:
    """The transformers sweep's lockfiles written on seeds 0.. with this env's transformers (``write``),
    or checked on seeds 100.. with this env's (``check``): what another release reports."""
    import hf_sweep_models
    import transformers

    from initspec.audit.lockfile import lockfile_text
    from initspec.audit.run import audit
    from initspec.audit.spec import parse_spec

    transformers.logging.set_verbosity_error()
    folder = Path(write or check)
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {}
    for t in sorted(hf_sweep_models.SWEEP):
        target = hf_sweep_models.target(t)
        if write:
            rep = audit(target, seeds=seeds)
            (folder / f"{t}.toml").write_text(lockfile_text(rep, target)[0])
            (folder / "transformers.txt").write_text(transformers.__version__ + "\n")
            out[t] = {"own_exit": rep.exit_code}
        else:
            spec = parse_spec(tomllib.loads((folder / f"{t}.toml").read_text()), f"{t}.toml")
            rep = audit(target, seeds=seeds, seed=100, spec=spec)
            out[t] = {"exit": rep.exit_code,
                      "failed": [{"group": g.name, "declared": g.rule.declared, "identified": g.identified,
                                  "diagnosis": g.result.diagnosis[0]["message"] if g.result.diagnosis else ""}
                                 for g in rep.groups if rep.verdict(g) in ("fail", "error")],
                      "missing": [m["glob"] for m in rep.missing],
                      "unchecked": [g.name for g in rep.groups if rep.verdict(g) == "unchecked"]}
        print(t, out[t], flush=True)
    return {"written_with": (folder / "transformers.txt").read_text().strip(),
            "checked_with": transformers.__version__ if check else None, "models": out}


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in rows if "error" not in r]
    lines = sum(r["lines"] for r in ok)
    alarms = sum(len(r["false_alarms"]) for r in ok)
    return {"models": len(ok), "models_with_a_false_alarm": sum(bool(r["false_alarms"]) for r in ok),
            "lines": lines, "false_alarm_lines": alarms, "false_alarm_rate_per_line": alarms / lines if lines else None,
            "unknown_lines": sum(r["unknown"] for r in ok), "deterministic_lines": sum(r["deterministic"] for r in ok),
            "lines_with_rows": sum(r["with_rows"] for r in ok), "seconds": round(sum(r["seconds"] for r in ok), 1),
            "not_built": [r["target"] for r in rows if "error" in r]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=8, help="instances per audit (seeds 0.. and 100..)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "lockfile_false_alarms.json"))
    ap.add_argument("--write-locks", help="write the transformers sweep's lockfiles into this folder")
    ap.add_argument("--check-locks", help="check the lockfiles of this folder (written by another release)")
    args = ap.parse_args()
    if args.write_locks or args.check_locks:
        res = cross_release(args.write_locks, args.check_locks, args.seeds)
        if args.check_locks:
            out = Path(args.out)
            doc = json.loads(out.read_text()) if out.exists() else {}
            doc["cross_release"] = {"command": "python bench/lockfile_false_alarms.py --write-locks DIR (one "
                                               "transformers), then --check-locks DIR (another)", **res}
            out.write_text(json.dumps(doc, indent=2) + "\n")
            print(f"wrote {out}")
        return
    import importlib.util

    frameworks = {"torch": torch_targets, "keras": keras_targets, "flax": flax_targets}
    present = [f for f in frameworks if importlib.util.find_spec(f) is not None
               and (f != "torch" or importlib.util.find_spec("transformers") is not None)]
    if "keras" in present and "flax" in present:
        present.remove("flax")  # one framework family per env run, like the tests
    out = Path(args.out)
    doc = json.loads(out.read_text()) if out.exists() else {}
    doc.update({"command": "python bench/lockfile_false_alarms.py", "written_on_seeds": f"0..{args.seeds - 1}",
                "checked_on_seeds": f"100..{100 + args.seeds - 1}", "python": platform.python_version()})
    doc.setdefault("frameworks", {})
    for fw in present[:1]:
        good, bad = frameworks[fw]()
        import initspec.audit.report as report

        entry: dict[str, Any] = {"version": None, "correct": [], "buggy": []}
        for kind, targets in (("correct", good), ("buggy", bad)):
            for t in targets:
                row = measure(t, args.seeds)
                entry[kind].append(row)
                print(f"{kind:8} {row['target'][:70]:70} {row.get('seconds', '-')}s lines {row.get('lines', '-')} "
                      f"unknown {row.get('unknown', '-')} false alarms {row.get('false_alarms', row.get('error'))}",
                      flush=True)
        entry["version"] = report.framework_version(fw)
        if fw == "torch":
            import transformers

            entry["transformers"] = transformers.__version__
        entry["summary"] = {kind: summarize(entry[kind]) for kind in ("correct", "buggy")}
        doc["frameworks"][fw] = entry
        print(json.dumps(entry["summary"], indent=2))
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
