#!/usr/bin/env bash
# env: timm
# timm's ResNet-18 in the default audit (trace and draws): one line of timm sets every convolution.
initspec audit timm:resnet18 --seeds 2
