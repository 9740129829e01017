#!/usr/bin/env bash
# env: docs
# One callable held to a claim; this one draws N(0, 2/fan_in) with 2/fan_in as the std.
PYTHONPATH=tests initspec check --target "mutants:normal_vs(2.0, bug='std_as_variance')" --scheme he_normal --shape 512,128 --shape 96,1000
