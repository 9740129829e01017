#!/usr/bin/env bash
# env: torch
# What only the trace sees in transformers: wav2vec2's positional-convolution init written into a temporary
# (weight norm), and SigLIP2's lecun_normal_ that is not truncated.
initspec audit --trace "hf:wav2vec2(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128, conv_dim=(32, 32), conv_stride=(5, 2), conv_kernel=(10, 3), num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)"
initspec audit --trace "hf:siglip2_vision_model(hidden_size=64, num_hidden_layers=1, num_attention_heads=2, intermediate_size=128)"
