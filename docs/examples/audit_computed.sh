#!/usr/bin/env bash
# env: torch
# drop: ^\[transformers\]
# Computed (deterministic) tensors and padding rows: Mamba's A_log, RWKV's per-layer schedules, ESM's padding row.
initspec audit "hf:mamba(hidden_size=32, num_hidden_layers=2, vocab_size=96, state_size=8)" --seeds 2 --draws
initspec audit "hf:rwkv(hidden_size=32, num_hidden_layers=2, vocab_size=96, attention_hidden_size=32, intermediate_size=64, context_length=32)" --seeds 2 --draws | grep -E "time_|embeddings|^[0-9]+ groups"
initspec audit "hf:esm(num_hidden_layers=1, hidden_size=32, num_attention_heads=2, intermediate_size=64, vocab_size=33, pad_token_id=1, max_position_embeddings=32)" --seeds 2 --draws | grep -E "embeddings|^[0-9]+ groups"
