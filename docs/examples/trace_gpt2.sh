#!/usr/bin/env bash
# env: torch
# GPT-2 (4 layers, from its config) traced: every group's law and the line of transformers that set it, nothing allocated.
initspec audit --trace 'hf:gpt2(n_layer=4, n_embd=256, n_head=4)'
