"""pytest plugin (entry point ``pytest11``): the ``initspec`` fixture, marker and options.

    def test_my_init(initspec):
        initspec.assert_conforms(my_init, scheme="he_normal", layout="tf", shapes=[(3, 3, 16, 32)])

The session's ``--initspec-seed``, ``--initspec-alpha``, ``--initspec-samples`` and
``--initspec-max-draws`` (the table in :mod:`initspec.options`, shared with the CLI) apply to
every check; ``@pytest.mark.initspec(scheme=..., layout=...)`` gives a test's defaults;
``--initspec-report PATH`` writes the JSON of every check made in the session.

Loading the plugin imports numpy and scipy (through the option table) but no ML framework: a
binding is imported when a test checks an initializer of its convention.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from initspec.options import OPTIONS, add_options

if TYPE_CHECKING:
    from collections.abc import Callable

    from initspec.reports.report import Report

#: keyword arguments of :func:`initspec.api.check` a marker or a call may give
CHECK_ARGS = ("scheme", "convention", "layout", "shapes", "dtypes", "seed", "alpha", "samples", "max_draws")


def _dest(name: str) -> str:
    return "initspec_" + name.replace("-", "_")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("initspec", "initspec: hold weight initializers to their spec")

    def addoption(name: str, **kw: Any) -> None:
        # argparse %-formats help strings; the shared table's help is plain text ("a 1% std error")
        group.addoption(name, **{**kw, "help": kw["help"].replace("%", "%%")})

    add_options(addoption, prefix="initspec-")
    group.addoption("--initspec-report", metavar="PATH", default=None,
                    help="write the JSON report of every initspec check made in the session here")


@dataclass
class Settings:
    """The session's run options (from the command line)."""

    seed: int
    alpha: float
    samples: int | None
    max_draws: int

    @classmethod
    def from_config(cls, config: pytest.Config) -> Settings:
        given = {o.name.replace("-", "_"): config.getoption(_dest(o.name)) for o in OPTIONS}
        s = cls(given["seed"], given["alpha"], given["samples"], given["max_draws"])
        if not 0 < s.alpha < 1:
            raise pytest.UsageError(f"--initspec-alpha must be in (0, 1), got {s.alpha}")
        if s.samples is not None and s.samples < 10:
            raise pytest.UsageError(f"--initspec-samples must be at least 10, got {s.samples}")
        if s.max_draws < 1:
            raise pytest.UsageError(f"--initspec-max-draws must be at least 1, got {s.max_draws}")
        return s

    def as_kwargs(self) -> dict[str, Any]:
        return {"seed": self.seed, "alpha": self.alpha, "samples": self.samples, "max_draws": self.max_draws}


@dataclass
class SessionLog:
    """Every check made in the session, for ``--initspec-report``."""

    settings: Settings
    checks: list[tuple[str, Report]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        from initspec import __version__

        keys = ("passed", "failed", "errors", "xfailed", "xpassed")
        total = {k: sum(rep.summary[k] for _, rep in self.checks) for k in keys}
        return {"initspec_version": __version__, **self.settings.as_kwargs(),
                "checks": [{"test": nodeid, **rep.to_dict()} for nodeid, rep in self.checks], "summary": total}


_LOG = pytest.StashKey[SessionLog]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "initspec(**defaults): an initializer conformance test; keyword arguments "
                            f"({', '.join(CHECK_ARGS)}) are defaults for the initspec fixture's checks")
    config.stash[_LOG] = SessionLog(Settings.from_config(config))


def pytest_report_header(config: pytest.Config) -> str:
    s = config.stash[_LOG].settings
    return (f"initspec: seed {s.seed}, alpha {s.alpha:g} per check, samples {s.samples or 'auto'}, "
            f"max-draws {s.max_draws}")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # a test using the fixture is an initializer test: `-m initspec` selects it without a decorator
    for item in items:
        if "initspec" in getattr(item, "fixturenames", ()) and item.get_closest_marker("initspec") is None:
            item.add_marker("initspec")


def pytest_sessionfinish(session: pytest.Session) -> None:
    path = session.config.getoption("initspec_report")
    if path:
        Path(path).write_text(json.dumps(session.config.stash[_LOG].to_dict(), indent=2) + "\n")


def _pythonpath(target: str, root: Path) -> str:
    """``PYTHONPATH=dir `` when the target's module is importable only through a path pytest added.

    A test module (``test_init:my_init``) is imported from a folder pytest puts on ``sys.path``;
    the ``initspec`` console script needs that folder too.  Installed modules need nothing.
    """
    module = target.partition(":")[0]
    file = getattr(sys.modules.get(module), "__file__", None)
    if not file:
        return ""
    base = Path(file).resolve().parent
    for _ in range(module.count(".") + (Path(file).name == "__init__.py")):
        base = base.parent
    if base in {Path(sysconfig.get_paths()[k]).resolve() for k in ("purelib", "platlib")}:
        return ""
    return f"PYTHONPATH={shlex.quote(os.path.relpath(base, root))} "


