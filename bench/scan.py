"""The full scans of a library, timed: ``initspec scan LIB -j 2 --json`` with the counts, the wall and
CPU seconds, and the could-not-build reasons grouped; appended to bench/scan_results.json.  Run in
the env that has the library (torch: hf; timm: timm; keras-jax: keras_hub):

    python bench/scan.py hf [extra scan options...]
"""

from __future__ import annotations

import collections
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _reason_kind(reason: str) -> str:
    if "over --max-params" in reason:
        return "over --max-params after shrinking"
    if reason.startswith("timed out"):
        return "timed out"
    if "worker process died" in reason:
        return "worker died"
    if "needs '" in reason:
        return "a required argument no rule gives"
    if "requires the" in reason and "library" in reason:
        return "an optional dependency is missing"
    return re.split(r"[:(]", reason, maxsplit=1)[0].strip() or "other"


def main(library: str, *extra: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "scan.json"
        t0 = time.perf_counter()
        p = subprocess.run([sys.executable, "-m", "initspec", "scan", library, "-j", "2", "--no-progress",
                            "--json", str(path), *extra], capture_output=True, text=True)
        wall = time.perf_counter() - t0
        doc = json.loads(path.read_text())
    rows = doc["rows"]
    nobuild = collections.Counter(_reason_kind(r["reason"]) for r in rows if r["status"] == "could not build")
    result = {"library": library, "version": doc["library_version"], "options": list(extra), "exit": p.returncode,
              "wall_seconds": round(wall, 1), "summary": doc["summary"], "notes": doc["notes"],
              "cpu_seconds_in_workers": round(sum(r.get("cpu_seconds", 0.0) for r in rows), 1),
              "could_not_build_by_reason": dict(nobuild.most_common()),
              "failed_by_finding": dict(collections.Counter(r["reason"].split(":")[0] for r in rows
                                                            if r["status"] == "failed").most_common()),
              "rows": [{k: r.get(k) for k in ("name", "status", "reason", "seconds", "cpu_seconds")} for r in rows],
              "load_average": os.getloadavg()}
    out = Path(__file__).with_name("scan_results.json")
    runs = json.loads(out.read_text()) if out.exists() else []
    out.write_text(json.dumps([*runs, result], indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main(*sys.argv[1:])
