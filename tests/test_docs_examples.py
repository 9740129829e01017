"""The manual's transcripts cannot drift: every example script under docs/examples/ runs again and
its output must equal the stored one, up to the declared normalizations (paths, durations, versions:
``docs/examples/run.py`` NORMALIZE).  Each example names the tox env that has what it imports; this
module runs the examples of the env in ``$INITSPEC_DOCS_ENV`` (tox sets it), so ``tox -e docs``
runs the framework-free ones and each framework env runs its own.

``INITSPEC_DOCS_UPDATE=1`` writes the new transcripts instead of comparing (then review ``git diff``).
"""

from __future__ import annotations

import configparser
import difflib
import importlib.util
import os
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
_spec = importlib.util.spec_from_file_location("docs_examples_run", DOCS / "examples" / "run.py")
examples = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = examples  # its dataclasses look their module up
_spec.loader.exec_module(examples)

ALL = examples.discover()
ENV = os.environ.get("INITSPEC_DOCS_ENV")
MINE = [e for e in ALL if e.env == ENV]
UPDATE = os.environ.get("INITSPEC_DOCS_UPDATE") == "1"


def _tox_envs() -> set[str]:
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(ROOT / "tox.ini")
    listed = {e.strip() for e in cfg["tox"]["env_list"].split(",")}
    return listed


@pytest.mark.parametrize("example", MINE, ids=[e.name for e in MINE])
def test_example_output_is_unchanged(example):
    text = examples.run(example)
    if UPDATE:
        example.out.write_text(text)
        return
    assert example.out.exists(), f"{example.out.name} missing: INITSPEC_DOCS_UPDATE=1 writes it"
    old, new = examples.normalize(example, example.out.read_text()), examples.normalize(example, text)
    if old != new:
        diff = "\n".join(difflib.unified_diff(old.splitlines(), new.splitlines(), "stored", "now", lineterm=""))
        pytest.fail(f"{example.name}: the output changed (INITSPEC_DOCS_UPDATE=1 rewrites it):\n{diff}")


def test_every_example_names_an_env_ci_runs():
    envs = _tox_envs()
    assert ALL, "no examples found"
    for e in ALL:
        assert e.env in envs, f"{e.script.name}: env {e.env!r} is not in tox.ini's env_list"
        assert e.out.exists(), f"{e.script.name} has no stored output {e.out.name}"
    orphans = {p.stem for p in (DOCS / "examples").glob("*.out")} - {e.name for e in ALL}
    assert not orphans, f"transcripts without a script: {sorted(orphans)}"


def _sections(cfg: configparser.ConfigParser) -> dict[str, str]:
    """Env name -> its commands, factor sections (``keras-{tensorflow,jax}``) expanded."""
    out = {}
    for s in cfg.sections():
        if not s.startswith("testenv:"):
            continue
        name = s.split(":", 1)[1]
        m = re.fullmatch(r"(.*)\{(.*)\}(.*)", name)
        names = [m[1] + f + m[3] for f in m[2].split(",")] if m else [name]
        for n in names:
            out[n] = cfg[s].get("commands", "")
    return out


def test_every_framework_env_runs_its_examples():
    """An env whose examples nobody runs would let them drift: tox.ini must run this module there."""
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(ROOT / "tox.ini")
    commands = _sections(cfg)
    for env in {e.env for e in ALL}:
        assert "tests/test_docs_examples.py" in commands.get(env, ""), \
            f"tox env {env} does not run tests/test_docs_examples.py"


def test_the_normalizations_keep_the_numbers():
    """The placeholders hide durations, versions and paths, never a statistic."""
    e = examples.Example("x", Path("x.sh"), "docs")
    text = "var obs/exp 0.9957–1.003 (p=2.4e-154), 5 shapes, 10 results, 26.8 s, torch 2.13.0+cpu, 1 failed in 4.5s"
    assert examples.normalize(e, text) == ("var obs/exp 0.9957–1.003 (p=2.4e-154), 5 shapes, 10 results, <time>, "
                                           "torch <version>, 1 failed in <time>")


