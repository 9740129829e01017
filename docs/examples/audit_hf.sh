#!/usr/bin/env bash
# env: torch
# What transformers' BERT, LLaMA and T5 draw (small configs, no spec: every group identified).
initspec audit "hf:bert(num_hidden_layers=2, hidden_size=128, num_attention_heads=2, intermediate_size=512)"
initspec audit "hf:llama(num_hidden_layers=2, hidden_size=128, num_attention_heads=4, num_key_value_heads=2, intermediate_size=344, vocab_size=1000)"
initspec audit "hf:t5(num_layers=2, num_decoder_layers=2, d_model=128, d_ff=256, num_heads=4, d_kv=32, vocab_size=1000)"
