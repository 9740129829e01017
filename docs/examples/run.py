"""Run the manual's examples and keep each transcript next to its script.

``docs/examples/NAME.sh`` is a list of commands, one a line; ``NAME.out`` is what they printed,
each command shown as ``$ command`` above its output (stdout and stderr together, as a terminal
shows them).  The pages include the ``.out`` files (``--8<--``), and ``tests/test_docs_examples.py``
runs every script again and fails when its output differs from the stored one beyond NORMALIZE.

A script's header comments declare

    # env: TOXENV                       the tox env that re-runs it (one with what it imports)
    # cwd: PATH | tmp                   where it runs: a folder of the checkout (default: its root),
                                        or a fresh empty folder
    # normalize: REGEX => REPLACEMENT   more to normalize than NORMALIZE (repeatable)
    # drop: REGEX                       leave out the lines it matches (a framework's log noise;
                                        repeatable)

A line that starts with ``@`` runs without being shown (set-up).  ``initspec`` in a script is this
checkout's command line under the running interpreter, so ``/path/to/env/bin/python
docs/examples/run.py NAME`` regenerates ``NAME.out`` with that env's frameworks.

    python docs/examples/run.py [--check] [NAME ...]    write (or with --check, compare) transcripts
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent

#: What may differ between two faithful runs, and so is compared as a placeholder.  Each pattern is
#: applied to both the stored and the new transcript; nothing else may differ.
NORMALIZE: list[tuple[str, str, str]] = [
    # the folder a run happened in (a temporary folder, a checkout elsewhere)
    ("paths", r"/tmp/[\w./-]*|" + re.escape(str(ROOT)), "<path>"),
    # durations: the only numbers that change between runs with the same seeds (any value passes)
    ("timings", r"\b\d+(?:\.\d+)?(?:e[+-]?\d+)? ?(?:s|ms|µs|min)\b(?![\w/])", "<time>"),
    # versions of the frameworks and of initspec (constraints.txt pins what CI runs)
    ("versions", r"\b\d+\.\d+\.\d+(?:[.+-]?(?:post|dev|rc|cpu|a|b)\d*)*(?:\+cpu)?\b", "<version>"),
]


@dataclass
class Example:
    """One script: its name, the tox env that re-runs it, where it runs, its extra normalizations."""

    name: str
    script: Path
    env: str
    cwd: str = ""
    normalize: list[tuple[str, str]] = field(default_factory=list)
    drop: list[str] = field(default_factory=list)
    commands: list[tuple[bool, str]] = field(default_factory=list)  # (shown, line)

    @property
    def out(self) -> Path:
        return self.script.with_suffix(".out")


def parse(script: Path) -> Example:
    """Read a script's header and commands (ValueError on a script without ``# env:``)."""
    env, cwd, extra, drop, commands = None, "", [], [], []
    for line in script.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#!"):
            continue
        if stripped.startswith("#"):
            key, _, value = stripped[1:].strip().partition(":")
            if key == "env":
                env = value.strip()
            elif key == "cwd":
                cwd = value.strip()
            elif key == "normalize":
                pattern, _, repl = value.strip().partition(" => ")
                extra.append((pattern, repl))
            elif key == "drop":
                drop.append(value.strip())
            continue
        commands.append((not stripped.startswith("@"), stripped.lstrip("@").strip()))
    if not env:
        raise ValueError(f"{script}: no '# env: TOXENV' header")
    return Example(script.stem, script, env, cwd, extra, drop, commands)


def discover() -> list[Example]:
    return [parse(p) for p in sorted(HERE.glob("*.sh"))]


def _bash(example: Example) -> str:
    """The script as bash runs it: each shown command echoed as ``$ command`` first."""
    path = 'PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$INITSPEC_ROOT" "$INITSPEC_PYTHON"'
    lines = [f'initspec() {{ {path} -m initspec "$@"; }}', f'pytest() {{ {path} -m pytest "$@"; }}', "exec 2>&1"]
    for shown, line in example.commands:
        if shown:
            lines.append(f"printf '%s\\n' {shlex.quote('$ ' + line)}")
        lines.append(line)
    return "\n".join(lines) + "\n"


def run(example: Example, timeout: float = 900) -> str:
    """Run one example; its transcript."""
    env = dict(os.environ, INITSPEC_ROOT=str(ROOT), INITSPEC_PYTHON=sys.executable, NO_COLOR="1", COLUMNS="120",
               OPENBLAS_NUM_THREADS="1", JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="2", PYTHONHASHSEED="0")
    env.pop("FORCE_COLOR", None)
    with tempfile.TemporaryDirectory(prefix="initspec-example-") as tmp:
        cwd = tmp if example.cwd == "tmp" else ROOT / example.cwd
        proc = subprocess.run(["bash", "-c", _bash(example)], cwd=cwd, env=env, stdout=subprocess.PIPE,
                              stdin=subprocess.DEVNULL, text=True, timeout=timeout)
    lines = [line.rstrip() for line in proc.stdout.splitlines()]
    return "\n".join(ln for ln in lines if not any(re.search(d, ln) for d in example.drop)) + "\n"


def normalize(example: Example, text: str) -> str:
    for pattern, repl in example.normalize:
        text = re.sub(pattern, repl, text)
    for _, pattern, repl in NORMALIZE:
        text = re.sub(pattern, repl, text)
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help="examples to run (default: every one whose env is $INITSPEC_DOCS_ENV, "
                    "or all)")
    ap.add_argument("--check", action="store_true", help="compare with the stored transcripts instead of writing")
    args = ap.parse_args(argv)
    examples = discover()
    env = os.environ.get("INITSPEC_DOCS_ENV")
    chosen = [e for e in examples if e.name in args.names] if args.names else \
        [e for e in examples if env is None or e.env == env]
    unknown = set(args.names) - {e.name for e in examples}
    if unknown:
        print(f"no such example: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    bad = 0
    for e in chosen:
        text = run(e)
        if args.check:
            same = e.out.exists() and normalize(e, e.out.read_text()) == normalize(e, text)
            bad += not same
            print(f"{'same' if same else 'DIFFERS'}  {e.name}")
        else:
            e.out.write_text(text)
            print(f"wrote {e.out.relative_to(ROOT)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