def test_the_figures_come_from_their_runs(tmp_path):
    """docs/examples/figures.py draws every figure of docs/figures/ that is not a screenshot again from its
    run; each must match the stored one (same size, under 1% of the pixels different: a changed law or
    verdict moves far more)."""
    if ENV != "docs":
        pytest.skip("the figures are drawn in tox env docs")
    np = pytest.importorskip("numpy")
    image = pytest.importorskip("PIL.Image")
    _fspec = importlib.util.spec_from_file_location("docs_figures", DOCS / "examples" / "figures.py")
    figures = importlib.util.module_from_spec(_fspec)
    _fspec.loader.exec_module(figures)
    drawn = figures.draw(tmp_path)
    assert {p.name for p in drawn} == {p.name for p in (DOCS / "figures").glob("*.png")
                                       if not p.name.startswith("report-")}
    for new in drawn:
        if UPDATE:
            (DOCS / "figures" / new.name).write_bytes(new.read_bytes())
            continue
        a = np.asarray(image.open(DOCS / "figures" / new.name).convert("RGB"), dtype=int)
        b = np.asarray(image.open(new).convert("RGB"), dtype=int)
        assert a.shape == b.shape, new.name
        differ = float(np.mean(np.abs(a - b).max(axis=-1) > 16))
        assert differ < 0.01, f"{new.name}: {differ:.1%} of the pixels changed (INITSPEC_DOCS_UPDATE=1 redraws)"


CONSOLE = re.compile(r"```console\n(.*?)```", re.S)


def _transcripts() -> list[str]:
    return [e.out.read_text() for e in ALL if e.out.exists()]


def test_the_pages_include_transcripts_rather_than_copy_them():
    """A console block in the manual is a snippet of an example's output, never typed by hand."""
    for page in DOCS.rglob("*.md"):
        for block in CONSOLE.findall(page.read_text()):
            lines = [ln for ln in block.splitlines() if ln.strip()]
            assert lines and all(ln.strip().startswith("--8<--") for ln in lines), \
                f"{page.relative_to(ROOT)}: a console block typed by hand:\n{block[:300]}"


def test_the_readme_transcripts_are_excerpts_of_real_runs():
    """The README cannot include files: each of its console blocks must be lines of one stored transcript,
    in order, where a line '...' stands for lines left out."""
    outs = [o.splitlines() for o in _transcripts()]
    for block in CONSOLE.findall((ROOT / "README.md").read_text()):
        want = [ln.rstrip() for ln in block.splitlines()]
        assert any(_excerpt(want, have) for have in outs), f"README console block from no transcript:\n{block}"


def _excerpt(want: list[str], have: list[str]) -> bool:
    """``want`` is ``have`` with runs of lines replaced by '...' (a line holding only '...')."""
    pieces, cur = [], []
    for ln in want:
        if ln.strip() == "...":
            pieces.append(cur)
            cur = []
        else:
            cur.append(ln)
    pieces.append(cur)
    pos = 0
    for piece in pieces:
        if not piece:
            continue
        for start in range(pos, len(have) - len(piece) + 1):
            if have[start:start + len(piece)] == piece:
                pos = start + len(piece)
                break
        else:
            return False
    return True


LINK = re.compile(r"\]\(([^)#\s]+)(?:#([^)\s]+))?\)")


def test_the_readme_links_point_into_the_manual():
    """The README is read on its own (mkdocs does not check it): every relative link names a file that
    exists, and an anchor into a page names one of that page's headings."""
    toc = pytest.importorskip("markdown.extensions.toc", reason="anchors are checked where markdown is installed")
    for target, anchor in LINK.findall((ROOT / "README.md").read_text()):
        if "://" in target:
            continue
        path = ROOT / target
        assert path.exists(), f"README links to {target}, which does not exist"
        if anchor and path.suffix == ".md":
            headings = re.findall(r"^#{1,6} (.+)$", path.read_text(), re.M)
            slugs = {toc.slugify(h.strip(), "-") for h in headings}
            assert anchor in slugs, f"README links to {target}#{anchor}: no such heading ({sorted(slugs)[:8]}...)"