class InitspecFixture:
    """What the ``initspec`` fixture gives a test: the API with the session's options applied.

    Precedence: the call's keyword arguments, then the test's ``@pytest.mark.initspec(...)``,
    then the command-line options.
    """

    def __init__(self, log: SessionLog, nodeid: str, defaults: dict[str, Any], root: Path) -> None:
        self._log = log
        self._nodeid = nodeid
        self._defaults = defaults
        self._root = root

    @property
    def settings(self) -> Settings:
        return self._log.settings

    def check(self, target: str | Callable[..., Any], **kwargs: Any) -> Report:
        """Audit ``target`` (see :func:`initspec.api.check`) and record it; never raises on nonconformance."""
        from initspec import api
        from initspec.errors import InputError

        __tracebackhide__ = True
        unknown = sorted(set(kwargs) - set(CHECK_ARGS))
        if unknown:
            raise TypeError(f"initspec.check() got unexpected keyword arguments {unknown}; "
                            f"allowed: {', '.join(CHECK_ARGS)}")
        args = {**self.settings.as_kwargs(), **self._defaults, **kwargs}
        if not args.get("scheme"):
            pytest.fail("initspec: name the scheme the initializer claims, e.g. scheme='he_normal' "
                        "(as a keyword or in @pytest.mark.initspec)", pytrace=False)
        try:
            report = api.check(target, **args)
        except InputError as e:
            pytest.fail(f"initspec: {e}", pytrace=False)
        for r in report.results:
            r.repro = _pythonpath(r.target, self._root) + r.repro
        self._log.checks.append((self._nodeid, report))
        return report

    def assert_conforms(self, target: str | Callable[..., Any], **kwargs: Any) -> Report:
        """Like :meth:`check`; AssertionError with the repro of every failed result."""
        from initspec.reports.report import failure_message

        __tracebackhide__ = True
        report = self.check(target, **kwargs)
        if not report.ok:
            bad = [r for r in report.results if r.verdict in ("fail", "error")]
            head = (f"{bad[0].target} does not conform to {bad[0].scheme}: {len(bad)} of {len(report.results)} "
                    f"results (seed {report.seed}, alpha {report.alpha:g})")
            lines = [head, *(failure_message(r) for r in bad)]
            if "<" in bad[0].target:  # <lambda>, <locals>: the CLI cannot import it by name
                lines.append("  (define the initializer at module level to reproduce it from the command line)")
            raise AssertionError("\n".join(lines))
        return report

    def audit(self, target: Any, *, spec: Any = None, **kwargs: Any) -> Any:
        """Audit a model (see :func:`initspec.api.audit`) under the session's seed and alpha."""
        from initspec import api
        from initspec.errors import InputError

        __tracebackhide__ = True
        args = {"seed": self.settings.seed, "alpha": self.settings.alpha, **kwargs}
        try:
            return api.audit(target, spec=spec, **args)
        except InputError as e:
            pytest.fail(f"initspec: {e}", pytrace=False)

    def assert_model_conforms(self, target: Any, *, spec: Any = None, **kwargs: Any) -> Any:
        """Like :meth:`audit`; AssertionError with the failing groups, the findings and the repro line."""
        from initspec.audit.run import repro
        from initspec.audit.table import format_report

        __tracebackhide__ = True
        report = self.audit(target, spec=spec, **kwargs)
        if not report.ok:
            raise AssertionError(f"{report.target} does not conform:\n{format_report(report)}\nreproduce: "
                                 f"{_pythonpath(report.target, self._root)}{repro(report)}")
        return report


@pytest.fixture
def initspec(request: pytest.FixtureRequest) -> InitspecFixture:
    """``initspec.assert_conforms(fn, scheme=..., convention=..., layout=..., shapes=..., dtypes=...)``
    and ``initspec.check(...)`` with the session's --initspec-* options and the test's marker defaults."""
    marker = request.node.get_closest_marker("initspec")
    defaults = dict(marker.kwargs) if marker else {}
    unknown = sorted(set(defaults) - set(CHECK_ARGS))
    if unknown:
        pytest.fail(f"@pytest.mark.initspec got unknown arguments {unknown}; allowed: {', '.join(CHECK_ARGS)}",
                    pytrace=False)
    return InitspecFixture(request.config.stash[_LOG], request.node.nodeid, defaults,
                           request.config.invocation_params.dir)
