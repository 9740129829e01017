#!/usr/bin/env bash
# env: keras-jax
# cwd: tests/audit
# The Keras trace (tests/audit/keras_models.py): the initializer each variable was created with, none
# run.  One unseeded RandomNormal shared by two layers, and VarianceScaling(seed=7) in both blocks: identical draws, and a
# fixed seed the run's seed never reaches.
initspec audit "keras_models:model(bug='shared,seed')" --trace
