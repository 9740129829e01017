#!/usr/bin/env bash
# env: docs
# The engine's self-test: initspec's numpy reference initializers held to the spec.
initspec check numpy
