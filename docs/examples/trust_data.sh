#!/usr/bin/env bash
# env: docs
# cwd: tmp
# Data is parsed, never run: the expression parser's bounds, a spec's tables type-checked.
@printf 'vars = 3\n[params]\n"*" = "zeros"\n' > vars3.toml
initspec show "normal(std=$(python3 -c 'print("1+"*1500+"1")'))"
initspec show "he_normal(a=$(python3 -c 'print("1"*400)'))"
initspec audit "torch_models:tiny_gpt()" --spec vars3.toml
