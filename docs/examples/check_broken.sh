#!/usr/bin/env bash
# env: docs
# A failing run: a std used where a variance belongs, an initializer that raises, a correct one.
PYTHONPATH=tests initspec check --manifest tests/data/broken_manifest.toml --samples 20000
