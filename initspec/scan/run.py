"""One scan: a library's architectures listed in this process, each resolved, audited (and held
to its lockfile, or written one) in a worker process, one row each."""

from __future__ import annotations

import fnmatch
import time
from pathlib import Path
from typing import Any

from initspec.errors import InputError
from initspec.scan.libraries import CannotBuild, first_line, library
from initspec.scan.pool import run_tasks
from initspec.scan.report import ScanReport

#: seconds one architecture may take (resolve, every build, the audit) before its worker is killed
DEFAULT_TIMEOUT = 300.0
#: parameters an architecture may have after shrinking (larger ones wait for the traced audit)
DEFAULT_MAX_PARAMS = 20_000_000


def _row(lib: str, name: str, status: str, reason: str = "", **extra: Any) -> dict[str, Any]:
    return {"library": lib, "name": name, "status": status, "reason": reason, "target": extra.pop("target", None),
            "groups": 0, "params": 0, "findings": [], "changes": [], "notes": [], "seconds": 0.0, **extra}


def scan_one(task: dict[str, Any]) -> dict[str, Any]:
    """Resolve, audit and compare one architecture (runs in a worker; never raises)."""
    import gc

    t0, c0 = time.perf_counter(), time.process_time()
    # what the worker holds now (the library's modules) is never garbage: frozen, the audit's gc.collect()
    # between instances walks only the new objects (180 ms -> a few ms under torch + transformers).
    # The last architecture's garbage is collected first, so none of it is frozen for good.
    gc.collect()
    gc.freeze()
    lib_name, name, opt = task["library"], task["name"], task["options"]
    try:
        row = _scan_one(lib_name, name, opt)
    except Exception as e:  # noqa: BLE001 - whatever a library does, the architecture gets one line
        row = _row(lib_name, name, "could not build", first_line(e))
    row["seconds"] = round(time.perf_counter() - t0, 3)
    row["cpu_seconds"] = round(time.process_time() - c0, 3)  # the machine may be shared: both are kept
    return row


def _audit(target: Any, spec: Any, opt: dict[str, Any], seed: int) -> Any:
    from initspec.audit.run import audit

    return audit(target, spec=spec, seed=seed, max_seeds=opt["max_seeds"], alpha=opt["alpha"])


def _scan_one(lib_name: str, name: str, opt: dict[str, Any]) -> dict[str, Any]:
    from initspec.audit.spec import lock_lines, write_spec
    from initspec.audit.targets import BuildError, parse_audit_target
    from initspec.scan.compare import CONFIRM_SEED_OFFSET, changes, confirmed, load_lock, lock_name

    lib = library(lib_name)
    try:
        res = lib.resolve(name, opt)
    except CannotBuild as e:
        return _row(lib_name, name, "could not build", str(e))
    lock_path = Path(opt["specs"]) / lock_name(name) if opt.get("specs") else None
    lock = load_lock(lock_path) if lock_path is not None and lock_path.is_file() else None
    try:
        target = res.target or parse_audit_target(res.text)
        rep = _audit(target, lock, opt, opt["seed"])
    except (BuildError, InputError) as e:
        return _row(lib_name, name, "could not build", str(e), target=res.text, notes=res.notes)
    row = _row(lib_name, name, "ok", target=res.text, notes=list(res.notes), groups=len(rep.groups),
               params=sum(len(g.members) for g in rep.groups))
    row["findings"] = [{"id": f.id, "message": f.message, "severe": f.severe} for f in rep.findings]
    severe = [f for f in rep.findings if f.severe]
    if lock_path is not None and lock is None:
        row["status"], row["reason"] = "new", f"no lockfile {lock_name(name)} in {opt['specs']}"
    if lock is not None:
        found = changes(rep, lock)
        if any(c["kind"] == "changed" for c in found):  # confirmed on other seeds (compare.py)
            again = load_lock(lock_path)
            found = confirmed(found, changes(_audit(target, again, opt, opt["seed"] + CONFIRM_SEED_OFFSET), again))
        unstable = [c for c in found if c["kind"] == "unstable"]
        found = [c for c in found if c["kind"] != "unstable"]
        row["notes"] += [f"{c['group']}: the lockfile line {c['old']} fails on this release, and the same line "
                         "is written here (it does not hold its own model; not a change)" for c in unstable]
        row["changes"] = found
        if found:
            row["status"] = "changed"
            c = found[0]
            row["reason"] = _change_line(c) + (f" (+{len(found) - 1} more)" if len(found) > 1 else "")
    if severe and row["status"] in ("ok", "new"):
        row["status"], row["reason"] = "failed", f"{severe[0].id}: {severe[0].message}"
    if opt.get("write_specs"):
        out = Path(opt["write_specs"]) / lock_name(name)
        write_spec(out, lock_lines(rep), rep.tied, f"initspec scan {lib_name}: {name} = {res.text} "
                   f"({lib_name} {lib.version()}, seeds {rep.seeds[0]}..{rep.seeds[-1]})")
        row["lockfile"] = str(out)
    return row


