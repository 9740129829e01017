#!/usr/bin/env bash
# env: torch
# transformers' GPT-2 (2 layers, from its config) held to OpenAI's released code, role by role.
# drop: ^\[transformers\] Model config
initspec audit "hf:gpt2(n_layer=2, n_embd=64, n_head=2, vocab_size=1024)" --reference gpt2
