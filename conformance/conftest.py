"""The conformance suite: one framework per process, chosen by --framework or INITSPEC_FRAMEWORK.

Collection only reads the manifest (no framework import); the first test runs the whole
framework check once, so Holm's correction covers the entire run, and every test then
asserts its own result.
"""

from __future__ import annotations

import os

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("initspec conformance")
    group.addoption("--framework", default=os.environ.get("INITSPEC_FRAMEWORK", "numpy"),
                    help="framework whose manifest to check (env INITSPEC_FRAMEWORK; default numpy)")
    group.addoption("--backend", default=os.environ.get("KERAS_BACKEND"),
                    help="Keras backend for --framework keras (sets KERAS_BACKEND)")


def _opt(config: pytest.Config, name: str, default):
    """The pytest plugin's --initspec-* options when the plugin is loaded, else the default."""
    try:
        value = config.getoption(name)
    except ValueError:
        return default
    return default if value is None else value


def pytest_configure(config: pytest.Config) -> None:
    backend = config.getoption("backend")
    if backend:
        os.environ["KERAS_BACKEND"] = backend


def settings(config: pytest.Config) -> dict:
    from initspec.engine.runner import DEFAULT_ALPHA, DEFAULT_SEED

    return {"seed": _opt(config, "initspec_seed", DEFAULT_SEED),
            "alpha": _opt(config, "initspec_alpha", DEFAULT_ALPHA),
            "samples": _opt(config, "initspec_samples", None)}


def pytest_report_header(config: pytest.Config) -> list[str]:
    import importlib

    from initspec.frameworks import FRAMEWORKS

    framework = config.getoption("framework")
    s = settings(config)
    try:
        binding = importlib.import_module(f"initspec.frameworks.{FRAMEWORKS[framework]}")
        version = binding.version()
    except Exception as e:  # noqa: BLE001 - the header must not crash collection
        version = f"unavailable ({type(e).__name__}: {e})"
    backend = f", keras backend {os.environ['KERAS_BACKEND']}" if framework == "keras" else ""
    return [f"initspec conformance: framework {framework} {version}{backend}, seed {s['seed']}, "
            f"alpha {s['alpha']:g} (family-wise, Holm), samples {s['samples'] or 'derived (1% std error, power 0.99)'}"]
