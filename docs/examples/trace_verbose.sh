#!/usr/bin/env bash
# env: torch
# -v: per group, the writes its law is made of and the earlier writes it shadows (GPT-2, 4 layers, traced).
initspec audit --trace 'hf:gpt2(n_layer=4, n_embd=256, n_head=4)' -v
