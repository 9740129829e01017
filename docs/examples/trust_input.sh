#!/usr/bin/env bash
# env: docs
# cwd: tmp
# Bad input: one line, exit 2, before anything runs: one seed range for every command, regular files only.
@mkfifo spec.fifo
initspec audit "torch_models:tiny_gpt()" --seed -1
initspec diff numpy:normal numpy:normal --seed -1
initspec identify --target bad_inits:he_normal --seed 100000000000000000000000
initspec audit "torch_models:tiny_gpt()" --seeds 1000000000000000000000000000000
initspec audit "torch_models:tiny_gpt()" --spec spec.fifo
initspec audit "torch_models:tiny_gpt()" --spec /dev/zero
initspec audit "torch_models:tiny_gpt()" --spec ''
