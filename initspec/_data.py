"""Locate the data folders (spec/, adapters/, xfails/, references/) in a wheel or a source checkout.

The wheel carries them under ``initspec/_data/``; hatchling's editable install does not map
force-included folders, so a source checkout falls back to the repository's top level.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

_REPO_FOLDERS = {"spec": "spec", "adapters": "adapters", "xfails": "conformance/xfails", "references": "references"}


def data_dir(name: str) -> Path:
    """The folder holding ``name`` (one of spec, adapters, xfails, references)."""
    packaged = Path(str(resources.files("initspec"))) / "_data" / name
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / _REPO_FOLDERS[name]
