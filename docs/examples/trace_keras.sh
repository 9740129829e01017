#!/usr/bin/env bash
# env: keras-jax
# cwd: tests/audit
# The Keras trace (tests/audit/test_trace_keras.py): the initializer each variable was created with, none
# run.  One unseeded RandomNormal shared by two layers and two HeNormal(seed=7): identical draws, and a
# fixed seed the run's seed never reaches.
initspec audit "test_trace_keras:model(bug='shared,seed')" --trace
