#!/usr/bin/env bash
# env: docs
# cwd: docs/examples/pytest
# The pytest plugin: one conforming initializer, one that fails with its repro (test_init.py beside this).
pytest test_init.py -q --tb=short -p no:cacheprovider --initspec-samples 2000
