import sys
from pathlib import Path

# ml_dtypes is loaded before any in-process pytester run, whose sys.modules snapshot would otherwise
# drop it, and a re-import fails ("bfloat16 appears already registered")
import ml_dtypes  # noqa: F401
import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def run_cli(capsys):
    """Run the CLI in-process: returns (exit code, stdout, stderr)."""
    from initspec.cli import main

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
