"""What a scheme is: the schemes of ``spec/*.toml``, fans and layouts, exact reference laws,
and the safe expression parser.  Imports no ML framework and nothing above it."""

from initspec.spec.schemes import Preset, Scheme, formula, gain, presets, resolve

__all__ = ["Preset", "Scheme", "formula", "gain", "presets", "resolve"]
