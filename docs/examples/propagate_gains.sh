#!/usr/bin/env bash
# env: docs
# The frameworks' standard gains against the ones that preserve q = 1 (sigma_b = 0, fan_in mode).
initspec propagate --gains
