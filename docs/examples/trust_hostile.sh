#!/usr/bin/env bash
# env: torch
# cwd: tests/audit
# Hostile models (tests/audit/hostile_models.py): one ERROR line each, exit 1, within the time limit.
initspec audit hostile_models:sleeps --timeout 2
initspec audit hostile_models:walk_exits
initspec audit hostile_models:del_exits
initspec audit hostile_models:blocks_alarm --timeout 2
initspec audit hostile_models:thread_exits_later
initspec audit hostile_models:atexit_exits --seeds 2