def _change_line(c: dict[str, Any]) -> str:
    if c["kind"] == "missing":
        return f"{c['group']}: missing (was {c['old']}; renamed or removed)"
    if c["kind"] == "new":
        return f"{c['group']}: new group ({c['new']})"
    diag = f" [{c['diagnosis']}]" if c["diagnosis"] else ""
    return f"{c['group']}: {c['old']} -> {c['new']}{diag}"


def _lost(task: tuple[str, Any], reason: str) -> dict[str, Any]:
    arg = task[1]
    return _row(arg["library"], arg["name"], "could not build", reason)


def select(names: list[str], only: str | None) -> list[str]:
    """The names matching any of the comma-separated globs (all without ``--only``)."""
    if not only:
        return names
    globs = [g.strip() for g in only.split(",") if g.strip()]
    if not globs:
        raise InputError("--only: give at least one glob, e.g. --only 'llama*,gpt2'")
    return [n for n in names if any(fnmatch.fnmatchcase(n, g) for g in globs)]


def scan(lib_name: str, *, only: str | None = None, workers: int = 1, timeout: float | None = DEFAULT_TIMEOUT,
         max_params: int = DEFAULT_MAX_PARAMS, seed: int = 0, max_seeds: int = 8, alpha: float = 1e-4,
         write_specs: str | None = None, specs: str | None = None, progress: Any = None,
         env: dict[str, str] | None = None, on_row: Any = None) -> ScanReport:
    """Scan every architecture of a library (see the package docstring)."""
    t0 = time.perf_counter()
    lib = library(lib_name)
    if specs is not None and not Path(specs).is_dir():
        raise InputError(f"--specs {specs!r}: no such folder")
    if write_specs is not None:
        Path(write_specs).mkdir(parents=True, exist_ok=True)
    options = {"only": only, "max_params": max_params, "seed": seed, "max_seeds": max_seeds, "alpha": alpha,
               "write_specs": write_specs, "specs": specs, "workers": workers, "timeout": timeout}
    try:
        version = lib.version()
    except ImportError as e:
        raise InputError(f"scan {lib_name}: the library does not import ({first_line(e)})") from None

    def pool(fn: str, args: list[Any], what: str) -> list[dict[str, Any]]:
        return run_tasks([(fn, a) for a in args], workers=workers, timeout=timeout, progress=progress, env=env,
                         on_lost=lambda t, why: {"error": why}, label=lambda t: f"{what} {t[1]}")

    try:
        names = lib.architectures(options, pool) if getattr(lib, "ENUMERATES_IN_WORKERS", False) \
            else lib.architectures(options)
    except Exception as e:  # noqa: BLE001 - a library that cannot list its models is a broken install
        raise InputError(f"scan {lib_name}: listing the architectures of {lib_name} {version} raised "
                         f"{first_line(e)}") from None
    notes = list(options.pop("notes", []))
    chosen = select(names, only)
    if only and not chosen:
        raise InputError(f"--only {only!r} matches none of the {len(names)} architectures of {lib_name}")
    tasks = [("initspec.scan.run.scan_one", {"library": lib_name, "name": n, "options": options}) for n in chosen]
    rows = run_tasks(tasks, workers=workers, timeout=timeout, on_lost=_lost, progress=progress, env=env,
                     label=lambda t: t[1]["name"], on_result=on_row)
    if specs is not None:  # lockfiles of architectures this release no longer has
        have = set(names)
        for p in sorted(Path(specs).glob("*.toml")):
            if p.stem not in have and (not only or select([p.stem], only)):
                rows.append(_row(lib_name, p.stem, "removed", f"{p.name} has no architecture in {lib_name} {version}"))
    return ScanReport(lib_name, version, rows, notes=notes, seconds=time.perf_counter() - t0,
                      settings={k: v for k, v in options.items() if k not in ("notes",)})
