#!/usr/bin/env bash
# env: torch
# cwd: tmp
# Two releases of a fake transformers (tests/scan/fake_transformers) with planted differences: lockfiles
# written on 1.0, checked on 2.0 (one worker: rows print as architectures finish, so -j 1 keeps their order).
@export PYTHONPATH="$INITSPEC_ROOT/tests/scan/fake_transformers:$INITSPEC_ROOT" OPENBLAS_NUM_THREADS=1
FAKE_TRANSFORMERS_RELEASE=1.0 initspec scan hf -j 1 --no-progress --write-specs locks | tail -1
ls locks
FAKE_TRANSFORMERS_RELEASE=2.0 initspec scan hf -j 1 --no-progress --specs locks --json v2.json
