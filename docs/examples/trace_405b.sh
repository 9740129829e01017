#!/usr/bin/env bash
# env: torch
# normalize: --max-memory [0-9.]+ [KMGT]?i?B => --max-memory <size>
# The transformers config of Llama-3.1-405B: too large to draw, traced in seconds.
initspec audit "hf:llama(num_hidden_layers=126, hidden_size=16384, num_attention_heads=128, num_key_value_heads=8, intermediate_size=53248, vocab_size=128256)"
