#!/usr/bin/env bash
# env: torch
# cwd: tests/audit
# Bug models of the audit suite (tests/audit/torch_models.py) through the trace: a scaled init that never
# matched its parameter (checked exactly against the spec), a private generator (traced under two seeds),
# and a simulated kernel that draws twice the std it is asked for (the draws reject the traced law).
initspec audit "torch_models:tiny_gpt(bug='scaled_name')" --spec ../../docs/examples/tiny_gpt.toml --trace
initspec audit "torch_models:tiny_gpt(bug='private_generator')" --trace
initspec audit "torch_models:sampler_bug()" --seeds 2
