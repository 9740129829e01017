"""Keras backends: which exist, which interpreter runs each, and choosing one for this process.

``initspec check keras --backend B`` sets ``KERAS_BACKEND`` before anything imports Keras
(:func:`select`).  The interpreter of backend B is ``$INITSPEC_PYTHON_<B>`` when set, else this one.
Comparing the backends' runs is the engine's (:mod:`initspec.engine.backends`).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path

from initspec.errors import InputError

BACKENDS = ("tensorflow", "jax", "torch", "numpy")
#: the module a backend needs besides keras
BACKEND_MODULES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch", "numpy": "numpy"}


def interpreter(backend: str) -> str:
    """The Python that runs ``backend``: ``$INITSPEC_PYTHON_<BACKEND>`` or this interpreter."""
    return os.environ.get(f"INITSPEC_PYTHON_{backend.upper()}") or sys.executable


def validate(framework: str | None, manifest: str | None, backend: str | None, all_backends: bool,
             target: str | None) -> None:
    """InputError unless --backend / --all-backends are used with keras, and not together."""
    if backend and all_backends:
        raise InputError("give either --backend or --all-backends, not both")
    flag = "--all-backends" if all_backends else f"--backend {backend}"
    if backend and backend not in BACKENDS:
        raise InputError(f"--backend {backend!r}: use one of {', '.join(BACKENDS)}")
    if target is not None:
        if all_backends:
            raise InputError("--all-backends works on a framework manifest, not on --target")
        return
    name = framework
    if name is None and manifest:
        from initspec.frameworks.manifest import load_manifest

        name = load_manifest(Path(manifest)).framework
    if name != "keras":
        raise InputError(f"{flag} applies to keras only, not to {name or 'no framework'}")


def select(backend: str) -> None:
    """Make ``backend`` Keras's backend in this process (before keras is imported)."""
    if backend not in BACKENDS:
        raise InputError(f"--backend {backend!r}: use one of {', '.join(BACKENDS)}")
    keras = sys.modules.get("keras")
    if keras is not None:
        current = keras.backend.backend()
        if current != backend:
            raise InputError(f"keras is already imported with the {current} backend; "
                             f"--backend {backend} needs a fresh process")
        return
    need = BACKEND_MODULES[backend]
    if importlib.util.find_spec(need) is None:
        raise InputError(f"keras backend {backend!r} needs {need}, which is not installed")
    os.environ["KERAS_BACKEND"] = backend
    try:
        importlib.import_module("keras")
    except ModuleNotFoundError as e:
        raise InputError(f"keras with the {backend} backend cannot be imported: no module {e.name!r}") from None
