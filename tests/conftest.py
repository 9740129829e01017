import sys
from pathlib import Path

# ml_dtypes is loaded before any in-process pytester run, whose sys.modules snapshot would otherwise
# drop it, and a re-import fails ("bfloat16 appears already registered")
import ml_dtypes  # noqa: F401
import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def run_cli(capsys, monkeypatch):
    """Run the CLI in-process: returns (exit code, stdout, stderr).

    The command sets process-wide JAX defaults for its own process (cli.main); in-process they
    would outlive the call, so they are pinned to this process's values (fast compiles off)."""
    import os

    from initspec.cli import main

    monkeypatch.setenv("INITSPEC_JAX_FAST_COMPILE", os.environ.get("INITSPEC_JAX_FAST_COMPILE", "0"))

    def run(*args: str) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as exc:
            main(list(args))
        out = capsys.readouterr()
        return exc.value.code, out.out, out.err

    return run


@pytest.fixture
def python() -> str:
    return sys.executable


@pytest.fixture
def claims_are_held(tmp_path, run_cli):
    """check(wrong, right, n): a manifest with a wrong claim exits 1 with all n results failed,
    the same manifest with the true claim exits 0."""

    def check(wrong: str, right: str, n: int) -> None:
        __tracebackhide__ = True
        for name, body, expected in (("wrong", wrong, 1), ("right", right, 0)):
            path = tmp_path / f"{name}.toml"
            path.write_text(body)
            code, out, _ = run_cli("check", "--manifest", str(path), "--quiet")
            assert code == expected, out
            if expected == 1:
                assert f"0 passed, {n} failed" in out

    return check


@pytest.fixture(scope="module")
def paths_compared():
    """``compare(framework, ids, path)``: the same entries drawn batched (seed 0) and eager (seed 1).

    Each entry is cut to its first two shapes, in float32 and bfloat16 (a compiled 16-bit path is
    where rounding could differ).  Asserts that every continuous batched result took ``path``
    (a comparison of eager with eager would prove nothing) and returns
    :func:`initspec.engine.compare.compare_paths`'s rows.  Power: each result holds the run's
    default sample (sized for a 1% std error at the run's alpha), so the two-sample variance test,
    whose SE is √2 times the one-sample one, catches a ~1.5% std difference; the KS on the kept
    32,768 values a side catches a CDF distance of ~0.024 (uniform vs normal of one variance is 0.06).
    """
    import dataclasses

    from initspec.engine.compare import compare_paths
    from initspec.engine.runner import run
    from initspec.frameworks.manifest import load_manifest, manifest_path

    def compare(framework: str, ids: tuple[str, ...], path: str) -> list[dict]:
        entries = [dataclasses.replace(e, cases=e.cases[:2], dtypes=[d for d in ("float32", "bfloat16")
                                                                     if d in e.dtypes])
                   for e in load_manifest(manifest_path(framework)).entries if e.id in ids]
        assert len(entries) == len(ids), sorted(set(ids) - {e.id for e in entries})
        batched = run(entries, seed=0, framework=framework)
        eager = run(entries, seed=1, framework=framework, batched=False)
        continuous = [r for r in batched if r.evidence is not None]
        assert continuous and all(r.path == path for r in continuous), {(r.id, r.path, r.path_fallback)
                                                                         for r in continuous}
        assert all(r.path == "eager" for r in eager)
        rows = compare_paths(batched, eager)
        assert len(rows) == len(continuous)
        return rows

    return compare
