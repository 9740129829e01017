#!/usr/bin/env bash
# env: torch
# cwd: docs/examples
# A rank whose init raises ends the run in one line; bad input found on a rank is exit 2.
initspec audit mlp:Faulty --world-size 2 --seeds 1
initspec audit mlp:MLP --world-size 2 --init nope
