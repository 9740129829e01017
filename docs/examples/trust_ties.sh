#!/usr/bin/env bash
# env: torch
# cwd: tests/audit
# Empty parameters, ties and structured schemes: verified, not assumed.
@printf '[params]\n"*.weight" = "torch_linear_default"\n"*.bias" = "torch_bias_default"\n[tied]\nx = ["0.weight", "1.weight"]\n' > /tmp/initspec-tied.toml
@printf '[params]\n"*.bias" = "orthogonal"\n"*" = "torch_linear_default"\n' > /tmp/initspec-orth.toml
initspec audit hostile_models:zero_size --seeds 2
initspec audit hostile_models:two_linears --spec /tmp/initspec-tied.toml --seeds 2
initspec audit hostile_models:two_linears --spec /tmp/initspec-orth.toml
@rm -f /tmp/initspec-tied.toml /tmp/initspec-orth.toml
