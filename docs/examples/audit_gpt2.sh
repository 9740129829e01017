#!/usr/bin/env bash
# env: torch
# cwd: docs/examples
# transformers' own GPT-2 (124M, from its config: nothing downloaded) held to the spec beside this script.
cat gpt2.toml
initspec audit hf:gpt2 --spec gpt2.toml
