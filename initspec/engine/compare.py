"""Compare initializers across frameworks: ``initspec diff`` and ``initspec matrix``.

Each side of a diff is sampled in its own process (``python -m initspec sample ...``), so two
frameworks (or two Keras backends) never share one interpreter.  Shapes are mapped between
layouts: torch ``(out, in, *k)`` <-> tf ``(*k, in, out)``.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from initspec.errors import InputError
from initspec.frameworks.manifest import Case, Entry, load_manifest, manifest_path

#: kurtosis mu4/var² of the families a sample may come from
FAMILIES = {"uniform": 1.8, "truncated normal (±2σ)": float(stats.truncnorm(-2, 2).stats(moments="k")) + 3,
            "normal": 3.0}


@dataclass(frozen=True)
class Side:
    """One side of a diff: ``FRAMEWORK[@BACKEND]:ENTRY_ID``."""

    framework: str
    backend: str | None
    entry_id: str

    @property
    def label(self) -> str:
        return f"{self.framework}{'@' + self.backend if self.backend else ''}:{self.entry_id}"


def parse_side(text: str) -> Side:
    fw, sep, entry = text.partition(":")
    if not sep or not fw or not entry:
        raise InputError(f"{text!r}: expected FRAMEWORK:ENTRY_ID (e.g. torch:xavier_normal_, keras@jax:GlorotNormal)")
    fw, at, backend = fw.partition("@")
    if at:
        from initspec.frameworks.keras_backends import BACKENDS

        if fw != "keras":  # only Keras has backends; numpy@jax would silently run numpy
            raise InputError(f"{text[:80]!r}: @{backend[:20]} names a Keras backend and applies to keras only, "
                             f"not to {fw[:20]!r}")
        if backend not in BACKENDS:
            raise InputError(f"{text[:80]!r}: unknown Keras backend {backend[:20]!r}: use one of {', '.join(BACKENDS)}")
    return Side(fw, backend or None, entry)


def find_entry(framework: str, entry_id: str) -> Entry:
    manifest = load_manifest(manifest_path(framework))
    for e in manifest.entries:
        if e.id == entry_id:
            return e
    import difflib

    hits = difflib.get_close_matches(entry_id, [e.id for e in manifest.entries], n=3, cutoff=0.4)
    hint = f" (did you mean {', '.join(hits)}?)" if hits else ""
    raise InputError(f"{framework} has no entry {entry_id!r}{hint}")


def convert_shape(shape: tuple[int, ...], src: str, dst: str) -> tuple[int, ...]:
    """Map a weight shape between layouts: torch (out, in, *k) <-> tf/jax (*k, in, out)."""
    if src == dst or len(shape) < 2 or {src, dst} <= {"tf", "jax"}:
        return shape
    if src == "torch":
        return (*shape[2:], shape[1], shape[0])
    return (shape[-1], shape[-2], *shape[:-2])


def pair_cases(a: Entry, b: Entry, shape: tuple[int, ...] | None) -> tuple[Case, Case]:
    """Cases of the two entries that describe the same weight (same fans)."""
    a_free = all(not c.args and not c.kwargs and c.fan_in is None for c in a.cases)
    b_free = all(not c.args and not c.kwargs and c.fan_in is None for c in b.cases)
    if a_free and b_free:
        sa = shape or next((c.shape for c in a.cases if len(c.shape) == 2), a.cases[0].shape)
        return Case(sa), Case(convert_shape(sa, a.layout.name, b.layout.name))
    if a_free or b_free:
        fixed, free = (b, a) if a_free else (a, b)
        cases = [c for c in fixed.cases if shape is None or
                 convert_shape(shape, a.layout.name, fixed.layout.name) == c.shape] or fixed.cases
        c = cases[0]
        other = Case(convert_shape(c.shape, fixed.layout.name, free.layout.name))
        return (other, c) if a_free else (c, other)
    for ca in a.cases:
        for cb in b.cases:
            if ca.fans(a.layout) == cb.fans(b.layout) and len(ca.shape) == len(cb.shape):
                return ca, cb
    raise InputError(f"{a.id} and {b.id} have no case with the same fans; compare initializers with free shapes")


def _sample_in_subprocess(side: Side, case: Case, dtype: str, n: int, seed: int) -> tuple[np.ndarray, dict]:
    from initspec.frameworks.keras_backends import interpreter

    env = dict(os.environ)
    python = sys.executable
    if side.backend:  # as `check --backend B`: B's interpreter ($INITSPEC_PYTHON_<B>), B selected
        env["KERAS_BACKEND"] = side.backend
        python = interpreter(side.backend)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "sample.npy"
        spec = json.dumps({"shape": list(case.shape), "args": list(case.args), "kwargs": case.kwargs,
                           "fan_in": case.fan_in, "fan_out": case.fan_out, "param": case.param})
        cmd = [python, "-m", "initspec", "sample", side.framework, side.entry_id, "--case", spec,
               "--dtype", dtype, "--n", str(n), "--seed", str(seed), "--out", str(out),
               *(["--backend", side.backend] if side.backend else [])]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            msg = (proc.stderr.strip().splitlines() or ["(no message)"])[-1]
            raise InputError(f"sampling {side.label} failed: {msg}")
        meta = json.loads(proc.stdout.strip().splitlines()[-1])
        if side.backend and meta.get("backend") != side.backend:  # never a diff of the wrong backend
            raise InputError(f"sampling {side.label} ran on the {meta.get('backend')} backend, not {side.backend}")
        return np.load(out), meta


def draw_sample(framework: str, entry_id: str, case: Case, dtype: str, n: int, seed: int) -> tuple[np.ndarray, dict]:
    """Draw about n values of one entry at one case (in this process)."""
    from initspec.engine.runner import _Prepared
    from initspec.frameworks import binding_for

    entry = find_entry(framework, entry_id)
    binding = binding_for(entry.convention, convention=True)
    prepared = _Prepared({})
    draw = prepared.get(entry)
    if draw is None:
        raise InputError(prepared.errors[entry.id])
    chunks, have, k = [], 0, 0
    while have < n and k < 10_000:
        x = np.asarray(draw(case, dtype, seed + k), dtype=np.float64).ravel()
        chunks.append(x)
        have += x.size
        k += 1
    fan_in, fan_out = case.fans(entry.layout)
    meta = {"label": f"{framework}:{entry_id}", "claims": entry.claims, "shape": list(case.shape),
            "layout": entry.layout.name, "fan_in": fan_in, "fan_out": fan_out, "version": binding.version(),
            "draws": k}
    if binding.FRAMEWORK == "keras":
        meta["backend"] = binding.backend()
    return np.concatenate(chunks)[:max(n, 1)] if have >= n else np.concatenate(chunks), meta


def _moments(x: np.ndarray) -> dict[str, float]:
    m = float(x.mean())
    d = x - m
    var = float((d**2).mean())
    kurt = float((d**4).mean() / var**2) if var > 0 else math.nan
    return {"n": x.size, "mean": m, "var": var, "kurtosis": kurt, "min": float(x.min()), "max": float(x.max())}


def family(kurtosis: float) -> str:
    """The family whose kurtosis is nearest."""
    return min(FAMILIES, key=lambda f: abs(FAMILIES[f] - kurtosis))


def compare(a: np.ndarray, b: np.ndarray, alpha: float = 1e-4) -> dict[str, Any]:
    """Two-sample comparison: KS, variance ratio (z from each sample's kurtosis), means."""
    from initspec.engine.stats import holm

    ma, mb = _moments(a), _moments(b)
    if ma["var"] == 0 or mb["var"] == 0:  # a constant side: no variance ratio or z exists; compare exactly
        same = ma["var"] == mb["var"] == 0 and ma["mean"] == mb["mean"]
        ps = {"ks": float(same), "variance": float(ma["var"] == mb["var"]), "mean": float(ma["mean"] == mb["mean"])}
        ratio = mb["var"] / ma["var"] if ma["var"] else (1.0 if mb["var"] == 0 else math.inf)
        return {"a": ma, "b": mb, "ks_statistic": 0.0 if same else 1.0, "var_ratio": ratio, "z_var": 0.0,
                "z_mean": 0.0, "p": ps, "rejected": {k: v == 0.0 for k, v in ps.items()}, "same": same}
    ks = stats.ks_2samp(a, b)
    # Var(s²) ≈ (k - 1) var² / n for each sample; the log ratio's SE by the delta method
    se_log = math.sqrt((ma["kurtosis"] - 1) / ma["n"] + (mb["kurtosis"] - 1) / mb["n"])
    ratio = mb["var"] / ma["var"]
    z_var = math.log(ratio) / se_log
    z_mean = (mb["mean"] - ma["mean"]) / math.sqrt(ma["var"] / ma["n"] + mb["var"] / mb["n"])
    ps = {"ks": float(ks.pvalue), "variance": float(2 * stats.norm.sf(abs(z_var))),
          "mean": float(2 * stats.norm.sf(abs(z_mean)))}
    rejected = dict(zip(ps, holm(list(ps.values()), alpha), strict=True))
    return {"a": ma, "b": mb, "ks_statistic": float(ks.statistic), "var_ratio": ratio, "z_var": z_var,
            "z_mean": z_mean, "p": ps, "rejected": rejected, "same": not any(rejected.values())}


def explain(result: dict[str, Any], label_a: str, label_b: str) -> list[str]:
    """Human sentences: same distribution, or how the two differ."""
    a, b = result["a"], result["b"]
    fa, fb = family(a["kurtosis"]), family(b["kurtosis"])
    if result["same"] and a["var"] == 0:
        return [f"same distribution: both are the constant {a['mean']:g}"]
    if result["same"]:
        return [f"same distribution: variance ratio {result['var_ratio']:.4f}, KS D {result['ks_statistic']:.4f} "
                f"(p {result['p']['ks']:.2g}); both look {fa} (kurtosis {a['kurtosis']:.2f} vs {b['kurtosis']:.2f})"]
    lines = ["different distributions:"]
    if result["rejected"]["variance"]:
        lines.append(f"  variance differs: {label_b} / {label_a} = {result['var_ratio']:.4g} "
                     f"(z {result['z_var']:.1f})")
    else:
        lines.append(f"  same variance (ratio {result['var_ratio']:.4f}, z {result['z_var']:.1f})")
    if fa != fb:
        lines.append(f"  shape differs: {label_a} looks {fa} (kurtosis {a['kurtosis']:.2f}), "
                     f"{label_b} looks {fb} (kurtosis {b['kurtosis']:.2f})")
    if result["rejected"]["ks"]:
        lines.append(f"  KS D = {result['ks_statistic']:.4f} (p {result['p']['ks']:.2g})")
    if result["rejected"]["mean"]:
        lines.append(f"  means differ: {a['mean']:.4g} vs {b['mean']:.4g} (z {result['z_mean']:.1f})")
    lines.append(f"  range {label_a} [{a['min']:.4g}, {a['max']:.4g}] vs {label_b} [{b['min']:.4g}, {b['max']:.4g}]")
    return lines


def diff(side_a: str, side_b: str, *, shape: tuple[int, ...] | None = None, dtype: str = "float32",
         n: int = 200_000, seed: int = 0, alpha: float = 1e-4) -> dict[str, Any]:
    """Sample both sides (each in its own process) and compare them."""
    a, b = parse_side(side_a), parse_side(side_b)
    ea, eb = find_entry(a.framework, a.entry_id), find_entry(b.framework, b.entry_id)
    ca, cb = pair_cases(ea, eb, shape)
    xa, meta_a = _sample_in_subprocess(a, ca, dtype, n, seed)
    xb, meta_b = _sample_in_subprocess(b, cb, dtype, n, seed + 1_000_003)  # never the same stream as A
    result = compare(xa, xb, alpha)
    result.update({"side_a": {**meta_a, "label": a.label}, "side_b": {**meta_b, "label": b.label},
                   "dtype": dtype, "seed": seed, "alpha": alpha})
    result["explanation"] = explain(result, a.label, b.label)
    return result


# -- matrix ------------------------------------------------------------------------------

CANONICAL = ("glorot_normal", "glorot_truncated_normal", "glorot_uniform", "he_normal", "he_truncated_normal",
             "he_uniform", "lecun_normal", "lecun_truncated_normal", "lecun_uniform", "torch_linear_default",
             "orthogonal", "identity", "zeros", "ones")


def _key(scheme: Any) -> tuple:
    p = dict(scheme.params)
    if p.get("distribution") in ("normal", "uniform"):
        for k in ("lower", "upper", "truncation_correction"):
            p.pop(k, None)
    return scheme.kind, tuple(sorted((k, round(v, 9) if isinstance(v, float) else v) for k, v in p.items()))


def matrix(frameworks: list[str]) -> tuple[list[str], list[list[str]]]:
    """Rows: canonical schemes; columns: frameworks; cells: the entries claiming each scheme."""
    from initspec.spec.schemes import resolve

    canon = {_key(resolve(name)): name for name in CANONICAL}
    cells: dict[str, dict[str, list[str]]] = {name: {fw: [] for fw in frameworks} for name in CANONICAL}
    other: dict[str, list[str]] = {fw: [] for fw in frameworks}
    for fw in frameworks:
        for e in load_manifest(manifest_path(fw)).entries:
            name = canon.get(_key(resolve(e.claims)))
            (cells[name][fw] if name else other[fw]).append(e.id)
    rows = [[name, *(", ".join(cells[name][fw]) or "—" for fw in frameworks)] for name in CANONICAL]
    rows.append(["(other schemes)", *(str(len(other[fw])) + " entries" for fw in frameworks)])
    return ["scheme", *frameworks], rows


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(out) + "\n"


def compare_paths(batched: list[Any], eager: list[Any], alpha: float = 1e-3) -> list[dict[str, Any]]:
    """Result by result, do the batched and the eager runs of one manifest draw the same law?

    ``batched`` and ``eager`` are runner results of the same entries (different seeds: the two
    samples must be independent).  Per continuous result: two-sample KS on the kept samples and
    z-tests of the variance and the mean from the streamed moments, the standard errors from the
    reference's own moments (as for Keras backends); Holm over every test of the comparison.
    Each row: ``id``, ``paths`` (batched, eager), ``tests`` {name: (statistic, p)}, ``same``.
    """
    from initspec.engine.backends import _pair_tests
    from initspec.engine.stats import holm

    rows = []
    others = {r.id: r for r in eager}
    for a in batched:
        b = others.get(a.id)
        ev_a, ev_b = getattr(a, "evidence", None), getattr(b, "evidence", None)
        if b is None or ev_a is None or ev_b is None or ev_a.sample is None or ev_b.sample is None:
            continue
        tests = {}
        for t in _pair_tests(a.to_dict(), b.to_dict(), ev_a.reference):
            tests[t["test"]] = (t["z"], t["p_value"])
        ks = stats.ks_2samp(ev_a.sample, ev_b.sample)
        tests["ks"] = (float(ks.statistic), float(ks.pvalue))
        rows.append({"id": a.id, "paths": (a.path, b.path), "tests": tests})
    flat = [(row, name) for row in rows for name in row["tests"]]
    rejected = holm([row["tests"][name][1] for row, name in flat], alpha)
    for row in rows:
        row["same"] = True
    for (row, _), rej in zip(flat, rejected, strict=True):
        row["same"] = row["same"] and not rej
    return rows
