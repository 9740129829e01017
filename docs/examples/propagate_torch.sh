#!/usr/bin/env bash
# env: torch
# Signal propagation through torch: nn.Linear's own weights through autograd, a real nn.Module stack, a transformers ViT.
initspec propagate torch_linear_default -a relu --depth 50 --target torch:Linear.weight --backend torch
PYTHONPATH=tests/propagate initspec propagate --model "propagate_inits:torch_mlp(10, 256)" --input-shape 64,256 --min-shrink 0.1
PYTHONPATH=tests/propagate initspec propagate --model "propagate_inits:torch_mlp(10, 256, False)" --input-shape 64,256 --min-shrink 0.1
initspec propagate --model "hf:vit(num_hidden_layers=4, hidden_size=128, num_attention_heads=4, intermediate_size=512, image_size=64, patch_size=8)" --input-shape 2,3,64,64
