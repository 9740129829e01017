#!/usr/bin/env bash
# env: docs
# A scheme's exact law on one shape (the Commands section of the README).
initspec show glorot_uniform --shape 5,5,3,8 --layout tf
