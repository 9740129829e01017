#!/usr/bin/env bash
# env: torch
# cwd: tmp
# drop: ^\[transformers\]
# Laws named the way the code writes them, from the drawn values alone (--draws; transformers 5.24, small configs, 2 instances each).
# ViT's patch projection is trunc_normal_(std=0.02): on its (64, 3, 8, 8) shape variance_scaling(5/3, fan_out) is the same law to 1%.
initspec audit "hf:vit(hidden_size=64, num_hidden_layers=1, num_attention_heads=2, intermediate_size=128, image_size=32, patch_size=8)" --seeds 2 --draws | grep -E "patch|^[0-9]+ groups"
# ResNet's convolutions are kaiming_normal_(mode='fan_out'): one fan law for every shape, where each shape alone also fits another.
initspec audit "hf:resnet(embedding_size=16, hidden_sizes=[16, 32], depths=[1, 1], layer_type='bottleneck')" --seeds 2 --draws | grep -E "convolution.weight|^[0-9]+ groups"
# wav2vec2's positional convolution: _init_weights declares normal(std=2 * sqrt(1 / (k * C))) on conv.weight, a
# tensor weight_norm computes from original0/original1, so the parameters keep the conv's default U(±1/sqrt(fan_in)).
@printf '[params]\n"*.pos_conv_embed.conv.parametrizations.weight.original1" = "normal(std=2 * sqrt(1 / (16 * 64)))"\n' > w2v.toml
initspec audit "hf:wav2vec2(hidden_size=64, num_hidden_layers=1, num_attention_heads=2, intermediate_size=128, conv_dim=[32, 32], conv_stride=[5, 2], conv_kernel=[10, 3], num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4, vocab_size=32)" --spec w2v.toml | grep -E -A2 "^FAIL|^FINDING|^[0-9]+ groups"
